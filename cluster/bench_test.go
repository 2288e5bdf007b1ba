package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// BenchmarkClusterAppend measures Node.Append on the leader of a 3-node
// cluster on loopback, all in this process (so the nodes share the
// machine's cores): one op is one Append of one event of size bytes by one
// of appenders concurrent goroutines, acknowledged once on a majority's
// Raft log (raft-wal fsyncs) and applied on the leader. Engine writes of
// the FSM are unsynced, except bolt's (store.Options.SyncApplied). It
// reports events/s and the process's CPU time per event (all nodes). The
// batch=1000 cases also run on a 1-node group, the in-process reference of
// the target "3 nodes ≥ 0.5× one node" on workload (b).
func BenchmarkClusterAppend(b *testing.B) {
	for _, eng := range engines.Names {
		for _, appenders := range []int{1, 16} {
			name := fmt.Sprintf("engine=%s/nodes=3/size=100B/appenders=%d", eng, appenders)
			b.Run(name, func(b *testing.B) { benchClusterAppend(b, eng, appenders, 1, 100) })
		}
		// Workload (b) of the peer comparison: one appender, batches of
		// 1,000 events.
		for _, nodes := range []int{1, 3} {
			name := fmt.Sprintf("engine=%s/nodes=%d/size=100B/appenders=1/batch=1000", eng, nodes)
			b.Run(name, func(b *testing.B) { benchClusterAppendOn(b, eng, nodes, 1, 1000, 100) })
		}
	}
}

// benchClusterAppend: one op is one Append of batch events, on 3 nodes.
func benchClusterAppend(b *testing.B, eng string, appenders, batch, size int) {
	benchClusterAppendOn(b, eng, 3, appenders, batch, size)
}

func benchClusterAppendOn(b *testing.B, eng string, nodes, appenders, batch, size int) {
	c := newCluster(b, eng, nodes, nil)
	l := c.node(c.waitLeader(10 * time.Second))
	payload := make([]byte, size)
	ctx := context.Background()
	var failed atomic.Int64
	b.SetBytes(int64(size * batch))
	b.SetParallelism((appenders + 1) / 2) // GOMAXPROCS is 2 on the bench machine
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		evs := make([]store.Event, batch)
		for i := range evs {
			evs[i].Payload = payload
		}
		for pb.Next() {
			if _, _, err := l.Append(ctx, "bench", evs, store.ExpectAny); err != nil {
				failed.Add(1)
			}
			n.Add(int64(batch))
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(n.Load()), "cpu-µs/event")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d appends failed (a leader change during the run?)", f)
	}
}

// BenchmarkClusterProduce measures what a client sees of a 3-node cluster
// on loopback, over real gRPC, all in this process: producers goroutines
// share one client connection and its asynchronous Producer (the matrix's
// "async" shape), each sending one event of size bytes and waiting for its
// ack, to the leader or to a follower (which forwards to the leader). One
// op is one acknowledged event, or one batch in the batch=1000 case
// (workload (b)). It reports events/s, the latency of each
// Send to its ack (p50, p99, from an HDR histogram) and the process's CPU
// time per event (all three nodes and the client: they share the cores).
func BenchmarkClusterProduce(b *testing.B) {
	for _, target := range []string{"leader", "follower"} {
		name := fmt.Sprintf("engine=pebble/nodes=3/size=100B/producers=16/to=%s", target)
		b.Run(name, func(b *testing.B) { benchClusterProduce(b, "pebble", target, 16, 1, 100) })
	}
	// Workload (b) of the peer comparison, in one process: one producer,
	// batches of 1,000 events, one in flight. One op is one batch.
	b.Run("engine=pebble/nodes=3/size=100B/producers=1/batch=1000/to=leader", func(b *testing.B) {
		benchClusterProduce(b, "pebble", "leader", 1, 1000, 100)
	})
}

func benchClusterProduce(b *testing.B, eng, target string, producers, batch, size int) {
	s := newServed(b, eng)
	leader := s.waitLeader(10 * time.Second)
	i := leader
	if target == "follower" {
		i = (leader + 1) % 3
	}
	ctx := context.Background()
	p, err := s.dial(i).NewProducer(ctx)
	require.NoError(b, err)
	defer p.Close()
	payload := make([]byte, size)
	// Warm up: the topic exists and the forwarding path is connected.
	_, err = p.Produce(ctx, "bench", []client.EventData{{Payload: payload}})
	require.NoError(b, err)

	hists := make([]*hdrhistogram.Histogram, producers)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(size * batch))
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for g := range producers {
		h := hdrhistogram.New(1, int64(10*time.Second), 3)
		hists[g] = h
		wg.Go(func() {
			evs := make([]client.EventData, batch)
			for i := range evs {
				evs[i].Payload = payload
			}
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := p.Produce(ctx, "bench", evs); err != nil {
					failed.Add(1)
					continue
				}
				_ = h.RecordValue(int64(time.Since(t0)))
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	all := hdrhistogram.New(1, int64(10*time.Second), 3)
	for _, h := range hists {
		all.Merge(h)
	}
	b.ReportMetric(float64(b.N*batch)/wall.Seconds(), "events/s")
	b.ReportMetric(float64(all.ValueAtQuantile(50))/1e3, "p50-µs")
	b.ReportMetric(float64(all.ValueAtQuantile(99))/1e3, "p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*batch), "cpu-µs/event")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d produces failed (a leader change during the run?)", f)
	}
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
