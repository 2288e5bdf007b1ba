package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// With one sender at a time (FanoutSenders = 1, the smallest gate), every
// follower of a topic still receives every event, in order with dense
// seqs, while events are produced as fast as the producer can.
func TestFanoutOneSender(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{FanoutSolo: true, FanoutSenders: 1})
		ts.produce("fan", "0")
		const followers, events = 30, 60
		subs := make([]*client.Subscription, followers)
		for i := range subs {
			c := ts.c
			if i%10 == 0 { // three connections
				var err error
				c, err = client.Dial(ts.addr)
				require.NoError(t, err)
				t.Cleanup(func() { c.Close() })
			}
			sub, err := c.Subscribe(ctxT(t), "fan", client.ConsumeOptions{From: client.End(), Follow: true})
			require.NoError(t, err)
			t.Cleanup(func() { sub.Close() })
			subs[i] = sub
		}
		errs := make(chan error, followers)
		var wg sync.WaitGroup
		for _, sub := range subs {
			wg.Go(func() {
				for k := range events {
					ev, err := sub.Next()
					if err == nil && (ev.Seq != uint64(k+2) || string(ev.Payload) != fmt.Sprint(k+1)) {
						err = fmt.Errorf("got seq %d %q, want seq %d", ev.Seq, ev.Payload, k+2)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		for k := range events {
			ts.produce("fan", fmt.Sprint(k+1))
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	})
}

// waitingFollowers opens n followers of topic at its end, holds every
// turn of the server's fan-out gate, and produces one event: the
// followers read it and wait for a turn. It returns the followers (their
// contexts' cancel functions beside them) and the gate's release.
func waitingFollowers(t *testing.T, ts *testServer, topic string, n int) ([]goethev1.Goethe_ConsumeClient, []context.CancelFunc, func()) {
	t.Helper()
	ts.produce(topic, "before")
	streams := make([]goethev1.Goethe_ConsumeClient, n)
	cancels := make([]context.CancelFunc, n)
	for i := range streams {
		ctx, cancel := context.WithCancel(ctxT(t))
		t.Cleanup(cancel)
		st, err := ts.raw.Consume(ctx, &goethev1.ConsumeRequest{Topic: topic, Follow: true,
			Start: &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_END}})
		require.NoError(t, err)
		_, err = st.Header() // the start is fixed
		require.NoError(t, err)
		streams[i], cancels[i] = st, cancel
	}
	release := server.HoldFanout(t, ts.srv)
	var once sync.Once
	t.Cleanup(func() { once.Do(release) })
	ts.produce(topic, "held")
	require.Eventually(t, func() bool { return server.FanoutWaiting(ts.srv) == n }, 20*time.Second, time.Millisecond)
	return streams, cancels, func() { once.Do(release) }
}

// recvAsync receives one message of st on a goroutine of its own.
func recvAsync(st goethev1.Goethe_ConsumeClient) <-chan error {
	ch := make(chan error, 1)
	go func() {
		resp, err := st.Recv()
		if err == nil && (len(resp.Events) != 1 || string(resp.Events[0].Payload) != "held") {
			err = fmt.Errorf("got %v", resp.Events)
		}
		ch <- err
	}()
	return ch
}

func recvd(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("no message and no end within 20s")
	}
	return nil
}

// A follower waiting for a turn to send is ended as one waiting in a
// Send is: by its context (the others still get the event once a turn is
// free), by Stop (UNAVAILABLE, SERVER_STOPPING; Stop is not held up), and
// by the slow-consumer timeout (RESOURCE_EXHAUSTED, SLOW_CONSUMER).
func TestFanoutWaitEnds(t *testing.T) {
	t.Run("context", func(t *testing.T) {
		forEachEngine(t, func(t *testing.T, engine string) {
			ts := startServer(t, engine, server.Options{FanoutSolo: true, FanoutSenders: 1, FanoutSendLease: time.Hour})
			streams, cancels, release := waitingFollowers(t, ts, "fan", 3)
			first := recvAsync(streams[0])
			cancels[0]()
			requireCode(t, recvd(t, first), codes.Canceled)
			require.Eventually(t, func() bool { return server.FanoutWaiting(ts.srv) == 2 }, 20*time.Second, time.Millisecond)
			release()
			for _, st := range streams[1:] {
				require.NoError(t, recvd(t, recvAsync(st)))
			}
		})
	})
	t.Run("stop", func(t *testing.T) {
		forEachEngine(t, func(t *testing.T, engine string) {
			ts := startServer(t, engine, server.Options{FanoutSolo: true, FanoutSenders: 1, FanoutSendLease: time.Hour, StopGrace: 200 * time.Millisecond})
			streams, _, _ := waitingFollowers(t, ts, "fan", 2)
			ends := []<-chan error{recvAsync(streams[0]), recvAsync(streams[1])}
			// The turns are still held: Stop does not wait for them. (The
			// test's cleanup stops it again, which returns the same.)
			ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
			defer cancel()
			require.NoError(t, ts.srv.Stop(ctx))
			for _, end := range ends {
				requireReason(t, recvd(t, end), codes.Unavailable, goethev1.ReasonServerStopping)
			}
		})
	})
	t.Run("slow-consumer-timeout", func(t *testing.T) {
		forEachEngine(t, func(t *testing.T, engine string) {
			const timeout = 300 * time.Millisecond
			ts := startServer(t, engine, server.Options{FanoutSolo: true, FanoutSenders: 1, FanoutSendLease: time.Hour, SlowConsumerTimeout: timeout})
			start := time.Now()
			streams, _, _ := waitingFollowers(t, ts, "fan", 2)
			for _, st := range streams {
				err := recvd(t, recvAsync(st))
				requireReason(t, err, codes.ResourceExhausted, goethev1.ReasonSlowConsumer)
				require.Contains(t, err.Error(), "--slow-consumer-timeout")
			}
			require.GreaterOrEqual(t, time.Since(start), timeout)
		})
	})
}

// FanoutSenders, FanoutSendLease and FanoutLinger: zero takes the
// default, 1 is the smallest gate, a negative sender count or lease is
// refused by New, naming the option, and so is a linger past
// MaxFanoutLinger (MaxFanoutLinger itself is taken).
func TestFanoutOptions(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{})
	require.Equal(t, server.DefaultFanoutSenders(), ts.srv.Options().FanoutSenders)
	require.Equal(t, server.DefaultFanoutSendLease, ts.srv.Options().FanoutSendLease)
	require.GreaterOrEqual(t, server.DefaultFanoutSenders(), 1)

	one := startServer(t, "leveldb", server.Options{FanoutSenders: 1, FanoutSendLease: time.Nanosecond})
	require.Equal(t, 1, one.srv.Options().FanoutSenders)

	at := startServer(t, "leveldb", server.Options{FanoutLinger: server.MaxFanoutLinger})
	require.Equal(t, server.MaxFanoutLinger, at.srv.Options().FanoutLinger)
	require.Equal(t, server.DefaultFanoutLinger, ts.srv.Options().FanoutLinger)

	for _, o := range []server.Options{{FanoutSenders: -1}, {FanoutSendLease: -time.Nanosecond}, {FanoutLinger: server.MaxFanoutLinger + 1}} {
		_, err := server.New(ts.st, o)
		require.Error(t, err)
		require.Contains(t, err.Error(), "Fanout")
	}
}
