package client_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/server"
	"github.com/goethe-log/goethe/store"
)

// BenchmarkProducer measures the asynchronous Producer through a loopback
// server: one op is one single-event call. With shape=wait, P goroutines
// share one Producer and each waits for its own event's answer
// (Producer.Produce), as an application's handlers would; with
// shape=pipelined, one goroutine Sends P events, then waits for them all.
// Producer p writes topic p mod K; inflight is
// ProducerOptions.MaxInFlightRequests (its default was chosen from this
// benchmark). It reports events/s, Sends per request and requests per
// store commit.
func BenchmarkProducer(b *testing.B) {
	for _, durable := range []bool{true, false} {
		for _, c := range []struct {
			shape             string
			producers, topics int
			inflight          []int
		}{
			{"wait", 1, 1, []int{64}},
			{"wait", 16, 1, []int{64}},
			{"wait", 64, 16, []int{4, 16, 64, 256}},
			{"wait", 256, 64, []int{4, 16, 64, 256}},
			{"pipelined", 1000, 1, []int{64}},
		} {
			for _, inflight := range c.inflight {
				name := fmt.Sprintf("sync=%t/shape=%s/producers=%d/topics=%d/inflight=%d", durable, c.shape, c.producers, c.topics, inflight)
				b.Run(name, func(b *testing.B) {
					benchProducer(b, durable, c.shape, c.producers, c.topics, client.ProducerOptions{MaxInFlightRequests: inflight})
				})
			}
		}
	}
}

func benchProducer(b *testing.B, durable bool, shape string, producers, topics int, opts client.ProducerOptions) {
	sopts := store.DefaultOptions()
	sopts.UnsafeNoSync = !durable
	addr, st := testutil.StartServer(b, engines.Default, b.TempDir(), sopts, server.DefaultOptions())
	c, err := client.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	p, err := c.NewProducerWith(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprint("bench-", i)
		if _, err := p.Produce(ctx, names[i], []client.EventData{{Payload: []byte("warm-up")}}); err != nil {
			b.Fatal(err)
		}
	}
	payload := make([]byte, 100)
	beforeP, beforeS := p.Stats(), st.Stats()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if shape == "pipelined" {
		futures := make([]*client.Future, 0, producers)
		events := []client.EventData{{Payload: payload}}
		for i := 0; i < b.N; {
			futures = futures[:0]
			for ; len(futures) < producers && i < b.N; i++ {
				f, err := p.Send(ctx, names[i%topics], events)
				if err != nil {
					b.Fatal(err)
				}
				futures = append(futures, f)
			}
			for _, f := range futures {
				if _, err := f.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for g := range producers {
			wg.Go(func() {
				events := []client.EventData{{Payload: payload}}
				for next.Add(1) <= int64(b.N) {
					if _, err := p.Produce(ctx, names[g%topics], events); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	afterP, afterS := p.Stats(), st.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if n := afterP.Requests - beforeP.Requests; n > 0 {
		b.ReportMetric(float64(afterP.Sends-beforeP.Sends)/float64(n), "sends/request")
	}
	if n := afterS.Commits - beforeS.Commits; n > 0 {
		b.ReportMetric(float64(afterS.Requests-beforeS.Requests)/float64(n), "requests/commit")
	}
}
