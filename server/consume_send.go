package server

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
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
//   - abort is closed: send returns abortErr() (a ProduceStream aborts
//     when Stop's grace period is over, so that it can answer during the
//     grace).
//
// ProduceStream uses it: its handler's goroutine is its send loop, and
// the handoff costs a goroutine switch there and back per message (about
// 0.5 µs; BenchmarkSendWatch). Consume uses sendWatch instead, which runs
// its loop on a goroutine of its own and sends inline.
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

// sendWatch bounds the Sends of a stream whose loop it runs, without
// handing each message to another goroutine (watchedSender's cost: a
// goroutine switch there and back per message). run starts the loop on a
// goroutine of its own, which calls Send itself through send; the
// handler's goroutine only waits, woken by no message: for the loop's end,
// for a Send that has not returned within the timeout (errSlowConsumer),
// or for abort while a Send is in progress (abortErr()). In those last two
// cases run returns at once, the Send abandoned: the handler returns,
// which ends the stream and so makes the Send return, and the loop then
// returns without touching anything more (send reports errAbandoned). A
// loop that is not in a Send when abort closes is waited for: it must end
// on its own once abort is closed (a Consume's loop: its context is done),
// and send refuses to start a Send then. So the handler never returns
// while the loop may still read the log, which Stop closes once every
// handler has returned. Its cost: a timer reset and stop and two atomic
// operations per Send (about 0.1 µs; BenchmarkSendWatch), and a second
// goroutine for the stream's whole life, an idle follower's included
// (watchedSender starts its own at the first message).
type sendWatch struct {
	timeout  time.Duration
	abort    <-chan struct{}
	abortErr func() error

	state atomic.Int32 // watchIdle, watchSending or watchAbandoned
	timer *time.Timer  // armed while a Send is in progress
}

// The states of a sendWatch: the loop is not in a Send; it is; the
// handler has returned during the Send.
const (
	watchIdle int32 = iota
	watchSending
	watchAbandoned
)

// errAbandoned: the handler returned while the Send was in progress; the
// loop must return at once.
var errAbandoned = errors.New("send abandoned: the stream has ended")

func newSendWatch(timeout time.Duration, abort <-chan struct{}, abortErr func() error) *sendWatch {
	t := time.NewTimer(timeout)
	t.Stop() // no value is received after Stop returns (Go 1.23 timers)
	return &sendWatch{timeout: timeout, abort: abort, abortErr: abortErr, timer: t}
}

// run runs loop on a goroutine of its own and returns its result, or the
// error that ended a Send early (see sendWatch).
func (w *sendWatch) run(loop func() error) error {
	done := make(chan error, 1) // the loop never blocks on it
	go func() { done <- loop() }()
	abort := w.abort
	for {
		select {
		case err := <-done:
			w.timer.Stop()
			return err
		case <-w.timer.C:
			// The Send armed the timer and has not stopped it; if it has
			// returned meanwhile, it was in time, and the loop goes on.
			if w.state.CompareAndSwap(watchSending, watchAbandoned) {
				return fmt.Errorf("%w: the client has not read for %v (--slow-consumer-timeout)", errSlowConsumer, w.timeout)
			}
		case <-abort:
			if w.state.CompareAndSwap(watchSending, watchAbandoned) {
				return w.abortErr()
			}
			// Not in a Send: the loop ends on its own, and send starts
			// none now.
			abort = nil
		}
	}
}

// sendUnarmed is send without arming the timer: for a fan-out round,
// whose watchdog finds a stalled Send after the lease and only then arms
// the timer (arm) for the rest of the timeout. It saves a timer reset and
// stop per Send, a round's largest cost after the Send itself. A timer
// that fires after the Send has returned finds the stream idle and is
// ignored by run, as for send.
func (w *sendWatch) sendUnarmed(sendMsg func(*goethev1.ConsumeResponse) error, m *goethev1.ConsumeResponse) error {
	if err := w.begin(); err != nil {
		return err
	}
	return w.end(sendMsg(m))
}

// arm starts the timer of a Send in progress (sendUnarmed) that has run
// for already; disarm stops it once that Send has returned, before the
// stream sends again unarmed.
func (w *sendWatch) arm(already time.Duration) { w.timer.Reset(max(w.timeout-already, 0)) }
func (w *sendWatch) disarm()                   { w.timer.Stop() }

// send calls sendMsg, watched by run. Only the loop calls it. After it has
// failed the loop must return at once, touching nothing: the Send may
// still be encoding the message.
func (w *sendWatch) send(sendMsg func() error) error {
	if err := w.begin(); err != nil {
		return err
	}
	w.timer.Reset(w.timeout)
	err := sendMsg()
	w.timer.Stop()
	return w.end(err)
}

// begin marks a Send in progress, or fails once abort is closed: checked
// after the state is set, so that run either sees the Send (and abandons
// it) or has seen abort before it: then it waits for the loop, which
// returns now.
func (w *sendWatch) begin() error {
	w.state.Store(watchSending)
	select {
	case <-w.abort:
		if w.state.CompareAndSwap(watchSending, watchIdle) {
			return w.abortErr()
		}
		return errAbandoned
	default:
		return nil
	}
}

// end marks the Send returned with err, or reports errAbandoned if run
// returned during it.
func (w *sendWatch) end(err error) error {
	if !w.state.CompareAndSwap(watchSending, watchIdle) {
		return errAbandoned
	}
	return err
}
