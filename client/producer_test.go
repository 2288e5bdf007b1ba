package client_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// gate is a store.CommitObserver that can hold one commit: a test arms it,
// the next commit waits in ObserveCommit (written, not yet acknowledged)
// until the test releases it. So a test knows, without timing, that a
// request is in flight while it sends others.
type gate struct {
	mu      sync.Mutex
	armed   bool
	held    chan struct{}
	release chan struct{}
}

func (g *gate) ObserveCommit(requests, events, bytes int, write time.Duration, err error) {
	g.mu.Lock()
	if !g.armed {
		g.mu.Unlock()
		return
	}
	g.armed = false
	held, release := g.held, g.release
	g.mu.Unlock()
	close(held)
	<-release
}

// arm makes the next commit wait until release is called; held is closed
// once it waits.
func (g *gate) arm() (held <-chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = true
	g.held, g.release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	rel := g.release
	return g.held, func() { once.Do(func() { close(rel) }) }
}

// ctxT is a context that ends with the test, and within 30 s.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitClosed fails the test if ch is not closed within 10 s.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// prodServer is a real server on loopback whose commits a test can hold.
type prodServer struct {
	c    *client.Client
	st   *store.Store
	gate *gate
}

func startProdServer(t *testing.T, opts server.Options) *prodServer {
	g := &gate{}
	sopts := store.DefaultOptions()
	sopts.Observer = g
	addr, st := testutil.StartServer(t, "leveldb", t.TempDir(), sopts, opts)
	c, err := client.Dial(addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &prodServer{c: c, st: st, gate: g}
}

func (s *prodServer) producer(t *testing.T, opts client.ProducerOptions) *client.Producer {
	p, err := s.c.NewProducerWith(ctxT(t), opts)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// hold sends one event to topic and returns once its commit is held; the
// returned Future is that event's.
func (s *prodServer) hold(t *testing.T, p *client.Producer, topic string) (*client.Future, func()) {
	held, release := s.gate.arm()
	t.Cleanup(release)
	f, err := p.Send(ctxT(t), topic, one("held"))
	require.NoError(t, err)
	waitClosed(t, held, "the held commit")
	return f, release
}

func one(payload string) []client.EventData {
	return []client.EventData{{Payload: []byte(payload)}}
}

func (s *prodServer) payloads(t *testing.T, topic string) []string {
	var out []string
	for ev, err := range s.c.Consume(ctxT(t), topic, client.ConsumeOptions{}) {
		require.NoError(t, err)
		out = append(out, string(ev.Payload))
	}
	return out
}

// Send returns a Future whose Wait gives the events' ids and seqs; Done is
// closed once the outcome is known; Produce is Send and Wait.
func TestProducerSendWait(t *testing.T) {
	s := startProdServer(t, server.Options{})
	p := s.producer(t, client.ProducerOptions{})
	ctx := ctxT(t)

	events := []client.EventData{{Payload: []byte("a")}, {Payload: []byte("b"), Headers: map[string]string{"k": "v"}}}
	f, err := p.Send(ctx, "t", events)
	require.NoError(t, err)
	events[0].Payload[0] = 'x' // encoded already: the caller's to reuse
	waitClosed(t, f.Done(), "Done")
	res, err := f.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, res.Count)
	require.Equal(t, uint64(1), res.FirstSeq)
	require.Equal(t, uint64(2), res.LastSeq())

	res2, err := p.Produce(ctx, "t", one("c"))
	require.NoError(t, err)
	require.Equal(t, uint64(3), res2.FirstSeq)
	require.Greater(t, res2.FirstID, res.ID(1))
	require.Equal(t, []string{"a", "b", "c"}, s.payloads(t, "t"))

	info, err := s.c.Topic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, res.FirstID, info.FirstID)

	// Wait's own context ending leaves the Future valid.
	_, release := s.hold(t, p, "u")
	f, err = p.Send(ctx, "u", one("waited"))
	require.NoError(t, err)
	short, cancel := context.WithCancel(ctx)
	cancel()
	_, err = f.Wait(short)
	require.ErrorIs(t, err, context.Canceled)
	release()
	res, err = f.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), res.FirstSeq)
}

// While a request of a topic is in flight, the Sends of many goroutines to
// it are merged into one request, and each Future gets its own events' ids
// and seqs.
func TestProducerCoalesces(t *testing.T) {
	s := startProdServer(t, server.Options{})
	p := s.producer(t, client.ProducerOptions{})
	ctx := ctxT(t)
	before := s.st.Stats()
	first, release := s.hold(t, p, "t")

	const goroutines, sends = 16, 20
	type sent struct {
		f        *client.Future
		payloads []string
	}
	all := make([][]sent, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range sends {
				var sd sent
				events := make([]client.EventData, 1+i%3)
				for j := range events {
					sd.payloads = append(sd.payloads, fmt.Sprintf("g%02d-%02d-%d", g, i, j))
					events[j].Payload = []byte(sd.payloads[j])
				}
				f, err := p.Send(ctx, "t", events)
				if err != nil {
					t.Errorf("send: %v", err)
					return
				}
				sd.f = f
				all[g] = append(all[g], sd)
			}
		})
	}
	wg.Wait()
	require.False(t, t.Failed())
	st := p.Stats()
	require.Equal(t, uint64(1+goroutines*sends), st.Sends)
	require.Equal(t, uint64(1), st.Requests, "only the held request went out")

	release()
	_, err := first.Wait(ctx)
	require.NoError(t, err)
	bySeq := map[uint64]string{}
	for _, ss := range all {
		for _, sd := range ss {
			res, err := sd.f.Wait(ctx)
			require.NoError(t, err)
			require.Equal(t, len(sd.payloads), res.Count)
			for j, pl := range sd.payloads {
				bySeq[res.Seq(j)] = pl
			}
		}
	}
	st = p.Stats()
	require.Equal(t, uint64(2), st.Requests, "every Send made while the first was in flight went out in one request")
	require.Equal(t, uint64(2), s.st.Stats().Requests-before.Requests, "the server saw two appends")
	require.Equal(t, uint64(2), s.st.Stats().Commits-before.Commits)

	stored := s.payloads(t, "t")
	require.Len(t, stored, 1+len(bySeq))
	for seq, pl := range bySeq {
		require.Equal(t, pl, stored[seq-1], "seq %d", seq)
	}
}

// An event over the server's max event size fails its own Send alone: the
// Sends around it, merged into one request, are stored. The Producer takes
// the limits the server states, and never merges beyond them.
func TestProducerLimits(t *testing.T) {
	s := startProdServer(t, server.Options{MaxEventBytes: 1000, MaxBatchEvents: 5})
	p := s.producer(t, client.ProducerOptions{})
	ctx := ctxT(t)
	_, release := s.hold(t, p, "t")

	var wg sync.WaitGroup
	futures := make([]*client.Future, 8)
	var badErr error
	for g := range futures {
		wg.Go(func() {
			var err error
			futures[g], err = p.Send(ctx, "t", one(fmt.Sprint("ok ", g)))
			if err != nil {
				t.Errorf("send %d: %v", g, err)
			}
		})
	}
	wg.Go(func() {
		_, badErr = p.Send(ctx, "t", []client.EventData{{Payload: make([]byte, 990), Headers: map[string]string{"key": "1234567890"}}})
	})
	wg.Wait()
	require.ErrorIs(t, badErr, client.ErrInvalidArgument)
	require.True(t, client.IsReason(badErr, goethev1.ReasonLimitExceeded), "%v", badErr)
	require.Equal(t, codes.InvalidArgument, status.Code(badErr))
	require.Contains(t, badErr.Error(), "event 0 is 1003 bytes (payload and headers), the limit is 1000")

	_, err := p.Send(ctx, "t", make([]client.EventData, 6))
	require.ErrorIs(t, err, client.ErrInvalidArgument, "more events than the server takes in one Produce")
	require.True(t, client.IsReason(err, goethev1.ReasonLimitExceeded))
	_, err = p.Send(ctx, "t", nil)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	require.True(t, client.IsReason(err, goethev1.ReasonInvalidArgument))

	release()
	for g, f := range futures {
		_, err := f.Wait(ctx)
		require.NoError(t, err, "send %d", g)
	}
	require.Equal(t, uint64(1+2), p.Stats().Requests, "8 events in requests of at most 5, after the held one")
	require.Len(t, s.payloads(t, "t"), 9)

	// A request over the server's max request size fails alone too.
	big := make([]client.EventData, 5)
	for i := range big {
		big[i].Payload = make([]byte, 1000)
	}
	s2 := startProdServer(t, server.Options{MaxEventBytes: 1000, MaxRequestBytes: 1}) // raised to 68 KiB
	p2 := s2.producer(t, client.ProducerOptions{})
	for range 14 {
		_, err = p2.Send(ctx, "t", big)
		require.NoError(t, err)
	}
	require.NoError(t, p2.Flush(ctx))
	huge := make([]client.EventData, 100)
	for i := range huge {
		huge[i].Payload = make([]byte, 1000)
	}
	_, err = p2.Send(ctx, "t", huge)
	require.ErrorIs(t, err, client.ErrTooLarge)
	require.True(t, client.IsReason(err, goethev1.ReasonLimitExceeded))
	_, err = p2.Produce(ctx, "t", one("after"))
	require.NoError(t, err, "the stream goes on")
}

// One goroutine's Sends to a topic are stored in the order it made them,
// even when it does not wait between them and they go out in several
// requests; a conditional Send is its own request.
func TestProducerOrder(t *testing.T) {
	s := startProdServer(t, server.Options{MaxBatchEvents: 7})
	p := s.producer(t, client.ProducerOptions{MaxInFlightEvents: 50})
	ctx := ctxT(t)

	const goroutines, sends = 8, 200
	topics := []string{"a", "b"}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			var last *client.Future
			for i := range sends {
				f, err := p.Send(ctx, topics[g%2], []client.EventData{{Payload: fmt.Appendf(nil, "g%02d-%04d", g, i), Headers: map[string]string{"g": fmt.Sprint(g)}}})
				if err != nil {
					t.Errorf("send: %v", err)
					return
				}
				last = f
			}
			if _, err := last.Wait(ctx); err != nil {
				t.Errorf("wait: %v", err)
			}
		})
	}
	wg.Wait()
	require.False(t, t.Failed())
	require.NoError(t, p.Flush(ctx))
	for _, topic := range topics {
		stored := s.payloads(t, topic)
		require.Len(t, stored, goroutines/2*sends)
		last := map[string]string{}
		for _, pl := range stored {
			g := pl[:3]
			require.Less(t, last[g], pl, "goroutine %s's order is kept", g)
			last[g] = pl
		}
	}
	st := p.Stats()
	require.Less(t, st.Requests, st.Sends)

	// A conditional Send is never merged: plain, conditional, plain while
	// one is in flight go out as three requests, in order.
	_, release := s.hold(t, p, "c")
	before := p.Stats().Requests
	f1, err := p.Send(ctx, "c", one("1"))
	require.NoError(t, err)
	f2, err := p.Send(ctx, "c", one("2"), client.ExpectLastSeq(2))
	require.NoError(t, err)
	f3, err := p.Send(ctx, "c", one("3"))
	require.NoError(t, err)
	f4, err := p.Send(ctx, "c", one("4"))
	require.NoError(t, err)
	release()
	for i, f := range []*client.Future{f1, f2, f3, f4} {
		res, err := f.Wait(ctx)
		require.NoError(t, err)
		require.Equal(t, uint64(i+2), res.FirstSeq)
	}
	require.Equal(t, before+3, p.Stats().Requests)
	require.Equal(t, []string{"held", "1", "2", "3", "4"}, s.payloads(t, "c"))
}

// A conditional Send whose expectation fails gets a *ConflictError with
// the reason and the actual last seq; the next Sends go on.
func TestProducerConflict(t *testing.T) {
	s := startProdServer(t, server.Options{})
	p := s.producer(t, client.ProducerOptions{})
	ctx := ctxT(t)
	_, err := p.Produce(ctx, "t", one("a"), client.ExpectLastSeq(0))
	require.NoError(t, err)
	_, err = p.Produce(ctx, "t", one("b"), client.ExpectLastSeq(0))
	require.ErrorIs(t, err, client.ErrConflict)
	var ce *client.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, uint64(1), ce.ActualLastSeq)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, goethev1.ReasonExpectedLastSeqMismatch, e.Reason())
	require.Equal(t, "1", e.Metadata()["actual_last_seq"])
	require.Equal(t, "0", e.Metadata()["expected_last_seq"])
	require.True(t, client.IsReason(err, goethev1.ReasonExpectedLastSeqMismatch))
	require.False(t, client.IsReason(err, goethev1.ReasonTopicNotFound))
	res, err := p.Produce(ctx, "t", one("c"), client.ExpectLastSeq(1))
	require.NoError(t, err)
	require.Equal(t, uint64(2), res.FirstSeq)
}

// A Send that finds the in-flight bounds full waits, and its context ends
// the wait; a Send with a done context fails at once.
func TestProducerSendBlocks(t *testing.T) {
	s := startProdServer(t, server.Options{})
	p := s.producer(t, client.ProducerOptions{MaxInFlightEvents: 2})
	ctx := ctxT(t)
	held, release := s.hold(t, p, "t")
	f2, err := p.Send(ctx, "t", one("fits"))
	require.NoError(t, err)

	blocked, cancel := context.WithCancel(ctx)
	sent := make(chan error, 1)
	go func() {
		_, err := p.Send(blocked, "t", one("waits"))
		sent <- err
	}()
	cancel()
	select {
	case err := <-sent:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not end the blocked Send")
	}
	short, cancel2 := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel2()
	_, err = p.Send(short, "t", one("times out"))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// Released, the Send that waits goes in.
	go func() {
		_, err := p.Send(ctx, "t", one("admitted"))
		sent <- err
	}()
	release()
	require.NoError(t, <-sent)
	_, err = held.Wait(ctx)
	require.NoError(t, err)
	_, err = f2.Wait(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Flush(ctx))
	require.Equal(t, []string{"held", "fits", "admitted"}, s.payloads(t, "t"))

	// Bytes bound alike; a Send larger than the bound alone goes in when
	// nothing else is in flight.
	p2 := s.producer(t, client.ProducerOptions{MaxInFlightBytes: 100})
	_, err = p2.Produce(ctx, "t", []client.EventData{{Payload: make([]byte, 500)}})
	require.NoError(t, err)

	done, cancel3 := context.WithCancel(ctx)
	cancel3()
	_, err = p2.Send(done, "t", one("x"))
	require.ErrorIs(t, err, context.Canceled)
}

// Flush waits for every Send made before it; Close flushes what is queued,
// then refuses Sends.
func TestProducerFlushClose(t *testing.T) {
	s := startProdServer(t, server.Options{})
	p := s.producer(t, client.ProducerOptions{})
	ctx := ctxT(t)
	require.NoError(t, p.Flush(ctx), "nothing to flush")

	_, release := s.hold(t, p, "a")
	var futures []*client.Future
	for i := range 10 {
		f, err := p.Send(ctx, []string{"a", "b"}[i%2], one(fmt.Sprint(i)))
		require.NoError(t, err)
		futures = append(futures, f)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Flush(short), context.DeadlineExceeded, "a held request is not flushed")
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx) }()
	release()
	require.NoError(t, <-flushed)
	for _, f := range futures {
		select {
		case <-f.Done():
		default:
			t.Fatal("Flush returned before a Future's outcome was known")
		}
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}

	// Close with Sends queued behind a held request: they are all sent and
	// answered before the stream ends.
	_, release = s.hold(t, p, "c")
	futures = futures[:0]
	for i := range 5 {
		f, err := p.Send(ctx, "c", one(fmt.Sprint(i)))
		require.NoError(t, err)
		futures = append(futures, f)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	want := []string{"held", "0", "1", "2", "3", "4"}
	require.Eventually(t, func() bool {
		f, err := p.Send(ctx, "c", one("late"))
		if err == nil {
			// Accepted before Close began: it is flushed too.
			futures = append(futures, f)
			want = append(want, "late")
		}
		return err == client.ErrProducerClosed
	}, 10*time.Second, time.Millisecond, "Sends fail once Close has begun")
	release()
	require.NoError(t, <-closed)
	for _, f := range futures {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, want, s.payloads(t, "c"))
	require.NoError(t, p.Close(), "Close is idempotent")
	_, err := p.Produce(ctx, "c", one("x"))
	require.ErrorIs(t, err, client.ErrProducerClosed)
	require.NoError(t, p.Flush(ctx))
}

// When the server stops, the Futures in flight and every later Send fail
// as unavailable, and Close reports it.
func TestProducerServerStops(t *testing.T) {
	addr, stopServer := startServer()
	stop := sync.OnceFunc(stopServer)
	defer stop()
	c, err := client.Dial(addr)
	require.NoError(t, err)
	defer c.Close()
	ctx := ctxT(t)
	p, err := c.NewProducer(ctx)
	require.NoError(t, err)
	_, err = p.Produce(ctx, "t", one("a"))
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				if _, err := p.Produce(ctx, "t", one(fmt.Sprint(g, i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.ErrorIs(t, err, client.ErrUnavailable)
		require.Contains(t, err.Error(), "produce stream ended")
	}
	_, err = p.Send(ctx, "t", one("late"))
	require.ErrorIs(t, err, client.ErrUnavailable, "a broken Producer refuses Sends")
	require.ErrorIs(t, p.Flush(ctx), client.ErrUnavailable)
	require.ErrorIs(t, p.Close(), client.ErrUnavailable)

	// A Producer cannot open without a server.
	_, err = c.NewProducer(ctx)
	require.ErrorIs(t, err, client.ErrUnavailable)
}

// Ending the context given to NewProducer breaks the stream: the Futures
// waiting fail, and so does every later Send.
func TestProducerContextEnds(t *testing.T) {
	s := startProdServer(t, server.Options{})
	pctx, cancel := context.WithCancel(ctxT(t))
	p, err := s.c.NewProducer(pctx)
	require.NoError(t, err)
	ctx := ctxT(t)
	f, release := s.hold(t, p, "t")
	cancel()
	_, err = f.Wait(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "produce stream ended")
	release()
	_, err = p.Send(ctx, "t", one("x"))
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, p.Close(), context.Canceled)
}

// With several topics, requests are in flight together up to the bound,
// and the server answers the requests of one commit in one message.
func TestProducerTopicsInFlight(t *testing.T) {
	s := startProdServer(t, server.Options{})
	p := s.producer(t, client.ProducerOptions{MaxInFlightRequests: 3})
	ctx := ctxT(t)
	_, release := s.hold(t, p, "t0")
	var futures []*client.Future
	for i := 1; i < 6; i++ {
		f, err := p.Send(ctx, fmt.Sprint("t", i), one("x"))
		require.NoError(t, err)
		futures = append(futures, f)
	}
	require.Equal(t, uint64(3), p.Stats().Requests, "three in flight at most")
	release()
	for _, f := range futures {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, uint64(6), p.Stats().Requests)

	// Bursts over many topics commit together; their answers share
	// response messages.
	p2 := s.producer(t, client.ProducerOptions{MaxInFlightRequests: 64})
	require.Eventually(t, func() bool {
		before := p2.Stats()
		for i := range 64 {
			if _, err := p2.Send(ctx, fmt.Sprint("burst-", i), one("x")); err != nil {
				t.Fatal(err)
			}
		}
		require.NoError(t, p2.Flush(ctx))
		after := p2.Stats()
		return after.Responses-before.Responses < after.Requests-before.Requests
	}, 10*time.Second, time.Millisecond)
}

// Concurrent Sends, Waits, Flushes and a Close race cleanly (run with
// -race): every accepted Future gets its outcome.
func TestProducerConcurrentClose(t *testing.T) {
	s := startProdServer(t, server.Options{})
	p, err := s.c.NewProducerWith(ctxT(t), client.ProducerOptions{MaxInFlightEvents: 64})
	require.NoError(t, err)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				f, err := p.Send(ctx, fmt.Sprint("t", g%3), one(strings.Repeat("x", i%50)))
				if err != nil {
					require.ErrorIs(t, err, client.ErrProducerClosed)
					return
				}
				if i%10 == 0 {
					_ = p.Flush(ctx)
				}
				if _, err := f.Wait(ctx); err != nil {
					t.Errorf("wait: %v", err)
					return
				}
				mu.Lock()
				stored++
				mu.Unlock()
			}
		})
	}
	require.Eventually(t, func() bool { return p.Stats().Sends > 500 }, 10*time.Second, time.Millisecond)
	require.NoError(t, p.Close())
	wg.Wait()
	var count uint64
	for i := range 3 {
		info, err := s.c.Topic(ctx, fmt.Sprint("t", i))
		require.NoError(t, err)
		count += info.Count
	}
	require.Equal(t, uint64(stored), count, "every acknowledged Send is stored, and no other")
}
