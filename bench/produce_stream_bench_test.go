package bench

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
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
	cpu := cpuClock()
	runAppenders(b, producers, func(p int) error {
		_, err := prods[p].Produce(ctx, "bench", events[p])
		return err
	})
	reportCPU(b, cpu, b.N*batch)
	reportEvents(b, b.N*batch)
	after := st.Stats()
	if n := after.Commits - before.Commits; n > 0 {
		b.ReportMetric(float64(after.Requests-before.Requests)/float64(n), "appends/commit")
	}
}

// BenchmarkProduceStreamPipelined measures the server's ProduceStream path
// apart from client.Producer: one stream over the generated gRPC client,
// one goroutine sending requests of one event and keeping inflight of them
// unanswered, one receiving the answers. One op is one request. With
// batched=true the stream asks for batched answers (request header
// goethe-batched-answers: 1), so the answers of one commit come in one
// message; "answers/msg" reports how many arrived per response message.
func BenchmarkProduceStreamPipelined(b *testing.B) {
	for _, eng := range engines.Names {
		for _, sync := range syncModes {
			for _, inflight := range []int{16, 1000} {
				for _, batched := range []bool{false, true} {
					name := fmt.Sprintf("engine=%s/sync=%t/size=100B/inflight=%d/batched=%t", eng, sync, inflight, batched)
					b.Run(name, func(b *testing.B) { benchPipelined(b, eng, sync, 100, inflight, batched) })
				}
			}
		}
	}
}

func benchPipelined(b *testing.B, eng string, sync bool, size, inflight int, batched bool) {
	addr, st := startServer(b, eng, b.TempDir(), sync)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	if batched {
		ctx = metadata.AppendToOutgoingContext(ctx, goethev1.HeaderBatchedAnswers, "1")
	}
	stream, err := goethev1.NewGoetheClient(conn).ProduceStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	req := &goethev1.ProduceStreamRequest{Produce: &goethev1.ProduceRequest{
		Topic: "bench", Events: []*goethev1.EventData{{Payload: payloadOf(size)}},
	}}
	resp := &goethev1.ProduceStreamResponse{}
	// One warm-up request, so that opening the stream is not timed.
	if err := stream.Send(req); err != nil {
		b.Fatal(err)
	}
	if err := stream.RecvMsg(resp); err != nil {
		b.Fatal(err)
	}

	window := make(chan struct{}, inflight)
	received := make(chan error, 1)
	var messages int
	go func() {
		for answered := 0; answered < b.N; {
			if err := stream.RecvMsg(resp); err != nil {
				received <- err
				return
			}
			if resp.GetResult() == nil {
				received <- fmt.Errorf("request %d: %v", resp.RequestId, resp.GetError())
				return
			}
			for _, a := range resp.More {
				if a.GetResult() == nil {
					received <- fmt.Errorf("request %d: %v", a.RequestId, a.GetError())
					return
				}
			}
			n := 1 + len(resp.More)
			answered += n
			messages++
			for range n {
				<-window
			}
		}
		received <- nil
	}()
	before := st.Stats()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := cpuClock()
	b.ResetTimer()
	for i := range b.N {
		window <- struct{}{}
		req.RequestId = uint64(i + 1)
		if err := stream.Send(req); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-received; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	reportCPU(b, cpu, b.N)
	reportEvents(b, b.N)
	if messages > 0 {
		b.ReportMetric(float64(b.N)/float64(messages), "answers/msg")
	}
	after := st.Stats()
	if n := after.Commits - before.Commits; n > 0 {
		b.ReportMetric(float64(after.Requests-before.Requests)/float64(n), "appends/commit")
	}
	if err := stream.CloseSend(); err != nil {
		b.Fatal(err)
	}
}
