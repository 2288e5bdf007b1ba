package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/server"
	"github.com/goethe-log/goethe/store"
)

// restartable is a real server on a fixed loopback port over one data
// folder, which a test stops (abruptly: calls in flight are cut) and starts
// again on the same folder and port.
type restartable struct {
	t      *testing.T
	engine string
	dir    string
	addr   string

	srv    *server.Server
	st     *store.Store
	served chan error
}

func startRestartable(t *testing.T, engine string) *restartable {
	r := &restartable{t: t, engine: engine, dir: t.TempDir(), addr: "127.0.0.1:0"}
	r.start()
	t.Cleanup(func() {
		if r.srv != nil {
			r.stop()
		}
	})
	return r
}

func (r *restartable) start() {
	t := r.t
	e, err := engines.Open(r.engine, r.dir)
	require.NoError(t, err)
	r.st, err = store.Open(e, store.DefaultOptions())
	require.NoError(t, err)
	r.srv, err = server.New(r.st, server.Options{})
	require.NoError(t, err)
	var lis net.Listener
	require.Eventually(t, func() bool { // the old listener's port may take a moment
		lis, err = net.Listen("tcp", r.addr)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	r.addr = lis.Addr().String()
	r.served = make(chan error, 1)
	go func(srv *server.Server) { r.served <- srv.Serve(lis) }(r.srv)
}

// stop stops the server at once: a context already ended cuts every call.
func (r *restartable) stop() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = r.srv.Stop(ctx)
	<-r.served
	require.NoError(r.t, r.st.Close())
	r.srv = nil
}

// TestReliableProducerAndFollowerSurviveRestarts: a reliable Producer and
// a reconnecting follower go on through two server restarts under load;
// every event is stored exactly once, in the order it was sent, and the
// follower delivers every one once, in order.
func TestReliableProducerAndFollowerSurviveRestarts(t *testing.T) {
	for _, engine := range engines.Names {
		t.Run(engine, func(t *testing.T) {
			srv := startRestartable(t, engine)
			c, err := client.Dial(srv.addr)
			require.NoError(t, err)
			defer c.Close()
			ctx := ctxT(t)
			fast := client.Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}
			p, err := c.NewProducerWith(ctx, client.ProducerOptions{Reliable: true, Backoff: fast})
			require.NoError(t, err)
			defer p.Close()
			sub, err := c.Subscribe(ctx, "r", client.ConsumeOptions{Follow: true, Reconnect: true, Backoff: fast})
			require.NoError(t, err)
			defer sub.Close()

			const n = 3000
			got := make(chan []client.Event, 1)
			go func() {
				var evs []client.Event
				for len(evs) < n {
					ev, err := sub.Next()
					if err != nil {
						break
					}
					evs = append(evs, ev)
				}
				got <- evs
			}()

			// The producer keeps a window of Sends unanswered, so that it
			// sends many requests and has some in flight at each restart.
			const window = 64
			futures := make([]*client.Future, n)
			var restarts sync.WaitGroup
			var lastSeq uint64
			wait := func(i int) {
				res, err := futures[i].Wait(ctx)
				require.NoError(t, err, "event %d", i)
				_, seq := res.Position(0)
				require.Greater(t, seq, lastSeq, "event %d: sent in order, stored in order", i)
				lastSeq = seq
			}
			for i := range n {
				if i == n/3 || i == 2*n/3 {
					restarts.Wait()
					restarts.Go(func() {
						srv.stop()
						srv.start()
					})
				}
				futures[i], err = p.Send(ctx, "r", []client.EventData{{Payload: fmt.Appendf(nil, "e%d", i)}})
				require.NoError(t, err)
				if i >= window {
					wait(i - window)
				}
			}
			restarts.Wait()
			for i := n - window; i < n; i++ {
				wait(i)
			}
			require.Equal(t, uint64(n), lastSeq, "stored once each: seqs are dense")
			require.GreaterOrEqual(t, p.Stats().Reconnects, uint64(1))
			t.Logf("producer: %+v", p.Stats())

			evs := <-got
			require.Len(t, evs, n)
			keys := map[string]bool{}
			for i, ev := range evs {
				require.Equal(t, uint64(i+1), ev.Seq)
				require.Equal(t, fmt.Sprintf("e%d", i), string(ev.Payload))
				require.NotEmpty(t, ev.DedupeKey)
				require.False(t, keys[ev.DedupeKey], "keys are unique")
				keys[ev.DedupeKey] = true
			}
			require.GreaterOrEqual(t, sub.Reconnects(), uint64(1))
		})
	}
}

// TestSubscriptionReconnectResumes: a follower that reconnects resumes
// after its last event, counts Limit over its streams, and ends at Until;
// without Reconnect a restart ends it with ErrUnavailable.
func TestSubscriptionReconnectResumes(t *testing.T) {
	srv := startRestartable(t, "leveldb")
	c, err := client.Dial(srv.addr)
	require.NoError(t, err)
	defer c.Close()
	ctx := ctxT(t)
	for i := range 5 {
		_, err := c.Produce(ctx, "s", []client.EventData{{Payload: fmt.Appendf(nil, "%d", i+1)}})
		require.NoError(t, err)
	}
	fast := client.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	limited, err := c.Subscribe(ctx, "s", client.ConsumeOptions{Follow: true, Reconnect: true, Backoff: fast, Limit: 7})
	require.NoError(t, err)
	defer limited.Close()
	bounded, err := c.Subscribe(ctx, "s", client.ConsumeOptions{Follow: true, Reconnect: true, Backoff: fast, Until: client.UntilSeq(6)})
	require.NoError(t, err)
	defer bounded.Close()
	plain, err := c.Subscribe(ctx, "s", client.ConsumeOptions{Follow: true})
	require.NoError(t, err)
	defer plain.Close()
	for _, sub := range []*client.Subscription{limited, bounded, plain} {
		for i := range 5 {
			ev, err := sub.Next()
			require.NoError(t, err)
			require.Equal(t, uint64(i+1), ev.Seq)
		}
	}

	srv.stop()
	_, err = plain.Next()
	require.ErrorIs(t, err, client.ErrUnavailable)
	srv.start()
	for i := range 5 {
		_, err := c.Produce(ctx, "s", []client.EventData{{Payload: fmt.Appendf(nil, "%d", i+6)}})
		if errors.Is(err, client.ErrUnavailable) { // the connection is coming back
			require.Eventually(t, func() bool { return c.Ping(ctx) == nil }, 10*time.Second, 10*time.Millisecond)
			_, err = c.Produce(ctx, "s", []client.EventData{{Payload: fmt.Appendf(nil, "%d", i+6)}})
		}
		require.NoError(t, err)
	}
	for _, tc := range []struct {
		sub  *client.Subscription
		last uint64
	}{{limited, 7}, {bounded, 6}} {
		for seq := uint64(6); seq <= tc.last; seq++ {
			ev, err := tc.sub.Next()
			require.NoError(t, err)
			require.Equal(t, seq, ev.Seq)
		}
		_, err := tc.sub.Next()
		require.ErrorIs(t, err, io.EOF)
		require.GreaterOrEqual(t, tc.sub.Reconnects(), uint64(1))
	}
}

// TestDedupeKeys: Produce and a Producer's Futures report the duplicates of
// keys stored before with the originals' ids and seqs; merged Sends get
// their own share; consumers see the keys; Until ends a Consume.
func TestDedupeKeys(t *testing.T) {
	s := startProdServer(t, server.Options{})
	ctx := ctxT(t)
	first, err := s.c.Produce(ctx, "k", []client.EventData{{Payload: []byte("a"), DedupeKey: "a"}, {Payload: []byte("b"), DedupeKey: "b"}})
	require.NoError(t, err)
	again, err := s.c.Produce(ctx, "k", []client.EventData{{Payload: []byte("c"), DedupeKey: "c"}, {Payload: []byte("b"), DedupeKey: "b"}})
	require.NoError(t, err)
	require.Equal(t, 1, again.Count)
	require.Equal(t, []client.Duplicate{{Index: 1, ID: first.ID(1), Seq: 2}}, again.Duplicates)
	id, seq := again.Position(0)
	require.Equal(t, again.FirstID, id)
	require.Equal(t, uint64(3), seq)

	p := s.producer(t, client.ProducerOptions{Reliable: true})
	_, release := s.hold(t, p, "k") // the next Sends merge into one request
	f1, err := p.Send(ctx, "k", []client.EventData{{Payload: []byte("d")}, {Payload: []byte("a again"), DedupeKey: "a"}})
	require.NoError(t, err)
	f2, err := p.Send(ctx, "k", []client.EventData{{Payload: []byte("e"), DedupeKey: "e"}})
	require.NoError(t, err)
	release()
	r1, err := f1.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, r1.Count)
	require.Equal(t, []client.Duplicate{{Index: 1, ID: first.FirstID, Seq: 1}}, r1.Duplicates)
	r2, err := f2.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, client.ProduceResult{FirstID: r1.FirstID + 1, FirstSeq: r1.FirstSeq + 1, Count: 1}, r2)

	var keys []string
	for ev, err := range s.c.Consume(ctx, "k", client.ConsumeOptions{Until: client.UntilSeq(5)}) {
		require.NoError(t, err)
		keys = append(keys, ev.DedupeKey)
	}
	require.Len(t, keys, 5)
	require.Equal(t, []string{"a", "b", "c"}, keys[:3])
	require.NotEmpty(t, keys[4], "the reliable Producer made a key")
}
