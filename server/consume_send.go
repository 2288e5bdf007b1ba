package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// consumeSender sends a Consume stream's messages with a bound on how long
// one may wait for its client. gRPC's Send blocks, with no deadline, until
// HTTP/2 flow control lets the message out, and nothing but the end of the
// stream unblocks it; the stream ends when its handler returns. So Send
// runs on a goroutine of the sender's own (one per stream, started at its
// first message), and the handler waits for it, for the stream's context,
// or for the timeout, whichever comes first:
//
//   - the Send returns: send returns its error;
//   - the timeout (Options.SlowConsumerTimeout) passes: send returns
//     errSlowConsumer, and the handler returns it (RESOURCE_EXHAUSTED,
//     SLOW_CONSUMER);
//   - the context ends (the client went, or Stop began): send returns its
//     error.
//
// After send has failed the handler must return without touching the
// message: the Send may still be encoding it. Returning ends the stream
// (gRPC writes its status, which cancels the transport stream), which makes
// the pending Send return, and the goroutine then exits. The status reaches
// the client after the data that was already queued, once it reads. A
// stalled stream so holds, once ended, only the unsent rest of its last
// message in the transport, at most one page's encoding; before, its page
// of events as well.
type consumeSender struct {
	stream  grpc.ServerStreamingServer[goethev1.ConsumeResponse]
	ctx     context.Context
	timeout time.Duration

	out   chan *goethev1.ConsumeResponse // to the goroutine; closed by close
	res   chan error                     // from it, one per message
	timer *time.Timer
}

func newConsumeSender(stream grpc.ServerStreamingServer[goethev1.ConsumeResponse], timeout time.Duration) *consumeSender {
	return &consumeSender{stream: stream, ctx: stream.Context(), timeout: timeout}
}

// send sends m, or fails as above. It must not be called again after it
// has failed.
func (w *consumeSender) send(m *goethev1.ConsumeResponse) error {
	if w.out == nil {
		w.out = make(chan *goethev1.ConsumeResponse)
		w.res = make(chan error, 1) // the goroutine never blocks on it
		go w.loop()
		w.timer = time.NewTimer(w.timeout)
	} else {
		w.timer.Reset(w.timeout)
	}
	select {
	case w.out <- m:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	select {
	case err := <-w.res:
		w.timer.Stop()
		return err
	case <-w.timer.C:
		return fmt.Errorf("%w: the client has not read for %v (--slow-consumer-timeout); consume again from the last event received", errSlowConsumer, w.timeout)
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

// loop is the goroutine that calls Send.
func (w *consumeSender) loop() {
	for m := range w.out {
		w.res <- w.stream.Send(m)
	}
}

// close ends the goroutine once its pending Send, if any, has returned.
func (w *consumeSender) close() {
	if w.out != nil {
		close(w.out)
	}
}
