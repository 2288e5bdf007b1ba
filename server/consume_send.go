package server

import (
	"errors"
	"fmt"
	"time"
)

// errStopGraceOver: a Send of a stream was still waiting for its client
// when Stop's grace period ended; the stream's answers are dropped.
var errStopGraceOver = fmt.Errorf("%w: the client did not read within the stop grace period", errStopping)

// watchedSender sends a stream's messages with a bound on how long one may
// wait for its client. gRPC's Send blocks, with no deadline, until HTTP/2
// flow control lets the message out, and nothing but the end of the stream
// unblocks it; the stream ends when its handler returns. So Send runs on a
// goroutine of the sender's own (one per stream, started at its first
// message), and the handler waits for it, for the timeout, or for abort,
// whichever comes first:
//
//   - the Send returns: send returns its error;
//   - the timeout (Options.SlowConsumerTimeout) passes: send returns an
//     error wrapping errSlowConsumer, and the handler returns it
//     (RESOURCE_EXHAUSTED, SLOW_CONSUMER);
//   - abort is closed: send returns abortErr() (a Consume stream aborts
//     when its context ends: its client went, or Stop began; a
//     ProduceStream when Stop's grace period is over, so that it can
//     answer during the grace).
//
// After send has failed the handler must return without touching the
// message: the Send may still be encoding it. Returning ends the stream
// (gRPC writes its status, which cancels the transport stream), which makes
// the pending Send return, and the goroutine then exits. The status reaches
// the client after the data already queued, once it reads. A stalled
// stream so holds, once ended, only the unsent rest of its last message in
// the transport.
type watchedSender[T any] struct {
	sendMsg  func(*T) error
	timeout  time.Duration
	abort    <-chan struct{}
	abortErr func() error

	out   chan *T    // to the goroutine; closed by close
	res   chan error // from it, one per message
	timer *time.Timer
}

func newWatchedSender[T any](sendMsg func(*T) error, timeout time.Duration, abort <-chan struct{}, abortErr func() error) *watchedSender[T] {
	return &watchedSender[T]{sendMsg: sendMsg, timeout: timeout, abort: abort, abortErr: abortErr}
}

// send sends m, or fails as above. It must not be called again after it
// has failed.
func (w *watchedSender[T]) send(m *T) error {
	if w.out == nil {
		w.out = make(chan *T)
		w.res = make(chan error, 1) // the goroutine never blocks on it
		go w.loop()
		w.timer = time.NewTimer(w.timeout)
	} else {
		w.timer.Reset(w.timeout)
	}
	select {
	case w.out <- m:
	case <-w.abort:
		w.timer.Stop()
		return w.abortErr()
	}
	select {
	case err := <-w.res:
		w.timer.Stop()
		return err
	case <-w.timer.C:
		return fmt.Errorf("%w: the client has not read for %v (--slow-consumer-timeout)", errSlowConsumer, w.timeout)
	case <-w.abort:
		w.timer.Stop()
		return w.abortErr()
	}
}

// loop is the goroutine that calls Send.
func (w *watchedSender[T]) loop() {
	for m := range w.out {
		w.res <- w.sendMsg(m)
	}
}

// close ends the goroutine once its pending Send, if any, has returned.
func (w *watchedSender[T]) close() {
	if w.out != nil {
		close(w.out)
	}
}

// abandoned reports whether err, from send, left a Send running.
func abandoned(err error) bool {
	return errors.Is(err, errSlowConsumer) || errors.Is(err, errStopGraceOver)
}
