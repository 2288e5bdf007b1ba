package client

import (
	"context"
	"sync"
)

// Future is the outcome of one Producer.Send, known once the server has
// answered the request that carried the Send's events (or the Producer has
// failed it). It is cheap: no goroutine waits for it, and Futures are
// recycled, so a Send allocates no channel.
//
// Recycling sets its one rule: once Wait has returned the outcome (a result
// or the Send's error, as opposed to Wait's own context ending), the Future
// is the Producer's again and must not be used any more, by Wait, Done or
// any other goroutine. Until then Wait may be called again after its
// context ended, and Done from any goroutine. A Future that is never
// waited for is simply garbage collected.
type Future struct {
	sig chan struct{} // cap 1: receives one value once the outcome is set

	mu   sync.Mutex
	done chan struct{} // made by Done, closed once the outcome is set
	set  bool
	res  ProduceResult
	err  error

	// Where the Send's events are in its request, set by the Producer.
	off, n int
}

var futurePool = sync.Pool{New: func() any { return &Future{sig: make(chan struct{}, 1)} }}

// closedChan is Done's channel for a Future already completed.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// complete sets the outcome and wakes the waiter. It is called once, and
// the Future is not touched afterwards by the Producer: Wait may recycle
// it at once.
func (f *Future) complete(res ProduceResult, err error) {
	f.mu.Lock()
	f.res, f.err, f.set = res, err, true
	if f.done != nil {
		close(f.done)
	}
	f.mu.Unlock()
	f.sig <- struct{}{}
}

// Done returns a channel that is closed once the outcome is known, for a
// select over several Futures or other events; Wait then returns the
// outcome at once. Done must not be called once Wait has returned the
// outcome. Its first call allocates a channel unless the outcome is
// already known.
func (f *Future) Done() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done == nil {
		if f.set {
			return closedChan
		}
		f.done = make(chan struct{})
	}
	return f.done
}

// Wait waits for the Send's outcome: where its events landed (see
// ProduceResult: its own events' ids and seqs, also when the Producer
// merged it with others), or the error that failed them. An error of the
// request is the server's status as Client.Produce would return it (see
// the package guarantees), or the Producer's (ErrProducerClosed, or a
// broken stream's). If ctx ends first, Wait returns ctx's error and the
// Future stays valid: the events may still be stored, and Wait may be
// called again. Once Wait has returned the outcome, the Future must not be
// used again (it is recycled).
func (f *Future) Wait(ctx context.Context) (ProduceResult, error) {
	select {
	case <-f.sig:
	default:
		select {
		case <-f.sig:
		case <-ctx.Done():
			return ProduceResult{}, wrapError(ctx.Err())
		}
	}
	f.mu.Lock()
	res, err := f.res, f.err
	f.res, f.err, f.set, f.done = ProduceResult{}, nil, false, nil
	f.mu.Unlock()
	futurePool.Put(f)
	return res, err
}
