package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

type rawProduceStream = grpc.BidiStreamingClient[goethev1.ProduceStreamRequest, goethev1.ProduceStreamResponse]

// openRaw opens a ProduceStream with the generated client, to see exactly
// what the server sends.
func (ts *testServer) openRaw(ctx context.Context) rawProduceStream {
	ts.t.Helper()
	stream, err := ts.raw.ProduceStream(ctx)
	require.NoError(ts.t, err)
	return stream
}

func streamReq(id uint64, topic string, payloads ...string) *goethev1.ProduceStreamRequest {
	req := &goethev1.ProduceStreamRequest{RequestId: id, Produce: &goethev1.ProduceRequest{Topic: topic}}
	for _, p := range payloads {
		req.Produce.Events = append(req.Produce.Events, &goethev1.EventData{Payload: []byte(p)})
	}
	return req
}

// recvAll receives n responses and returns them by request id.
func recvAll(t *testing.T, stream rawProduceStream, n int) map[uint64]*goethev1.ProduceStreamResponse {
	t.Helper()
	out := make(map[uint64]*goethev1.ProduceStreamResponse, n)
	for range n {
		resp, err := stream.Recv()
		require.NoError(t, err)
		require.NotContains(t, out, resp.RequestId, "one response per request")
		out[resp.RequestId] = resp
	}
	return out
}

// openBatched opens a ProduceStream that asks for batched answers.
func (ts *testServer) openBatched(ctx context.Context) rawProduceStream {
	ts.t.Helper()
	return ts.openRaw(metadata.AppendToOutgoingContext(ctx, goethev1.HeaderBatchedAnswers, "1"))
}

// answersOf returns the answers of one response message, the top-level
// one first.
func answersOf(resp *goethev1.ProduceStreamResponse) []*goethev1.ProduceStreamAnswer {
	first := &goethev1.ProduceStreamAnswer{RequestId: resp.RequestId}
	switch o := resp.Outcome.(type) {
	case *goethev1.ProduceStreamResponse_Result:
		first.Outcome = &goethev1.ProduceStreamAnswer_Result{Result: o.Result}
	case *goethev1.ProduceStreamResponse_Error:
		first.Outcome = &goethev1.ProduceStreamAnswer_Error{Error: o.Error}
	}
	return append([]*goethev1.ProduceStreamAnswer{first}, resp.More...)
}

// recvAnswers receives messages until they hold n answers, and returns the
// answers in the order received.
func recvAnswers(t *testing.T, stream rawProduceStream, n int) []*goethev1.ProduceStreamAnswer {
	t.Helper()
	answers, _ := recvMessages(t, stream, n)
	return answers
}

// recvMessages is recvAnswers, also counting the messages.
func recvMessages(t *testing.T, stream rawProduceStream, n int) (answers []*goethev1.ProduceStreamAnswer, messages int) {
	t.Helper()
	for len(answers) < n {
		resp, err := stream.Recv()
		require.NoError(t, err)
		answers = append(answers, answersOf(resp)...)
		messages++
	}
	require.Len(t, answers, n, "no more answers than requests")
	return answers, messages
}

// requireStreamEndsOK requires the stream's next Recv to be its OK end.
func requireStreamEndsOK(t *testing.T, stream rawProduceStream) {
	t.Helper()
	_, err := stream.Recv()
	require.ErrorIs(t, err, io.EOF)
}

// Many goroutines share one Producer; each call gets the ids and seqs of
// its own events, the topic holds every event once in dense seqs, and each
// goroutine's calls are stored in the order it made them.
func TestProduceStreamConcurrentCalls(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		p, err := ts.c.NewProducer(ctxT(t))
		require.NoError(t, err)
		defer p.Close()

		const goroutines, calls = 32, 25
		type sent struct {
			res      client.ProduceResult
			payloads []string
		}
		results := make([][]sent, goroutines)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for c := range calls {
					s := sent{}
					batch := make([]client.EventData, 1+(g+c)%3)
					for i := range batch {
						s.payloads = append(s.payloads, fmt.Sprintf("g%02d-c%02d-%d", g, c, i))
						batch[i] = client.EventData{Payload: []byte(s.payloads[i]), Headers: map[string]string{"g": fmt.Sprint(g)}}
					}
					res, err := p.Produce(context.Background(), "orders", batch)
					if err != nil {
						t.Errorf("goroutine %d call %d: %v", g, c, err)
						return
					}
					s.res = res
					results[g] = append(results[g], s)
				}
			})
		}
		wg.Wait()
		require.False(t, t.Failed())

		evs := ts.readAll("orders", client.ConsumeOptions{})
		bySeq := make(map[uint64]client.Event, len(evs))
		last := map[string]string{}
		for i, e := range evs {
			require.Equal(t, uint64(i+1), e.Seq, "seqs are dense")
			if i > 0 {
				require.Greater(t, e.ID, evs[i-1].ID)
			}
			g := e.Headers["g"]
			require.Less(t, last[g], string(e.Payload), "goroutine %s's order is kept", g)
			last[g] = string(e.Payload)
			bySeq[e.Seq] = e
		}
		total := 0
		for g := range results {
			require.Len(t, results[g], calls)
			for _, s := range results[g] {
				require.Equal(t, len(s.payloads), s.res.Count)
				for i, pl := range s.payloads {
					e, ok := bySeq[s.res.Seq(i)]
					require.True(t, ok)
					require.Equal(t, pl, string(e.Payload), "the result names the call's own events")
					require.Equal(t, s.res.ID(i), e.ID)
				}
				total += len(s.payloads)
			}
		}
		require.Len(t, evs, total)
	})
}

// More requests than the per-stream in-flight bound, to two topics, sent
// without waiting for answers: every one is answered once, and each
// topic's events are stored in the order of the stream's requests (the
// server hands them to the store in the order received). With batched
// answers too.
func TestProduceStreamPipelinedInOrder(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batched=%t", batched), func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, "leveldb", server.Options{})
			stream := ts.openRaw(ctxT(t))
			if batched {
				stream = ts.openBatched(ctxT(t))
			}
			n := 3*server.MaxStreamInFlight + 7
			topic := func(i int) string { return []string{"a", "b"}[i%3%2] } // a, b, a, a, b, a, ...
			sendErr := make(chan error, 1)
			go func() {
				for i := range n {
					if err := stream.Send(streamReq(uint64(i), topic(i), fmt.Sprint(i))); err != nil {
						sendErr <- err
						return
					}
				}
				sendErr <- stream.CloseSend()
			}()
			answers, messages := recvMessages(t, stream, n)
			require.NoError(t, <-sendErr)
			requireStreamEndsOK(t, stream)

			bySeq := map[string]map[uint64]uint64{"a": {}, "b": {}} // topic → seq → request
			for _, a := range answers {
				res := a.GetResult()
				require.NotNil(t, res, "request %d: %v", a.RequestId, a.GetError())
				require.Equal(t, uint32(1), res.Count)
				tp := topic(int(a.RequestId))
				require.NotContains(t, bySeq[tp], res.FirstSeq)
				bySeq[tp][res.FirstSeq] = a.RequestId
			}
			if !batched {
				require.Equal(t, n, messages, "one message per answer")
			}
			t.Logf("%d answers in %d messages", n, messages)
			for _, tp := range []string{"a", "b"} {
				var want []string
				for i := range n {
					if topic(i) == tp {
						want = append(want, fmt.Sprint(i))
					}
				}
				require.Equal(t, want, payloads(ts.readAll(tp, client.ConsumeOptions{})), "topic %s in request order", tp)
				for seq := range uint64(len(want)) {
					require.Equal(t, want[seq], fmt.Sprint(bySeq[tp][seq+1]), "the answer names the request's own seq")
				}
			}
		})
	}
}

// The answers to requests completed by one commit come in one message
// when the client asks for batched answers (the first in the top-level
// fields, the rest in more), and one message each otherwise; either way in
// the order of the requests, each once.
func TestProduceStreamBatchedAnswers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		for _, batched := range []bool{false, true} {
			t.Run(fmt.Sprintf("batched=%t", batched), func(t *testing.T) {
				ts := startFaultServer(t, engine, server.Options{})
				ctx := ctxT(t)
				// Hold a lead write, so that the stream's requests queue
				// behind it and commit together.
				release := ts.fault.BlockWrites()
				defer release()
				lead := make(chan error, 1)
				go func() {
					_, err := ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "t", Events: events(1, 1)})
					lead <- err
				}()
				require.Eventually(t, func() bool { return ts.fault.Waiting() == 1 }, 10*time.Second, time.Millisecond)
				writes := ts.fault.Stats().Writes

				stream := ts.openRaw(ctx)
				if batched {
					stream = ts.openBatched(ctx)
				}
				const n = 200
				for i := range n {
					require.NoError(t, stream.Send(streamReq(uint64(i+1), "t", fmt.Sprint(i))))
				}
				// Answered at once, once the requests before it are queued.
				require.NoError(t, stream.Send(&goethev1.ProduceStreamRequest{RequestId: n + 1}))
				require.Equal(t, uint64(n+1), recvAnswers(t, stream, 1)[0].RequestId)
				release()
				require.NoError(t, <-lead)

				answers, messages := recvMessages(t, stream, n)
				require.Equal(t, writes+1, ts.fault.Stats().Writes, "one commit completed the %d requests", n)
				for i, a := range answers {
					require.Equal(t, uint64(i+1), a.RequestId, "in commit order")
					require.NotNil(t, a.GetResult(), "request %d: %v", a.RequestId, a.GetError())
					require.Equal(t, uint64(i+2), a.GetResult().FirstSeq)
				}
				if batched {
					require.Less(t, messages, n, "answers of one commit share messages")
				} else {
					require.Equal(t, n, messages, "one message per answer")
				}
				t.Logf("%d answers of one commit in %d messages", n, messages)
				require.NoError(t, stream.CloseSend())
				requireStreamEndsOK(t, stream)
			})
		}
	})
}

// The response header of a ProduceStream states the server's limits.
func TestProduceStreamHeader(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{MaxEventBytes: 1000, MaxBatchEvents: 100})
	stream := ts.openRaw(ctxT(t))
	md, err := stream.Header()
	require.NoError(t, err)
	require.Equal(t, []string{fmt.Sprint(ts.srv.Options().MaxRequestBytes)}, md.Get(goethev1.HeaderMaxRequestBytes))
	require.Equal(t, []string{"1000"}, md.Get(goethev1.HeaderMaxEventBytes))
	require.Equal(t, []string{"100"}, md.Get(goethev1.HeaderMaxBatchEvents))
	require.NoError(t, stream.CloseSend())
	requireStreamEndsOK(t, stream)
}

// A conditional request whose expectation fails, fails alone, with the
// status the unary Produce returns; the requests around it succeed and the
// stream goes on.
func TestProduceStreamConflictFailsAlone(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		ts.produce("t", "a", "b") // last seq 2

		stream := ts.openRaw(ctxT(t))
		bad := streamReq(2, "t", "never")
		bad.Produce.ExpectedLastSeq = proto.Uint64(7)
		for _, req := range []*goethev1.ProduceStreamRequest{streamReq(1, "t", "c"), bad, streamReq(3, "t", "d")} {
			require.NoError(t, stream.Send(req))
		}
		got := recvAll(t, stream, 3)
		require.NotNil(t, got[1].GetResult())
		require.NotNil(t, got[3].GetResult())
		st := status.FromProto(got[2].GetError())
		require.Equal(t, codes.FailedPrecondition, st.Code())
		require.Len(t, st.Details(), 1)
		info, ok := st.Details()[0].(*errdetails.ErrorInfo)
		require.True(t, ok)
		require.Equal(t, goethev1.ReasonExpectedLastSeqMismatch, info.Reason)
		// Concurrent requests commit in any order: the conflict saw 0, 1
		// or 2 of the others.
		require.Contains(t, []string{"2", "3", "4"}, info.Metadata["actual_last_seq"])
		require.Contains(t, st.Message(), "actual "+info.Metadata["actual_last_seq"])

		// Alone, it fails exactly as the unary Produce does: the same
		// code, message and details, through the same mapping.
		require.NoError(t, stream.Send(bad))
		alone := recvAll(t, stream, 1)[2].GetError()
		_, unaryErr := ts.raw.Produce(ctxT(t), bad.Produce)
		requireSameStatus(t, status.Convert(unaryErr), status.FromProto(alone))

		// The stream goes on, and a Producer sees a *ConflictError.
		require.NoError(t, stream.Send(streamReq(4, "t", "e")))
		require.NotNil(t, recvAll(t, stream, 1)[4].GetResult())
		require.NoError(t, stream.CloseSend())

		p, err := ts.c.NewProducer(ctxT(t))
		require.NoError(t, err)
		defer p.Close()
		_, err = p.Produce(ctxT(t), "t", []client.EventData{{Payload: []byte("x")}}, client.ExpectLastSeq(1))
		var ce *client.ConflictError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, uint64(5), ce.ActualLastSeq)
		require.ErrorIs(t, err, client.ErrConflict)
		res, err := p.Produce(ctxT(t), "t", []client.EventData{{Payload: []byte("f")}}, client.ExpectLastSeq(5))
		require.NoError(t, err)
		require.Equal(t, uint64(6), res.FirstSeq)
		stored := payloads(ts.readAll("t", client.ConsumeOptions{}))
		require.ElementsMatch(t, []string{"c", "d"}, stored[2:4])
		require.Equal(t, []string{"a", "b", "e", "f"}, append(stored[:2:2], stored[4:]...))
	})
}

// requireSameStatus requires two statuses to have the same code, message
// and details (compared unpacked: an Any's bytes may differ with map order).
func requireSameStatus(t *testing.T, want, got *status.Status) {
	t.Helper()
	require.Equal(t, want.Code(), got.Code())
	require.Equal(t, want.Message(), got.Message())
	wd, gd := want.Details(), got.Details()
	require.Len(t, gd, len(wd))
	for i := range wd {
		w, ok := wd[i].(proto.Message)
		require.True(t, ok, "detail %d: %v", i, wd[i])
		g, ok := gd[i].(proto.Message)
		require.True(t, ok, "detail %d: %v", i, gd[i])
		require.True(t, proto.Equal(w, g), "detail %d: want %v, got %v", i, w, g)
	}
}

// Invalid requests get INVALID_ARGUMENT, each alone, with the unary
// message; nothing of them is stored and the stream goes on.
func TestProduceStreamInvalidInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{MaxEventBytes: 1000, MaxBatchEvents: 100})
		cases := []struct {
			name string
			req  *goethev1.ProduceRequest
		}{
			{"empty topic", &goethev1.ProduceRequest{Events: events(1, 1)}},
			{"control character", &goethev1.ProduceRequest{Topic: "a\nb", Events: events(1, 1)}},
			{"no events", &goethev1.ProduceRequest{Topic: "t"}},
			{"too many events", &goethev1.ProduceRequest{Topic: "t", Events: events(101, 1)}},
			{"event too large", &goethev1.ProduceRequest{Topic: "t", Events: events(1, 1001)}},
		}
		stream := ts.openRaw(ctxT(t))
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, unaryErr := ts.raw.Produce(ctxT(t), c.req)
				require.Equal(t, codes.InvalidArgument, status.Code(unaryErr))

				id := uint64(100 + i)
				require.NoError(t, stream.Send(&goethev1.ProduceStreamRequest{RequestId: id, Produce: c.req}))
				require.NoError(t, stream.Send(streamReq(id+1000, "t", c.name)))
				got := recvAll(t, stream, 2)
				st := status.FromProto(got[id].GetError())
				require.Equal(t, codes.InvalidArgument, st.Code())
				requireSameStatus(t, status.Convert(unaryErr), st)
				require.NotNil(t, got[id+1000].GetResult(), "the stream goes on")
			})
		}
		require.NoError(t, stream.Send(&goethev1.ProduceStreamRequest{RequestId: 1}))
		st := status.FromProto(recvAll(t, stream, 1)[1].GetError())
		require.Equal(t, codes.InvalidArgument, st.Code())
		require.Contains(t, st.Message(), "needs a produce")
		require.NoError(t, stream.CloseSend())
		_, err := stream.Recv()
		require.ErrorIs(t, err, io.EOF)

		want := make([]string, len(cases))
		for i, c := range cases {
			want[i] = c.name
		}
		require.Equal(t, want, payloads(ts.readAll("t", client.ConsumeOptions{})), "only the valid requests are stored")
	})
}

// Stop ends a ProduceStream with UNAVAILABLE once the requests it has
// started are answered: every answered request is stored, and no other.
// Calls waiting on a Producer fail as unavailable, and later ones too.
func TestProduceStreamStop(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		ts.produce("raw", "before")
		ts.produce("producer", "before")

		// A raw stream with requests pipelined through the stop.
		rawCtx, cancelRaw := context.WithCancel(ctxT(t))
		defer cancelRaw()
		stream := ts.openRaw(rawCtx)
		go func() {
			for i := uint64(1); ; i++ {
				if stream.Send(streamReq(i, "raw", fmt.Sprint(i))) != nil {
					return
				}
				if i%64 == 0 {
					time.Sleep(time.Millisecond) // keep the send window open
				}
			}
		}()
		rawAcked := map[uint64]bool{} // seqs
		var rawAnswered atomic.Int64
		rawDone := make(chan error, 1)
		go func() {
			for {
				resp, err := stream.Recv()
				if err != nil {
					rawDone <- err
					return
				}
				if res := resp.GetResult(); res != nil {
					rawAcked[res.FirstSeq] = true
					rawAnswered.Add(1)
				} else {
					rawDone <- fmt.Errorf("request %d failed alone: %v", resp.RequestId, resp.GetError())
					return
				}
			}
		}()

		// A Producer shared by 8 goroutines.
		p, err := ts.c.NewProducer(ctxT(t))
		require.NoError(t, err)
		var mu sync.Mutex
		var acked []uint64
		var wg sync.WaitGroup
		stopCalls := make(chan struct{})
		callErrs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				for i := 0; ; i++ {
					res, err := p.Produce(context.Background(), "producer", []client.EventData{{Payload: fmt.Appendf(nil, "g%d-%d", g, i)}})
					if err != nil {
						callErrs <- err
						<-stopCalls
						return
					}
					mu.Lock()
					acked = append(acked, res.FirstID)
					mu.Unlock()
				}
			})
		}
		// Stop once both kinds of stream are busy.
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return rawAnswered.Load() > 0 && len(acked) > 0
		}, 20*time.Second, time.Millisecond)

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, ts.srv.Stop(ctx), "the stop was graceful")
		require.NoError(t, <-ts.served)

		err = <-rawDone
		require.Equal(t, codes.Unavailable, status.Code(err), "the raw stream: %v", err)
		for range 8 {
			err := <-callErrs
			require.ErrorIs(t, err, client.ErrUnavailable)
			require.True(t, client.IsReason(err, goethev1.ReasonServerStopping), "%v", err)
		}
		close(stopCalls)
		wg.Wait()
		_, err = p.Produce(ctxT(t), "producer", []client.EventData{{Payload: []byte("late")}})
		require.ErrorIs(t, err, client.ErrUnavailable, "a broken Producer fails later calls too")
		require.ErrorIs(t, p.Close(), client.ErrUnavailable, "Close reports what broke the stream")
		require.NoError(t, ts.c.Close())
		require.NoError(t, ts.conn.Close())
		require.NoError(t, ts.st.Close())

		ts.start() // same folder
		raw := ts.readAll("raw", client.ConsumeOptions{})
		require.NotEmpty(t, rawAcked)
		require.Len(t, raw, 1+len(rawAcked), "every answered request is stored, and no other")
		for _, e := range raw[1:] {
			require.True(t, rawAcked[e.Seq], "event %d was answered", e.Seq)
		}
		stored := map[uint64]bool{}
		for _, e := range ts.readAll("producer", client.ConsumeOptions{}) {
			stored[e.ID] = true
		}
		require.NotEmpty(t, acked)
		for _, id := range acked {
			require.True(t, stored[id], "acknowledged event %d is stored", id)
		}
	})
}

// The client's own checks fail a call alone: a string that is not UTF-8
// (which the server could not decode) and a request over the size the
// server announced (which would end the stream); a call whose context is
// done fails without being sent. Close lets calls in flight finish, and
// later calls fail with ErrProducerClosed.
func TestProducerClientChecksAndClose(t *testing.T) {
	// MaxRequestBytes is raised to MinRequestBytes(1000), 68 KiB.
	ts := startServer(t, "leveldb", server.Options{MaxEventBytes: 1000, MaxRequestBytes: 1})
	p, err := ts.c.NewProducer(ctxT(t))
	require.NoError(t, err)
	ctx := ctxT(t)
	one := []client.EventData{{Payload: []byte("x")}}

	_, err = p.Produce(ctx, "bad\xff", one)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = p.Produce(ctx, "t", []client.EventData{{Headers: map[string]string{"k": "\xff"}}})
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	big := make([]client.EventData, 100)
	for i := range big {
		big[i].Payload = make([]byte, 1000)
	}
	_, err = p.Produce(ctx, "t", big)
	require.ErrorIs(t, err, client.ErrTooLarge)
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = p.Produce(done, "t", one)
	require.ErrorIs(t, err, context.Canceled)

	res, err := p.Produce(ctx, "t", one)
	require.NoError(t, err, "the stream went on")
	require.Equal(t, uint64(1), res.FirstSeq)

	// Close while calls are in flight: each is answered.
	var wg sync.WaitGroup
	results := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			_, err := p.Produce(ctx, "t", one)
			results <- err
		})
	}
	time.Sleep(time.Millisecond)
	require.NoError(t, p.Close())
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, client.ErrProducerClosed, "a call is answered or refused as closed")
	}
	_, err = p.Produce(ctx, "t", one)
	require.ErrorIs(t, err, client.ErrProducerClosed)
	require.NoError(t, p.Close(), "Close is idempotent")
	info, err := ts.c.Topic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, uint64(1+ok), info.Count, "the answered calls, and only they, are stored")
}

// Ending the Producer's context breaks its stream: calls fail with a
// clear error, and the server is not disturbed.
func TestProducerContextEnds(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{})
	ctx, cancel := context.WithCancel(ctxT(t))
	p, err := ts.c.NewProducer(ctx)
	require.NoError(t, err)
	_, err = p.Produce(ctxT(t), "t", []client.EventData{{Payload: []byte("x")}})
	require.NoError(t, err)
	cancel()
	require.Eventually(t, func() bool {
		_, err = p.Produce(ctxT(t), "t", []client.EventData{{Payload: []byte("y")}})
		return err != nil
	}, 10*time.Second, time.Millisecond)
	require.ErrorIs(t, err, context.Canceled)
	require.True(t, errors.Is(p.Close(), context.Canceled))
	ts.produce("t", "z") // the server serves on
}

// Reflection serves ProduceStream with every file it depends on
// (google/rpc/status.proto included), so that grpcurl can call it without
// the .proto files.
func TestProduceStreamReflection(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{})
	stream, err := reflectionpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "goethe.v1.Goethe.ProduceStream"},
	}))
	res, err := stream.Recv()
	require.NoError(t, err)
	require.NoError(t, stream.CloseSend())
	set := &descriptorpb.FileDescriptorSet{}
	for _, b := range res.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := &descriptorpb.FileDescriptorProto{}
		require.NoError(t, proto.Unmarshal(b, fd))
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(set)
	require.NoError(t, err, "the files served resolve on their own")
	d, err := files.FindDescriptorByName("goethe.v1.ProduceStreamResponse")
	require.NoError(t, err)
	errField := d.(protoreflect.MessageDescriptor).Fields().ByName("error")
	require.Equal(t, protoreflect.FullName("google.rpc.Status"), errField.Message().FullName())
}
