package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// forwardStream is a follower's ProduceStream to the leader's service,
// marked with ForwardedKey and asking for batched answers: the appends of
// every caller on this follower go out on it, many in flight at once, in
// the order they were sent, and the leader answers all that one of its
// commits completed in one message. Without it each forwarded append was a
// unary Produce and a stream's next request waited for the previous answer
// (0.78k events/s through a follower against 16-23k through the leader, see
// results/bench/cluster).
//
// It has a receive loop (a goroutine) that completes the calls, and a
// watchdog (a goroutine) that breaks the stream when a call waits longer
// than the Log's ForwardTimeout. Once broken (the leader is gone, the
// connection is cut, the watchdog fired, the Log closed) every call waiting
// ends with forwardErr of the stream's end, which is ErrOutcomeUnknown
// unless the leader ended the stream with a status of its own service (a
// graceful stop, for the requests it had not taken); a broken stream takes
// no more calls and the next call opens a new one.
type forwardStream struct {
	addr    string // the leader's client address
	cs      grpc.BidiStreamingClient[goethev1.ProduceStreamRequest, goethev1.ProduceStreamResponse]
	cancel  context.CancelFunc
	timeout time.Duration
	ended   chan struct{}      // closed when the receive loop has failed every call left
	onAck   func(index uint64) // called with each acknowledged append's index, before its done

	// sendMu makes ids and Sends go in the same order (gRPC allows one
	// Send at a time).
	sendMu sync.Mutex

	mu      sync.Mutex
	nextID  uint64
	calls   map[uint64]forwardCall // sent (or being sent), not answered
	broken  error                  // why the stream takes no more calls
	retired bool                   // no longer the leader's: closed once idle
}

// forwardCall is one append on its way to the leader.
type forwardCall struct {
	done func(store.AppendResult, error)
	sent time.Time
}

// openForwardStream opens a stream to the leader at addr over conn.
func openForwardStream(conn *grpc.ClientConn, addr string, timeout time.Duration, onAck func(uint64)) (*forwardStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	ctx = metadata.AppendToOutgoingContext(ctx, ForwardedKey, "1", goethev1.HeaderBatchedAnswers, "1")
	cs, err := goethev1.NewGoetheClient(conn).ProduceStream(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: open a stream to the leader at %s: %w", ErrUnavailable, addr, err)
	}
	s := &forwardStream{addr: addr, cs: cs, cancel: cancel, timeout: timeout, ended: make(chan struct{}),
		onAck: onAck, calls: map[uint64]forwardCall{}}
	go s.receive()
	go s.watch()
	return s, nil
}

// send sends the append as the stream's next request; done is called
// exactly once, from the receive loop (or from send if the stream is
// broken already, which it reports false for: the caller may open a new
// stream and retry, nothing was sent).
func (s *forwardStream) send(topic string, events []store.Event, expect store.Expectation, done func(store.AppendResult, error)) bool {
	req := &goethev1.ProduceStreamRequest{Produce: &goethev1.ProduceRequest{Topic: topic,
		Events: make([]*goethev1.EventData, len(events))}}
	for i := range events {
		req.Produce.Events[i] = &goethev1.EventData{Payload: events[i].Payload, Headers: events[i].Headers, DedupeKey: events[i].DedupeKey}
	}
	if expect.IsSet() {
		n := expect.LastSeq()
		req.Produce.ExpectedLastSeq = &n
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	if s.broken != nil || s.retired {
		s.mu.Unlock()
		return false
	}
	s.nextID++
	req.RequestId = s.nextID
	s.calls[req.RequestId] = forwardCall{done: done, sent: time.Now()}
	s.mu.Unlock()
	if err := s.cs.Send(req); err != nil {
		// The stream is over: the receive loop gets its status and fails
		// this call with the others (it may have reached the leader).
		s.breakWith(err)
	}
	return true
}

// receive completes calls as the leader answers them, until the stream
// ends; then it fails the calls left.
func (s *forwardStream) receive() {
	defer close(s.ended)
	var err error
	for {
		var resp *goethev1.ProduceStreamResponse
		if resp, err = s.cs.Recv(); err != nil {
			break
		}
		s.answer(resp.GetRequestId(), resp.GetResult(), resp.GetError())
		for _, a := range resp.GetMore() {
			s.answer(a.GetRequestId(), a.GetResult(), a.GetError())
		}
		if s.idleRetired() {
			err = errRetired
			break
		}
	}
	s.breakWith(err)
	s.cancel()
	s.mu.Lock()
	calls := s.calls
	s.calls = nil
	broken := s.broken
	s.mu.Unlock()
	ferr := forwardErr(broken)
	for _, c := range calls {
		c.done(store.AppendResult{}, ferr)
	}
}

var errRetired = errors.New("cluster: forward stream retired")

// answer completes the call id with the leader's result or status.
func (s *forwardStream) answer(id uint64, res *goethev1.ProduceResponse, st *spb.Status) {
	s.mu.Lock()
	c, ok := s.calls[id]
	delete(s.calls, id)
	s.mu.Unlock()
	switch {
	case !ok:
		// An id this stream did not send: nothing waits for it.
	case res != nil:
		s.onAck(res.GetRaftIndex())
		r := store.AppendResult{FirstID: res.GetFirstId(), FirstSeq: res.GetFirstSeq(), Count: int(res.GetCount()),
			Index: res.GetRaftIndex()}
		for _, d := range res.GetDuplicates() {
			r.Duplicates = append(r.Duplicates, store.Duplicate{Index: int(d.GetIndex()), ID: d.GetId(), Seq: d.GetSeq()})
		}
		c.done(r, nil)
	case st != nil:
		c.done(store.AppendResult{}, forwardErr(status.ErrorProto(st)))
	default:
		c.done(store.AppendResult{}, forwardErr(errors.New("the leader answered with neither result nor error")))
	}
}

// breakWith marks the stream broken by err (the first cause wins) and
// cancels it, so that the receive loop ends.
func (s *forwardStream) breakWith(err error) {
	s.mu.Lock()
	if s.broken == nil {
		s.broken = err
	}
	s.mu.Unlock()
	s.cancel()
}

// retire stops the stream from taking calls; it ends once the calls in
// flight are answered.
func (s *forwardStream) retire() {
	s.mu.Lock()
	s.retired = true
	idle := len(s.calls) == 0
	s.mu.Unlock()
	if idle {
		s.breakWith(errRetired)
	}
}

func (s *forwardStream) idleRetired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retired && len(s.calls) == 0
}

// usable reports whether the stream takes calls.
func (s *forwardStream) usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken == nil && !s.retired
}

// watch breaks the stream when a call has waited longer than the
// timeout: a leader that neither answers nor drops the connection (a
// partition) must not hold the calls forever.
func (s *forwardStream) watch() {
	t := time.NewTicker(max(s.timeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.ended:
			return
		case now := <-t.C:
			if s.oldest(now) > s.timeout {
				s.breakWith(fmt.Errorf("no answer from the leader at %s within %v", s.addr, s.timeout))
			}
		}
	}
}

// oldest is how long the oldest call has waited.
func (s *forwardStream) oldest(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, c := range s.calls {
		d = max(d, now.Sub(c.sent))
	}
	return d
}

// close breaks the stream and waits until every call waiting on it ended.
func (s *forwardStream) close() {
	s.breakWith(ErrClosed)
	<-s.ended
}
