package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
)

// BenchmarkProduceStream is BenchmarkProduce over client.Producer, one
// ProduceStream request per op: with streams=per-producer each producer
// has its own connection and stream (as loadgen's Goethe target, like the
// NATS and Redis clients' connection per producer); with streams=1 all
// producers share one Producer on one connection.
func BenchmarkProduceStream(b *testing.B) {
	for _, eng := range engines.Names {
		for _, sync := range syncModes {
			for _, c := range produceCases {
				for _, shared := range []bool{false, true} {
					if shared && c.producers == 1 {
						continue
					}
					streams := "per-producer"
					if shared {
						streams = "1"
					}
					name := fmt.Sprintf("engine=%s/sync=%t/size=%s/batch=%d/producers=%d/streams=%s", eng, sync, sizeName(c.size), c.batch, c.producers, streams)
					b.Run(name, func(b *testing.B) { benchProduceStream(b, eng, sync, c.size, c.batch, c.producers, shared) })
				}
			}
		}
	}
}

func benchProduceStream(b *testing.B, eng string, sync bool, size, batch, producers int, shared bool) {
	addr, st := startServer(b, eng, b.TempDir(), sync)
	ctx := context.Background()
	prods := make([]*client.Producer, producers)
	events := make([][]client.EventData, producers)
	payload := payloadOf(size)
	for p := range prods {
		if p == 0 || !shared {
			var err error
			if prods[p], err = dial(b, addr).NewProducer(ctx); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { prods[p].Close() })
		} else {
			prods[p] = prods[0]
		}
		events[p] = make([]client.EventData, batch)
		for i := range events[p] {
			events[p][i].Payload = payload
		}
	}
	// One warm-up call per stream, so that opening it is not timed.
	for p, pr := range prods {
		if _, err := pr.Produce(ctx, "bench", events[p][:1]); err != nil {
			b.Fatal(err)
		}
	}
	before := st.Stats()
	b.SetBytes(int64(size * batch))
	b.ReportAllocs()
	runAppenders(b, producers, func(p int) error {
		_, err := prods[p].Produce(ctx, "bench", events[p])
		return err
	})
	reportEvents(b, b.N*batch)
	after := st.Stats()
	if n := after.Commits - before.Commits; n > 0 {
		b.ReportMetric(float64(after.Requests-before.Requests)/float64(n), "appends/commit")
	}
}
