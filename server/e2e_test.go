package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// 16 producers append concurrently; the topic holds every event once, with
// dense seqs, strictly increasing ids, each producer's events in its order,
// and each Produce's events at consecutive ids.
func TestOrderAcrossConcurrentProducers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		const producers, rounds = 16, 20
		type sent struct {
			res      client.ProduceResult
			payloads []string
		}
		results := make([][]sent, producers)
		var wg sync.WaitGroup
		errs := make(chan error, producers)
		for p := range producers {
			wg.Go(func() {
				for r := range rounds {
					n := 1 + (p+r)%3 // batches of 1 to 3 events
					batch := make([]client.EventData, n)
					s := sent{}
					for i := range batch {
						pl := fmt.Sprintf("p%02d-r%02d-%d", p, r, i)
						batch[i] = client.EventData{Payload: []byte(pl), Headers: map[string]string{"producer": strconv.Itoa(p)}}
						s.payloads = append(s.payloads, pl)
					}
					res, err := ts.c.Produce(context.Background(), "orders", batch)
					if err != nil {
						errs <- err
						return
					}
					s.res = res
					results[p] = append(results[p], s)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}

		evs := ts.readAll("orders", client.ConsumeOptions{})
		byID := make(map[uint64]client.Event, len(evs))
		lastByProducer := map[string]string{}
		for i, e := range evs {
			require.Equal(t, "orders", e.Topic)
			require.Equal(t, uint64(i+1), e.Seq, "seqs are dense")
			require.Equal(t, time.Unix(0, int64(e.ID)), e.Time)
			if i > 0 {
				require.Greater(t, e.ID, evs[i-1].ID, "ids strictly increase")
			}
			p := e.Headers["producer"]
			require.Less(t, lastByProducer[p], string(e.Payload), "producer %s's order is kept", p)
			lastByProducer[p] = string(e.Payload)
			byID[e.ID] = e
		}
		total := 0
		for _, rs := range results {
			for _, s := range rs {
				require.Equal(t, len(s.payloads), s.res.Count)
				for i, pl := range s.payloads {
					e, ok := byID[s.res.ID(i)]
					require.True(t, ok, "event %s at its acknowledged id", pl)
					require.Equal(t, pl, string(e.Payload))
					require.Equal(t, s.res.Seq(i), e.Seq)
				}
				total += len(s.payloads)
			}
		}
		require.Len(t, evs, total)
		info, err := ts.c.Topic(ctxT(t), "orders")
		require.NoError(t, err)
		require.Equal(t, uint64(total), info.Count)
		require.Equal(t, uint64(total), info.LastSeq)
		require.Equal(t, evs[0].ID, info.FirstID)
		require.Equal(t, evs[len(evs)-1].ID, info.LastID)
	})
}

// A following stream receives events committed after it subscribed, from
// the end, from the beginning, and on a topic that does not exist yet.
func TestFollowReceivesNewEvents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		ts.produce("t", "old1", "old2")

		fromEnd, err := ts.c.Subscribe(ctxT(t), "t", client.ConsumeOptions{From: client.End(), Follow: true})
		require.NoError(t, err)
		defer fromEnd.Close()
		fromStart, err := ts.c.Subscribe(ctxT(t), "t", client.ConsumeOptions{Follow: true})
		require.NoError(t, err)
		defer fromStart.Close()
		unborn, err := ts.c.Subscribe(ctxT(t), "later", client.ConsumeOptions{From: client.End(), Follow: true})
		require.NoError(t, err)
		defer unborn.Close()

		require.Equal(t, "old1", string(next(t, fromStart).Payload))
		require.Equal(t, "old2", string(next(t, fromStart).Payload))
		for i := range 3 {
			pl := "new" + strconv.Itoa(i)
			r := ts.produce("t", pl)[0]
			for _, sub := range []*client.Subscription{fromEnd, fromStart} {
				ev := next(t, sub)
				require.Equal(t, pl, string(ev.Payload))
				require.Equal(t, r.FirstID, ev.ID)
				require.Equal(t, r.FirstSeq, ev.Seq)
			}
		}
		ts.produce("later", "first")
		require.Equal(t, "first", string(next(t, unborn).Payload))
	})
}

// A limit ends a following stream with io.EOF; pages respect
// ConsumePageEvents and carry the topic once per message.
func TestConsumeLimitAndPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{ConsumePageEvents: 7})
		batch := make([]client.EventData, 20)
		for i := range batch {
			batch[i].Payload = []byte{byte(i)}
		}
		_, err := ts.c.Produce(ctxT(t), "t", batch)
		require.NoError(t, err)

		sizes := func(req *goethev1.ConsumeRequest) []int {
			stream, err := ts.raw.Consume(ctxT(t), req)
			require.NoError(t, err)
			var out []int
			for {
				m, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return out
				}
				require.NoError(t, err)
				require.Equal(t, "t", m.Topic)
				out = append(out, len(m.Events))
			}
		}
		require.Equal(t, []int{7, 7, 6}, sizes(&goethev1.ConsumeRequest{Topic: "t"}))
		require.Equal(t, []int{7, 3}, sizes(&goethev1.ConsumeRequest{Topic: "t", Limit: 10}))
		require.Equal(t, []int{7, 7, 6}, sizes(&goethev1.ConsumeRequest{Topic: "t", Limit: 20, Follow: true}))
		require.Equal(t, []int{1}, sizes(&goethev1.ConsumeRequest{Topic: "t", Limit: 1, Follow: true}))

		evs := ts.readAll("t", client.ConsumeOptions{Limit: 5, Follow: true})
		require.Len(t, evs, 5)
		require.Equal(t, []byte{4}, evs[4].Payload)
	})
}

// A consumer commits its cursor, the server restarts on the same folder,
// and the consumer resumes after its cursor; ids keep increasing.
func TestCursorResumeAfterRestart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		res := ts.produce("t", "e1", "e2", "e3", "e4", "e5", "e6")

		// No cursor yet: each fallback applies.
		_, err := ts.c.GetCursor(ctxT(t), "t", "worker")
		require.ErrorIs(t, err, client.ErrNotFound)
		evs := ts.readAll("t", client.ConsumeOptions{From: client.FromCursor("worker", client.FallbackBeginning)})
		require.Equal(t, []string{"e1", "e2", "e3", "e4", "e5", "e6"}, payloads(evs))
		require.Empty(t, ts.readAll("t", client.ConsumeOptions{From: client.FromCursor("worker", client.FallbackEnd)}))

		// Process four events, committing each.
		from := client.FromCursor("worker", client.FallbackBeginning)
		for ev, err := range ts.c.Consume(ctxT(t), "t", client.ConsumeOptions{From: from, Limit: 4}) {
			require.NoError(t, err)
			require.NoError(t, ts.c.CommitCursor(ctxT(t), "t", "worker", ev.ID))
		}
		cur, err := ts.c.GetCursor(ctxT(t), "t", "worker")
		require.NoError(t, err)
		require.Equal(t, res[3].FirstID, cur.ID)
		require.Equal(t, uint64(6), cur.LastSeq)
		require.Equal(t, res[5].FirstID, cur.LastID)
		require.Equal(t, uint64(2), cur.Lag)
		require.WithinDuration(t, time.Now(), cur.Updated, time.Minute)

		ts.restart()

		cur2, err := ts.c.GetCursor(ctxT(t), "t", "worker")
		require.NoError(t, err)
		require.Equal(t, cur, cur2)
		require.Equal(t, []string{"e5", "e6"}, payloads(ts.readAll("t", client.ConsumeOptions{From: from})))

		// Following from the cursor picks up new events too.
		sub, err := ts.c.Subscribe(ctxT(t), "t", client.ConsumeOptions{From: from, Follow: true})
		require.NoError(t, err)
		defer sub.Close()
		require.Equal(t, "e5", string(next(t, sub).Payload))
		require.Equal(t, "e6", string(next(t, sub).Payload))
		r7 := ts.produce("t", "e7")[0]
		ev := next(t, sub)
		require.Equal(t, "e7", string(ev.Payload))
		require.Greater(t, ev.ID, res[5].FirstID)
		require.Equal(t, uint64(7), r7.FirstSeq)

		// Committing to the end leaves no lag.
		require.NoError(t, ts.c.CommitCursor(ctxT(t), "t", "worker", ev.ID))
		cur3, err := ts.c.GetCursor(ctxT(t), "t", "worker")
		require.NoError(t, err)
		require.Zero(t, cur3.Lag)
		require.Empty(t, ts.readAll("t", client.ConsumeOptions{From: from}))
	})
}

// Starts that are not an event's id land on the nearest event at or after
// them.
func TestNearestCursor(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		var ids []uint64
		for _, p := range []string{"a", "b", "c"} {
			ids = append(ids, ts.produce("t", p)[0].FirstID)
			time.Sleep(2 * time.Millisecond) // ids (commit times) at least 2ms apart
		}
		require.Greater(t, ids[1]-ids[0], uint64(1000))
		between := ids[0] + (ids[1]-ids[0])/2
		at := func(id uint64) time.Time { return time.Unix(0, int64(id)) }

		cases := []struct {
			name string
			from client.Start
			want []string
		}{
			{"beginning", client.Beginning(), []string{"a", "b", "c"}},
			{"after an existing id", client.AfterID(ids[0]), []string{"b", "c"}},
			{"after a non-existing id", client.AfterID(between), []string{"b", "c"}},
			{"at an existing id", client.AtID(ids[1]), []string{"b", "c"}},
			{"at a non-existing id", client.AtID(between), []string{"b", "c"}},
			{"at a time between two events", client.AtTime(at(between)), []string{"b", "c"}},
			{"at an event's exact time", client.AtTime(at(ids[2])), []string{"c"}},
			{"before all, by time", client.AtTime(at(ids[0]).Add(-time.Hour)), []string{"a", "b", "c"}},
			{"before the epoch", client.AtTime(time.Unix(-100, 0)), []string{"a", "b", "c"}},
			{"before all, by id", client.AfterID(0), []string{"a", "b", "c"}},
			{"after all, by id", client.AfterID(ids[2]), nil},
			{"after all, by time", client.AtTime(at(ids[2] + 1)), nil},
			{"after the largest id", client.AfterID(math.MaxUint64), nil},
			{"end", client.End(), nil},
		}
		for _, c := range cases {
			require.Equal(t, c.want, payloads(ts.readAll("t", client.ConsumeOptions{From: c.from})), c.name)
			if c.want != nil {
				require.Equal(t, c.want[:1], payloads(ts.readAll("t", client.ConsumeOptions{From: c.from, Limit: 1})), c.name)
			}
		}

		// After all, following: only the events committed later arrive.
		last := ids[2]
		for i, form := range []func(last uint64) client.Start{
			func(last uint64) client.Start { return client.AfterID(last) },
			func(last uint64) client.Start { return client.AtTime(at(last + 1)) },
			func(last uint64) client.Start { return client.AtID(last + 1) },
			func(uint64) client.Start { return client.End() },
		} {
			from := form(last)
			sub, err := ts.c.Subscribe(ctxT(t), "t", client.ConsumeOptions{From: from, Follow: true})
			require.NoError(t, err, from.String())
			require.Equal(t, last+1, sub.Start(), from.String())
			pl := "d" + strconv.Itoa(i)
			r := ts.produce("t", pl)[0]
			ev := next(t, sub)
			require.Equal(t, pl, string(ev.Payload), from.String())
			require.Equal(t, r.FirstID, ev.ID)
			sub.Close()
			last = r.FirstID
		}
	})
}

// A Produce with a wrong expected last seq fails with FAILED_PRECONDITION,
// carrying the actual last seq, and stores nothing.
func TestConflictOnWrongExpectedSeq(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		one := []client.EventData{{Payload: []byte("x")}}
		_, err := ts.c.Produce(ctxT(t), "acct", one, client.ExpectLastSeq(1))
		var ce *client.ConflictError
		require.ErrorAs(t, err, &ce, "a new topic has last seq 0")
		require.Zero(t, ce.ActualLastSeq)

		r, err := ts.c.Produce(ctxT(t), "acct", one, client.ExpectLastSeq(0))
		require.NoError(t, err)
		require.Equal(t, uint64(1), r.FirstSeq)
		r, err = ts.c.Produce(ctxT(t), "acct", []client.EventData{{Payload: []byte("y")}, {Payload: []byte("z")}}, client.ExpectLastSeq(r.LastSeq()))
		require.NoError(t, err)
		require.Equal(t, uint64(3), r.LastSeq())

		for _, wrong := range []uint64{0, 2, 4, math.MaxUint64} {
			_, err = ts.c.Produce(ctxT(t), "acct", one, client.ExpectLastSeq(wrong))
			require.ErrorIs(t, err, client.ErrConflict)
			require.ErrorAs(t, err, &ce)
			require.Equal(t, uint64(3), ce.ActualLastSeq)
			requireCode(t, err, codes.FailedPrecondition)
			require.Contains(t, err.Error(), "actual 3")
		}
		// The raw status says the same, in its message and its detail.
		wrong := uint64(7)
		_, err = ts.raw.Produce(ctxT(t), &goethev1.ProduceRequest{Topic: "acct", Events: []*goethev1.EventData{{Payload: []byte("x")}}, ExpectedLastSeq: &wrong})
		info := requireReason(t, err, codes.FailedPrecondition, goethev1.ReasonExpectedLastSeqMismatch)
		require.Equal(t, map[string]string{"topic": "acct", "expected_last_seq": "7", "actual_last_seq": "3"}, info.Metadata)
		require.Contains(t, err.Error(), "actual 3")
		require.Equal(t, []string{"x", "y", "z"}, payloads(ts.readAll("acct", client.ConsumeOptions{})))
	})
}

// Health checks report SERVING for the server and the service, and
// reflection lists the Goethe service.
func TestHealthAndReflection(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{})
	h := healthpb.NewHealthClient(ts.conn)
	for _, svc := range []string{"", server.ServiceName} {
		res, err := h.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, res.Status, "service %q", svc)
	}

	stream, err := reflectionpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}))
	res, err := stream.Recv()
	require.NoError(t, err)
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	require.Contains(t, names, "goethe.v1.Goethe")
	require.Contains(t, names, "grpc.health.v1.Health")

	// The service's descriptor is served too, so grpcurl needs no .proto.
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "goethe.v1.Goethe"},
	}))
	res, err = stream.Recv()
	require.NoError(t, err)
	require.NotEmpty(t, res.GetFileDescriptorResponse().GetFileDescriptorProto())
	require.NoError(t, stream.CloseSend())
}

// Stop ends following streams with UNAVAILABLE, lets Produces in flight
// finish, makes Serve return, and leaves every acknowledged event stored.
func TestGracefulStop(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		ts.produce("t", "before")
		sub, err := ts.c.Subscribe(ctxT(t), "t", client.ConsumeOptions{From: client.End(), Follow: true})
		require.NoError(t, err)
		defer sub.Close()
		watch, err := healthpb.NewHealthClient(ts.conn).Watch(ctxT(t), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		first, err := watch.Recv()
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.Status)

		// Producers run through the stop; each Produce is either
		// acknowledged or fails as unavailable.
		var mu sync.Mutex
		var acked []uint64
		var wg sync.WaitGroup
		stopProducing := make(chan struct{})
		for p := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stopProducing:
						return
					default:
					}
					r, err := ts.c.Produce(context.Background(), "t", []client.EventData{{Payload: fmt.Appendf(nil, "p%d-%d", p, i)}})
					if err != nil {
						if !errors.Is(err, client.ErrUnavailable) {
							t.Errorf("produce during stop: %v", err)
						}
						return
					}
					mu.Lock()
					acked = append(acked, r.FirstID)
					mu.Unlock()
				}
			})
		}
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) > 0
		}, 20*time.Second, time.Millisecond, "producing before the stop")

		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			stopped <- ts.srv.Stop(ctx)
		}()
		// The follower sees events, then the stop.
		var last error
		for {
			_, err := sub.Next()
			if err != nil {
				last = err
				break
			}
		}
		require.ErrorIs(t, last, client.ErrUnavailable)
		require.True(t, client.IsReason(last, goethev1.ReasonServerStopping), "%v", last)
		select {
		case err := <-stopped:
			require.NoError(t, err, "the stop was graceful")
		case <-time.After(20 * time.Second):
			t.Fatal("Stop did not return")
		}
		select {
		case err := <-ts.served:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
		close(stopProducing)
		wg.Wait()
		for {
			_, err := watch.Recv()
			if err != nil {
				break // the health watch ended too
			}
		}
		_, err = ts.c.Produce(ctxT(t), "t", []client.EventData{{Payload: []byte("late")}})
		require.ErrorIs(t, err, client.ErrUnavailable)
		require.NoError(t, ts.c.Close())
		require.NoError(t, ts.conn.Close())
		// Stop leaves the store open: its owner reads it, then closes it.
		info, err := ts.st.Info("t")
		require.NoError(t, err)
		require.GreaterOrEqual(t, info.Count, uint64(1+len(acked)))
		require.NoError(t, ts.st.Close())

		ts.start() // same folder
		evs := ts.readAll("t", client.ConsumeOptions{})
		stored := map[uint64]bool{}
		for _, e := range evs {
			stored[e.ID] = true
		}
		for _, id := range acked {
			require.True(t, stored[id], "acknowledged event %d is stored", id)
		}
		// Beyond "before" and the acknowledged ones, at most the one
		// Produce per producer that the stop cut may have been stored.
		require.LessOrEqual(t, len(evs)-1-len(acked), 4)
		require.NotEmpty(t, acked)
	})
}

// Cancelling the client's context ends a following stream.
func TestClientCancelEndsFollow(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{})
	ctx, cancel := context.WithCancel(ctxT(t))
	sub, err := ts.c.Subscribe(ctx, "t", client.ConsumeOptions{Follow: true})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end on cancel")
	}
	// With every stream ended, a graceful stop is prompt.
	begin := time.Now()
	ts.stop()
	require.Less(t, time.Since(begin), 5*time.Second)
}

// ListTopics pages by name.
func TestListTopics(t *testing.T) {
	ts := startServer(t, "pebble", server.Options{})
	names := []string{"a", "a/b", "b", "z z", "ü"} // byte order
	for _, n := range names {
		ts.produce(n, "x")
	}
	var got []string
	for ti, err := range ts.c.Topics(ctxT(t), 2) {
		require.NoError(t, err)
		require.Equal(t, uint64(1), ti.Count)
		got = append(got, ti.Name)
	}
	require.Equal(t, names, got)

	res, err := ts.raw.ListTopics(ctxT(t), &goethev1.ListTopicsRequest{PageSize: 2})
	require.NoError(t, err)
	require.Len(t, res.Topics, 2)
	require.Equal(t, "a/b", res.NextPageToken)
	res, err = ts.raw.ListTopics(ctxT(t), &goethev1.ListTopicsRequest{PageSize: 3, PageToken: "a/b"})
	require.NoError(t, err)
	require.Len(t, res.Topics, 3)
	require.Empty(t, res.NextPageToken)
	res, err = ts.raw.ListTopics(ctxT(t), &goethev1.ListTopicsRequest{})
	require.NoError(t, err)
	require.Len(t, res.Topics, 5, "the default page holds them all")
	res, err = ts.raw.ListTopics(ctxT(t), &goethev1.ListTopicsRequest{PageSize: math.MaxUint32})
	require.NoError(t, err)
	require.Len(t, res.Topics, 5, "a huge page size is capped, not refused")
}

// A reader that does not read holds the stream at one page (plus the
// transport's flow-control windows), however large the topic. The bound
// leaves room for goleveldb's 8 MiB block cache, which the read fills.
func TestSlowReaderBoundedMemory(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{})
	payload := make([]byte, 1024)
	batch := make([]client.EventData, 1000)
	for i := range batch {
		batch[i].Payload = payload
	}
	const batches = 64 // 64 MiB of payloads
	for range batches {
		_, err := ts.c.Produce(ctxT(t), "big", batch)
		require.NoError(t, err)
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	sub, err := ts.c.Subscribe(ctxT(t), "big", client.ConsumeOptions{})
	require.NoError(t, err)
	defer sub.Close()
	next(t, sub)
	time.Sleep(300 * time.Millisecond) // let the server run ahead if it would
	grown := int64(heap()) - int64(before)
	t.Logf("a stalled stream holds %.1f MiB", float64(grown)/(1<<20))
	require.Less(t, grown, int64(40<<20), "a stalled stream holds %d MiB", grown>>20)

	n := 1
	for {
		_, err := sub.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		n++
	}
	require.Equal(t, batches*len(batch), n)
}
