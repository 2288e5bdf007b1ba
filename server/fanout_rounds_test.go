package server_test

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
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// checkRun reads events from sub until it has the event of seq last and
// checks that they are a dense run of seqs whose payloads name their seq
// (payload "seq N"); it returns how many it read.
func checkRun(sub *client.Subscription, last uint64) (int, error) {
	var prev uint64
	n := 0
	for {
		ev, err := sub.Next()
		if err != nil {
			return n, err
		}
		if prev != 0 && ev.Seq != prev+1 {
			return n, fmt.Errorf("seq %d after %d", ev.Seq, prev)
		}
		if want := fmt.Sprintf("seq %d", ev.Seq); string(ev.Payload) != want {
			return n, fmt.Errorf("seq %d has payload %q, want %q", ev.Seq, ev.Payload, want)
		}
		prev = ev.Seq
		n++
		if ev.Seq == last {
			return n, nil
		}
	}
}

// With fan-out rounds (the default), followers that join at the end of a
// topic while it is written, at different moments, each receive every
// event from where they joined, in order with dense seqs, up to the last;
// followers that leave meanwhile do not hold the others up; and once all
// have left, the server holds no group.
func TestFanoutRoundsChurn(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		metrics := server.NewMetrics(server.MetricsOptions{Engine: engine})
		ts := startServer(t, engine, server.Options{FanoutLinger: 200 * time.Microsecond, Metrics: metrics})
		const topic, events = "fan", 120
		ts.produce(topic, "seq 1")
		conns := make([]*client.Client, 3)
		for i := range conns {
			c, err := client.Dial(ts.addr)
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			conns[i] = c
		}
		subscribe := func(i int) (*client.Subscription, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctxT(t))
			sub, err := conns[i%len(conns)].Subscribe(ctx, topic, client.ConsumeOptions{From: client.End(), Follow: true})
			require.NoError(t, err)
			t.Cleanup(func() { cancel(); sub.Close() })
			return sub, cancel
		}
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		follow := func(sub *client.Subscription) {
			wg.Go(func() {
				if _, err := checkRun(sub, events+1); err != nil {
					errs <- err
				}
			})
		}
		for i := range 20 {
			sub, _ := subscribe(i)
			follow(sub)
		}
		require.Eventually(t, func() bool { return server.FanoutMembers(ts.srv, topic) == 20 }, 20*time.Second, time.Millisecond)
		var leavers []context.CancelFunc
		var leaving sync.WaitGroup
		for k := 2; k <= events+1; k++ {
			ts.produce(topic, fmt.Sprintf("seq %d", k))
			switch {
			case k%10 == 0: // a follower joins
				sub, _ := subscribe(k)
				follow(sub)
			case k%15 == 0: // a follower that leaves before the end joins
				sub, cancel := subscribe(k)
				leavers = append(leavers, cancel)
				leaving.Go(func() {
					_, err := checkRun(sub, events+1)
					if status.Code(err) != codes.Canceled {
						errs <- fmt.Errorf("a leaving follower ended with %v", err)
					}
				})
			case k%15 == 7 && len(leavers) > 0:
				leavers[0]()
				leavers = leavers[1:]
			}
		}
		wg.Wait()
		for _, cancel := range leavers {
			cancel()
		}
		leaving.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		// Every follower gone, so is the group.
		for _, c := range conns {
			require.NoError(t, c.Close())
		}
		require.Eventually(t, func() bool { return server.FanoutGroups(ts.srv) == 0 }, 20*time.Second, time.Millisecond)
		require.Zero(t, gauge(t, metrics, "goethe_fanout_round_followers"))
		require.Zero(t, gauge(t, metrics, "goethe_fanout_stalled_total"))
	})
}

// stalledTail opens a follower of topic at its end that never reads, on a
// connection of its own with small windows (stalledConsume): the server's
// Sends to it block once 64 KiB are queued.
func stalledTail(t *testing.T, ts *testServer, topic string) goethev1.Goethe_ConsumeClient {
	t.Helper()
	return stalledConsume(t, ts, &goethev1.ConsumeRequest{Topic: topic, Follow: true,
		Start: &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_END}})
}

// A follower whose client does not read does not hold up its topic's
// round: its Send is found stalled after FanoutSendLease and it is taken
// out of the group (it leads it or not), the other followers receive every
// event meanwhile, and the stalled one ends, as any follower stuck in a
// Send, by the slow-consumer timeout, after the events that were sent to
// it, in order.
func TestFanoutRoundsStalledFollower(t *testing.T) {
	for _, leads := range []bool{true, false} {
		t.Run(fmt.Sprintf("leads=%v", leads), func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, engine string) {
				const timeout = 3 * time.Second
				metrics := server.NewMetrics(server.MetricsOptions{Engine: engine})
				ts := startServer(t, engine, server.Options{FanoutSendLease: 20 * time.Millisecond, SlowConsumerTimeout: timeout, Metrics: metrics})
				const topic, events, followers = "fan", 40, 10
				big := strings.Repeat("x", 32<<10)
				ts.produce(topic, "seq 1 "+big)
				var stalled goethev1.Goethe_ConsumeClient
				if leads {
					stalled = stalledTail(t, ts, topic)
					require.Eventually(t, func() bool { return server.FanoutMembers(ts.srv, topic) == 1 }, 20*time.Second, time.Millisecond)
				}
				subs := make([]*client.Subscription, followers)
				for i := range subs {
					sub, err := ts.c.Subscribe(ctxT(t), topic, client.ConsumeOptions{From: client.End(), Follow: true})
					require.NoError(t, err)
					t.Cleanup(func() { sub.Close() })
					subs[i] = sub
				}
				if !leads {
					stalled = stalledTail(t, ts, topic)
				}
				require.Eventually(t, func() bool { return server.FanoutMembers(ts.srv, topic) == followers+1 }, 20*time.Second, time.Millisecond)

				var wg sync.WaitGroup
				errs := make(chan error, followers)
				for _, sub := range subs {
					wg.Go(func() {
						for k := 2; k <= events+1; k++ {
							ev, err := sub.Next()
							if err == nil && (ev.Seq != uint64(k) || !strings.HasPrefix(string(ev.Payload), fmt.Sprintf("seq %d ", k))) {
								err = fmt.Errorf("got seq %d, want %d", ev.Seq, k)
							}
							if err != nil {
								errs <- err
								return
							}
						}
					})
				}
				start := time.Now()
				for k := 2; k <= events+1; k++ {
					ts.produce(topic, fmt.Sprintf("seq %d %s", k, big))
				}
				wg.Wait()
				// The others got every event (1.3 MiB, 20 times the
				// stalled stream's window) well before the stalled one's
				// timeout, which would otherwise have held them.
				require.Less(t, time.Since(start), timeout, "the others waited for the stalled follower")
				close(errs)
				for err := range errs {
					require.NoError(t, err)
				}
				require.Equal(t, followers, server.FanoutMembers(ts.srv, topic), "the stalled follower is out of the group")
				require.Equal(t, float64(followers), gauge(t, metrics, "goethe_fanout_round_followers"))
				require.GreaterOrEqual(t, gauge(t, metrics, "goethe_fanout_stalled_total"), 1.0)

				// The stalled follower: ended by the timeout; then, read,
				// what was sent, in order, then SLOW_CONSUMER.
				require.Eventually(t, func() bool { return gauge(t, metrics, "goethe_consume_open_streams") == followers }, 20*time.Second, time.Millisecond)
				next := uint64(2)
				for {
					resp, err := stalled.Recv()
					if err != nil {
						requireReason(t, err, codes.ResourceExhausted, goethev1.ReasonSlowConsumer)
						break
					}
					for _, ev := range resp.Events {
						require.Equal(t, next, ev.Seq)
						next++
					}
				}
				require.Less(t, next, uint64(events+2), "the stalled follower cannot have received every event")
			})
		})
	}
}

// Stop is not held up by a round whose Send is stalled (the leader's own
// or another member's): it returns within the stop grace, and the
// followers that read end with SERVER_STOPPING.
func TestFanoutRoundsStop(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{FanoutSendLease: time.Hour, StopGrace: 200 * time.Millisecond})
		const topic = "fan"
		big := strings.Repeat("x", 32<<10)
		ts.produce(topic, big)
		stalled := stalledTail(t, ts, topic) // leads; its Send stalls, never deposed
		sub, err := ts.c.Subscribe(ctxT(t), topic, client.ConsumeOptions{From: client.End(), Follow: true})
		require.NoError(t, err)
		t.Cleanup(func() { sub.Close() })
		require.Eventually(t, func() bool { return server.FanoutMembers(ts.srv, topic) == 2 }, 20*time.Second, time.Millisecond)
		for range 8 {
			ts.produce(topic, big)
		}
		ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
		defer cancel()
		start := time.Now()
		require.NoError(t, ts.srv.Stop(ctx))
		require.Less(t, time.Since(start), 10*time.Second)
		for {
			if _, err := sub.Next(); err != nil {
				requireReason(t, err, codes.Unavailable, goethev1.ReasonServerStopping)
				break
			}
		}
		_ = stalled
	})
}

// Deleting a topic ends every follower in its round group, the leader and
// the others, with NOT_FOUND (TOPIC_DELETED), and leaves no group behind;
// a topic made again under the name gets a group of its own.
func TestFanoutRoundsTopicDeleted(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		const topic = "fan"
		ts.produce(topic, "seq 1")
		subs := make([]*client.Subscription, 3)
		for i := range subs {
			sub, err := ts.c.Subscribe(ctxT(t), topic, client.ConsumeOptions{From: client.End(), Follow: true})
			require.NoError(t, err)
			t.Cleanup(func() { sub.Close() })
			subs[i] = sub
		}
		require.Eventually(t, func() bool { return server.FanoutMembers(ts.srv, topic) == len(subs) }, 20*time.Second, time.Millisecond)
		ts.produce(topic, "seq 2")
		for _, sub := range subs {
			ev, err := sub.Next()
			require.NoError(t, err)
			require.Equal(t, uint64(2), ev.Seq)
		}
		require.NoError(t, ts.c.DeleteTopic(ctxT(t), topic))
		for _, sub := range subs {
			_, err := sub.Next()
			require.ErrorIs(t, err, client.ErrNotFound)
			require.True(t, client.IsReason(err, goethev1.ReasonTopicDeleted), "%v", err)
		}
		require.Eventually(t, func() bool { return server.FanoutGroups(ts.srv) == 0 }, 20*time.Second, time.Millisecond)

		ts.produce(topic, "seq 1")
		sub, err := ts.c.Subscribe(ctxT(t), topic, client.ConsumeOptions{From: client.End(), Follow: true})
		require.NoError(t, err)
		t.Cleanup(func() { sub.Close() })
		require.Eventually(t, func() bool { return server.FanoutMembers(ts.srv, topic) == 1 }, 20*time.Second, time.Millisecond)
		ts.produce(topic, "seq 2")
		_, err = checkRun(sub, 2)
		require.NoError(t, err)
	})
}
