package cluster_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// BenchmarkClusterAppend measures Node.Append on the leader of a 3-node
// cluster on loopback, all in this process (so the nodes share the
// machine's cores): one op is one Append of one event of size bytes by one
// of appenders concurrent goroutines, acknowledged once on a majority's
// Raft log (raft-wal fsyncs) and applied on the leader. Engine writes of
// the FSM are unsynced, except bolt's (store.Options.SyncApplied).
func BenchmarkClusterAppend(b *testing.B) {
	for _, eng := range engines.Names {
		for _, appenders := range []int{1, 16} {
			name := fmt.Sprintf("engine=%s/nodes=3/size=100B/appenders=%d", eng, appenders)
			b.Run(name, func(b *testing.B) { benchClusterAppend(b, eng, appenders, 100) })
		}
	}
}

func benchClusterAppend(b *testing.B, eng string, appenders, size int) {
	c := newCluster(b, eng, 3, nil)
	l := c.node(c.waitLeader(10 * time.Second))
	payload := make([]byte, size)
	ctx := context.Background()
	var failed atomic.Int64
	b.SetBytes(int64(size))
	b.SetParallelism((appenders + 1) / 2) // GOMAXPROCS is 2 on the bench machine
	b.ResetTimer()
	start := time.Now()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		evs := []store.Event{{Payload: payload}}
		for pb.Next() {
			if _, _, err := l.Append(ctx, "bench", evs, store.ExpectAny); err != nil {
				failed.Add(1)
			}
			n.Add(1)
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "events/s")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d appends failed (a leader change during the run?)", f)
	}
}
