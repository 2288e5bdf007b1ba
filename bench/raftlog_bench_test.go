package bench

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

// raftLogStores are the Raft log stores the cluster could use: raft-wal
// (what cluster.Node uses) and raft-boltdb/v2 (hashicorp's older default),
// each opened in dir. Both sync every StoreLogs call, as Raft needs.
var raftLogStores = []struct {
	name string
	open func(tb testing.TB, dir string) (raft.LogStore, func() error)
}{
	{"raft-wal", func(tb testing.TB, dir string) (raft.LogStore, func() error) {
		w, err := wal.Open(dir)
		if err != nil {
			tb.Fatal(err)
		}
		return w, w.Close
	}},
	{"raft-boltdb", func(tb testing.TB, dir string) (raft.LogStore, func() error) {
		s, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
		if err != nil {
			tb.Fatal(err)
		}
		return s, s.Close
	}},
}

// BenchmarkRaftLogStore measures what the leader and each follower pay to
// make entries durable: StoreLogs of a batch of entries (one fsync), at the
// batch sizes Raft's pipeline hands it under light and heavy load, with
// entries of an encoded one-event Produce (100 B) and of a batched one
// (16 KiB). The choice of raft-wal for cluster.Node rests on it (see
// results/bench/raftlog/).
func BenchmarkRaftLogStore(b *testing.B) {
	for _, st := range raftLogStores {
		for _, size := range []int{100, 16 << 10} {
			for _, batch := range []int{1, 64} {
				b.Run(fmt.Sprintf("store=%s/entry=%dB/batch=%d", st.name, size, batch), func(b *testing.B) {
					ls, closeFn := st.open(b, b.TempDir())
					defer func() {
						if err := closeFn(); err != nil {
							b.Fatal(err)
						}
					}()
					data := payloadOf(size)
					logs := make([]*raft.Log, batch)
					for i := range logs {
						logs[i] = &raft.Log{Type: raft.LogCommand, Term: 1, Data: data, AppendedAt: time.Now()}
					}
					b.SetBytes(int64(size * batch))
					b.ResetTimer()
					next := uint64(1)
					for range b.N {
						for _, l := range logs {
							l.Index = next
							next++
						}
						if err := ls.StoreLogs(logs); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					sec := b.Elapsed().Seconds()
					b.ReportMetric(float64(b.N*batch)/sec, "entries/s")
					b.ReportMetric(float64(b.N)/sec, "syncs/s")
				})
			}
		}
	}
}
