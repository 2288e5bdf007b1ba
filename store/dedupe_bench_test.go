package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// BenchmarkAppendDedupe measures what dedupe keys cost an append of 100
// events of 100 bytes: without keys, and with a unique key per event (a
// dedupe record written beside each event, and the window's bookkeeping),
// without fsync, so that the store's own work shows, and with it.
//
//	go test -run XXX -bench AppendDedupe -benchtime 500x ./store/
func BenchmarkAppendDedupe(b *testing.B) {
	for _, engine := range engines.Names {
		for _, c := range []struct{ sync, keys bool }{{false, false}, {false, true}, {true, false}, {true, true}} {
			keys := c.keys
			b.Run(fmt.Sprintf("engine=%s/sync=%t/keys=%t", engine, c.sync, keys), func(b *testing.B) {
				e, err := engines.Open(engine, b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				s, err := store.Open(e, store.Options{UnsafeNoSync: !c.sync})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				evs := make([]store.Event, 100)
				for i := range evs {
					evs[i].Payload = make([]byte, 100)
				}
				n := 0
				b.SetBytes(int64(len(evs) * 100))
				b.ResetTimer()
				for b.Loop() {
					if keys {
						for i := range evs {
							n++
							evs[i].DedupeKey = fmt.Sprintf("0123456789abcdef-%x", n)
						}
					}
					if _, err := s.Append(context.Background(), "t", evs, store.ExpectAny); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
