package server

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sendWatch: a loop whose Sends return in time ends with its own result;
// a Send that blocks past the timeout makes run return errSlowConsumer at
// once, and the loop learns errAbandoned when the Send returns; abort
// during a Send makes run return abortErr at once; abort between Sends
// makes run wait for the loop, whose next send is refused.
func TestSendWatch(t *testing.T) {
	errAbort := errors.New("aborted")
	const timeout = 50 * time.Millisecond
	t.Run("in time", func(t *testing.T) {
		w := newSendWatch(timeout, nil, nil)
		sent := 0
		err := w.run(func() error {
			for range 100 {
				if err := w.send(func() error { sent++; return nil }); err != nil {
					return err
				}
			}
			return errAbort // the loop's own end
		})
		require.ErrorIs(t, err, errAbort)
		require.Equal(t, 100, sent)
	})
	t.Run("Send error", func(t *testing.T) {
		w := newSendWatch(timeout, nil, nil)
		errSend := errors.New("client gone")
		err := w.run(func() error { return w.send(func() error { return errSend }) })
		require.ErrorIs(t, err, errSend)
	})
	t.Run("slow consumer", func(t *testing.T) {
		w := newSendWatch(timeout, nil, nil)
		unblock := make(chan struct{})
		loopErr := make(chan error, 1)
		err := w.run(func() error {
			err := w.send(func() error { <-unblock; return nil })
			loopErr <- err
			return err
		})
		require.ErrorIs(t, err, errSlowConsumer)
		close(unblock) // the stream's end, in the server
		require.ErrorIs(t, <-loopErr, errAbandoned, "the loop returns, touching nothing")
	})
	t.Run("abort during a Send", func(t *testing.T) {
		abort := make(chan struct{})
		w := newSendWatch(time.Hour, abort, func() error { return errAbort })
		unblock := make(chan struct{})
		loopErr := make(chan error, 1)
		inSend := make(chan struct{})
		go func() { <-inSend; close(abort) }()
		err := w.run(func() error {
			err := w.send(func() error { close(inSend); <-unblock; return nil })
			loopErr <- err
			return err
		})
		require.ErrorIs(t, err, errAbort)
		close(unblock)
		require.ErrorIs(t, <-loopErr, errAbandoned)
	})
	t.Run("abort between Sends", func(t *testing.T) {
		abort := make(chan struct{})
		w := newSendWatch(time.Hour, abort, func() error { return errAbort })
		sent := 0
		err := w.run(func() error {
			if err := w.send(func() error { sent++; return nil }); err != nil {
				return err
			}
			close(abort)
			// The loop does not end on abort by itself here: whether run
			// has seen abort yet or not, it waits for the loop, and the
			// loop's next send is refused.
			return w.send(func() error { sent++; return nil })
		})
		require.ErrorIs(t, err, errAbort)
		require.Equal(t, 1, sent, "no Send starts after abort")
	})
}

// BenchmarkSendWatch measures what bounding a Send adds to it: "direct" is
// the call alone (the Send does nothing); "handoff" is watchedSender, which
// ProduceStream uses (a goroutine switch there and back per message);
// "watch" is sendWatch, which Consume uses (a timer reset and stop and two
// atomic operations per message). A Consume message carries a page of up
// to ConsumePageEvents (1,000) events; a follower at the end of its topic
// often one.
func BenchmarkSendWatch(b *testing.B) {
	type msg struct{ n int }
	m := &msg{}
	noop := func(m *msg) error { m.n++; return nil }
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := noop(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("handoff", func(b *testing.B) {
		w := newWatchedSender(noop, time.Minute, nil, func() error { return errStopping })
		defer w.close()
		b.ReportAllocs()
		for b.Loop() {
			if err := w.send(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("watch", func(b *testing.B) {
		w := newSendWatch(time.Minute, nil, func() error { return errStopping })
		send := func() error { return noop(m) }
		b.ReportAllocs()
		err := w.run(func() error {
			for b.Loop() {
				if err := w.send(send); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	})
}
