package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/server"
	"github.com/goethe-log/goethe/store"
)

// startServer serves the store in dir on engine eng, synced or not.
func startServer(b *testing.B, eng, dir string, sync bool) (string, *store.Store) {
	opts := store.DefaultOptions()
	opts.UnsafeNoSync = !sync
	return testutil.StartServer(b, eng, dir, opts, server.DefaultOptions())
}

func dial(b *testing.B, addr string) *client.Client {
	c, err := client.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// produceCases are the end-to-end produce workloads: the peers comparison's
// (16 producers of one event per call; one producer batching 1,000), and
// batch=128 beside BenchmarkAppend and BenchmarkRawWrite.
var produceCases = []struct{ producers, batch, size int }{
	{16, 1, 100},
	{1, 1, 100},
	{1, 128, 100},
	{1, 1000, 100},
	{16, 1, 1024},
	{1, 1000, 1024},
}

// BenchmarkProduce measures Produce through a loopback gRPC server: one op
// is one Produce call of batch events; each producer has its own
// connection. Divided by BenchmarkAppend with the same parameters, it is
// the cost of the gRPC layer.
func BenchmarkProduce(b *testing.B) {
	for _, eng := range engines.Names {
		for _, sync := range syncModes {
			for _, c := range produceCases {
				name := fmt.Sprintf("engine=%s/sync=%t/size=%s/batch=%d/producers=%d", eng, sync, sizeName(c.size), c.batch, c.producers)
				b.Run(name, func(b *testing.B) { benchProduce(b, eng, sync, c.size, c.batch, c.producers) })
			}
		}
	}
}

func benchProduce(b *testing.B, eng string, sync bool, size, batch, producers int) {
	addr, st := startServer(b, eng, b.TempDir(), sync)
	clients := make([]*client.Client, producers)
	events := make([][]client.EventData, producers)
	payload := payloadOf(size)
	for p := range clients {
		clients[p] = dial(b, addr)
		events[p] = make([]client.EventData, batch)
		for i := range events[p] {
			events[p][i].Payload = payload
		}
	}
	ctx := context.Background()
	// One warm-up call per connection, so that dialing is not timed.
	for p, c := range clients {
		if _, err := c.Produce(ctx, "bench", events[p][:1]); err != nil {
			b.Fatal(err)
		}
	}
	before := st.Stats()
	b.SetBytes(int64(size * batch))
	b.ReportAllocs()
	cpu := cpuClock()
	runAppenders(b, producers, func(p int) error {
		_, err := clients[p].Produce(ctx, "bench", events[p])
		return err
	})
	reportCPU(b, cpu, b.N*batch)
	reportEvents(b, b.N*batch)
	after := st.Stats()
	if n := after.Commits - before.Commits; n > 0 {
		b.ReportMetric(float64(after.Requests-before.Requests)/float64(n), "appends/commit")
	}
}

// BenchmarkConsume measures reading a topic back through a loopback gRPC
// server with Consume from the beginning; one op is one event received, so
// it lines up with BenchmarkRead and BenchmarkRawScan on the same data.
func BenchmarkConsume(b *testing.B) {
	for _, eng := range engines.Names {
		for _, size := range []int{readPayload, 1024} {
			b.Run(fmt.Sprintf("engine=%s/size=%s", eng, sizeName(size)), func(b *testing.B) {
				f := fixtureOf(b, eng, size)
				addr, _ := startServer(b, eng, f.dir, false)
				c := dial(b, addr)
				ctx := context.Background()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for n := 0; n < b.N; {
					limit := uint64(min(b.N-n, f.events))
					got := 0
					for ev, err := range c.Consume(ctx, "read", client.ConsumeOptions{Limit: limit}) {
						if err != nil {
							b.Fatal(err)
						}
						if len(ev.Payload) != size {
							b.Fatalf("payload of %d bytes, want %d", len(ev.Payload), size)
						}
						got++
					}
					if got != int(limit) {
						b.Fatalf("received %d events, want %d", got, limit)
					}
					n += got
				}
				b.StopTimer()
				reportEvents(b, b.N)
			})
		}
	}
}
