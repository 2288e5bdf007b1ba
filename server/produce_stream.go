package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// MaxStreamInFlight bounds the requests of one ProduceStream that the server
// has received and not yet answered; their bytes are bounded by the
// server's in-flight budget (Options.MaxInflightBytes), which each holds
// until its append completes, and a request over it is answered
// RESOURCE_EXHAUSTED without being read. At the bound the server stops reading
// the stream until it has sent answers, so HTTP/2 flow control holds the
// client back: a stream holds at most this many decoded requests (each at
// most Options.MaxRequestBytes) and fills a bounded share of the log's
// queue (the log does not bound it). It does not limit throughput in
// practice: 1,024 requests per commit of a few hundred µs is millions of
// requests per second.
const MaxStreamInFlight = 1024

// ProduceStream runs each request of the stream as a Produce of its own and
// answers it on the response stream once its commit completes. Requests
// are handed to the log in the order received, so the log commits them in
// that order, and requests in flight together share group commits. The
// response header carries the server's limits (goethev1.HeaderMaxRequestBytes,
// HeaderMaxEventBytes, HeaderMaxBatchEvents). A client whose request
// metadata has goethev1.HeaderBatchedAnswers "1" gets every answer that is
// ready when the server writes in one message (the first in the top-level
// fields, the rest in more); others get one message per answer. See
// produceSession for the lifecycle.
func (v *service) ProduceStream(stream grpc.BidiStreamingServer[goethev1.ProduceStreamRequest, goethev1.ProduceStreamResponse]) error {
	// The header tells the client the largest request it may send (a
	// larger one fails the stream: gRPC cannot skip a message) and the
	// limits of a Produce, so that it refuses such requests on its own.
	o := &v.s.opts
	if err := stream.SendHeader(metadata.Pairs(
		goethev1.HeaderMaxRequestBytes, strconv.Itoa(o.MaxRequestBytes),
		goethev1.HeaderMaxEventBytes, strconv.Itoa(o.MaxEventBytes),
		goethev1.HeaderMaxBatchEvents, strconv.Itoa(o.MaxBatchEvents),
	)); err != nil {
		return v.status(err)
	}
	s := newProduceSession(v, stream)
	return v.status(s.serve())
}

// streamAnswer is the outcome of one request of a ProduceStream, on its
// way to the send loop.
type streamAnswer struct {
	id  uint64
	res store.AppendResult
	err error
}

// produceSession is one ProduceStream. It has two loops and a drain:
//
//   - the receive loop (a goroutine of its own) takes a slot of room,
//     reads a request, validates it and hands it to the log with
//     AppendAsync, in the order received; the completion (streamCall.done,
//     run by the log's committing goroutine) puts the answer on answers
//     and wakes the send loop, which only the first answer of a batch does,
//     so a commit that completes many requests of the stream wakes it
//     once. An invalid request is answered at once, without the log.
//   - the send loop (the handler's goroutine, the only one that calls
//     Send, as gRPC requires) takes every answer waiting and writes it:
//     all in one message when the client asked for batched answers, else
//     one message each. Then it gives their room back.
//   - the drain, once the stream's end is known, stops the receive loop
//     from handing more to the log, waits until every request handed to it
//     has completed, sends their answers (unless a Send has failed) and
//     returns the end.
//
// No goroutine is started per request, and none waits for one.
//
// The stream ends when receiving ends (the client half-closed it: OK; or
// it is gone, or sent a message over the size limit: that error), when Stop
// begins (UNAVAILABLE, SERVER_STOPPING), or when a Send fails (the client
// is gone), or waits for a client that does not read its answers: for
// Options.SlowConsumerTimeout (RESOURCE_EXHAUSTED, SLOW_CONSUMER), or past
// Stop's grace period (see watchedSender). In every case the requests already handed to the log are
// completed by it within a commit or so, whatever the client does (an
// append the log has queued is never abandoned), and answered if the
// stream can still send: during a graceful stop, every request the server
// has taken is answered before the stream ends, and no request is taken
// after the end is known.
//
// The receive loop may still be blocked in Recv when the handler returns;
// gRPC then ends the stream, which unblocks it, and it exits without
// handing anything to the log.
type produceSession struct {
	v       *service
	stream  grpc.BidiStreamingServer[goethev1.ProduceStreamRequest, goethev1.ProduceStreamResponse]
	ctx     context.Context // the stream's: ends when the client is gone or Stop begins
	batched bool            // the client asked for batched answers

	// room holds a token per request received and not yet answered
	// (MaxStreamInFlight): the receive loop puts one before each Recv, the
	// send loop takes one out per answer it has written.
	room chan struct{}
	// received gets the receive loop's end, once: the error of Recv (io.EOF
	// for a half-close), or the context's error if the stream ended while
	// the loop waited for room. Nothing is sent if the loop stopped because
	// the session stopped taking requests.
	received chan error
	// wake tells the send loop that answers are waiting or, once taking
	// has stopped, that the last request handed to the log completed. One
	// token is enough for any number of events, so completing never blocks.
	wake chan struct{}

	mu      sync.Mutex
	answers []streamAnswer // completed and not yet taken by the send loop, in completion order
	queued  int            // requests handed to the log and not completed
	stopped bool           // the receive loop hands nothing more to the log

	// The send loop's own.
	sending []streamAnswer // the answers being written; swapped with answers
	sendErr error          // the first failed Send: later answers are dropped
	out     responseBuilder
	// sender bounds each Send: by SlowConsumerTimeout, and by the end of
	// Stop's grace period (see watchedSender).
	sender *watchedSender[goethev1.ProduceStreamResponse]
}

func newProduceSession(v *service, stream grpc.BidiStreamingServer[goethev1.ProduceStreamRequest, goethev1.ProduceStreamResponse]) *produceSession {
	ctx := stream.Context()
	batched := false
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		vals := md.Get(goethev1.HeaderBatchedAnswers)
		batched = len(vals) > 0 && vals[len(vals)-1] == "1"
	}
	return &produceSession{
		v:        v,
		stream:   stream,
		ctx:      ctx,
		batched:  batched,
		room:     make(chan struct{}, MaxStreamInFlight),
		received: make(chan error, 1),
		wake:     make(chan struct{}, 1),
		out:      responseBuilder{status: v.statusProto},
		sender: newWatchedSender(stream.Send, v.s.opts.SlowConsumerTimeout, v.s.graceOver,
			func() error { return errStopGraceOver }),
	}
}

// serve runs the session and returns how the stream ends (nil: OK).
func (s *produceSession) serve() error {
	defer s.sender.close()
	go s.receiveLoop()
	return s.drain(s.sendLoop())
}

// receiveLoop reads requests and starts each, until Recv fails, the
// stream's context ends while it waits for room, or the session stops
// taking requests.
func (s *produceSession) receiveLoop() {
	for {
		select {
		case s.room <- struct{}{}:
		default:
			// At the bound: read nothing more until answers are sent, so
			// that flow control holds the client back.
			select {
			case s.room <- struct{}{}:
			case <-s.ctx.Done():
				s.received <- s.ctx.Err()
				return
			}
		}
		req, err := s.stream.Recv()
		if err != nil {
			s.received <- err
			return
		}
		if !s.start(req) {
			return
		}
	}
}

// start validates req and hands it to the log, or answers it at once if it
// is invalid. It reports false, and does neither, once the session has
// stopped taking requests.
func (s *produceSession) start(req *goethev1.ProduceStreamRequest) bool {
	c := newStreamCall()
	var expect store.Expectation
	mk := readMark(req) // the codec's admission (admission.go)
	c.held, c.budget = mk.held, &s.v.s.budget
	err := mk.err
	p := req.GetProduce()
	switch {
	case err != nil:
	case p == nil:
		err = fmt.Errorf("%w: a ProduceStreamRequest needs a produce", errBadRequest)
	default:
		c.events, expect, err = s.v.validate(p, c.events[:0])
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		c.release()
		return false
	}
	if err != nil {
		// Queued under the same lock as the check above, so that a drain
		// that has begun since sends it.
		wake := s.queueLocked(streamAnswer{id: req.GetRequestId(), err: err})
		s.mu.Unlock()
		c.release()
		s.signal(wake)
		return true
	}
	s.queued++
	s.mu.Unlock()
	c.session, c.id = s, req.GetRequestId()
	// The events point into req, which the log may read until done.
	if ca, ok := s.v.log.(ContextAppender); ok {
		ca.AppendAsyncContext(s.ctx, p.Topic, c.events, expect, c.done)
	} else {
		s.v.log.AppendAsync(p.Topic, c.events, expect, c.done)
	}
	return true
}

// completed queues a, the answer of a request handed to the log, and wakes
// the send loop when a is the first answer waiting or the last completion
// a drain waits for. It never blocks: the log's committing goroutine calls
// it.
func (s *produceSession) completed(a streamAnswer) {
	s.mu.Lock()
	wake := s.queueLocked(a)
	s.queued--
	wake = wake || s.stopped && s.queued == 0
	s.mu.Unlock()
	s.signal(wake)
}

// queueLocked queues a for the send loop and reports whether the send loop
// needs waking: a is the first answer waiting, so no wake-up for the
// others is pending. s.mu is held.
func (s *produceSession) queueLocked(a streamAnswer) (wake bool) {
	s.answers = append(s.answers, a)
	return len(s.answers) == 1
}

// signal wakes the send loop if wake is set. It never blocks.
func (s *produceSession) signal(wake bool) {
	if !wake {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// sendLoop writes answers as they come until the stream's end is known,
// and returns it: nil when the client half-closed, errStopping when Stop
// began, else the error that ended receiving or sending.
func (s *produceSession) sendLoop() error {
	for {
		select {
		case <-s.wake:
			if err := s.flush(); err != nil {
				return err // the client is gone
			}
		case err := <-s.received:
			switch {
			case errors.Is(err, io.EOF):
				return nil // half-closed: answer the rest, then OK
			case s.stopping():
				return errStopping
			default:
				return err
			}
		case <-s.ctx.Done():
			if s.stopping() {
				return errStopping // graceful: answer what was taken
			}
			return s.ctx.Err()
		}
	}
}

// stopping reports whether the stream's context ended because Stop began.
func (s *produceSession) stopping() bool { return errors.Is(context.Cause(s.ctx), errStopping) }

// drain stops taking requests, waits for every request handed to the log
// to complete, writes the answers (unless a Send has failed) and returns
// end, or the Send error if one failed first.
func (s *produceSession) drain(end error) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	for {
		s.mu.Lock()
		idle := s.queued == 0 // then every answer is in s.answers
		s.mu.Unlock()
		_ = s.flush()
		if idle {
			break
		}
		<-s.wake
	}
	if end == nil {
		end = s.sendErr
	}
	return end
}

// flush writes every answer waiting and gives their room back. After a
// failed Send it drops them instead. It returns the Send error of this call.
func (s *produceSession) flush() error {
	s.mu.Lock()
	s.sending, s.answers = s.answers, s.sending[:0]
	s.mu.Unlock()
	batch := s.sending
	if len(batch) == 0 {
		return nil
	}
	var err error
	released := 0
	if s.sendErr == nil {
		if s.batched {
			err = s.sender.send(s.out.build(batch))
		} else {
			for i := range batch {
				if err = s.sender.send(s.out.build(batch[i : i+1])); err != nil {
					break
				}
				// Room comes back answer by answer: a client that reads
				// slowly holds the receive loop back by what it has not
				// read, not by the whole batch, which can be every
				// request in flight.
				<-s.room
				released++
			}
		}
		if !abandoned(err) {
			s.out.reset() // else the abandoned Send may still read the message
		}
		s.sendErr = err
	}
	clear(batch) // the answers' errors
	for range len(batch) - released {
		<-s.room
	}
	return err
}

// responseBuilder fills one reused ProduceStreamResponse: Send encodes the
// message before it returns, so its parts are reused from one message to
// the next and answering allocates nothing but the statuses of errors.
type responseBuilder struct {
	status func(error) *spb.Status // the status of a failed request

	msg    goethev1.ProduceStreamResponse
	result goethev1.ProduceResponse
	ok     goethev1.ProduceStreamResponse_Result
	failed goethev1.ProduceStreamResponse_Error
	more   []moreSlot
	ptrs   []*goethev1.ProduceStreamAnswer
}

// moreSlot holds the parts of one answer in ProduceStreamResponse.more.
type moreSlot struct {
	msg    goethev1.ProduceStreamAnswer
	result goethev1.ProduceResponse
	ok     goethev1.ProduceStreamAnswer_Result
	failed goethev1.ProduceStreamAnswer_Error
}

// build returns the message answering batch: its first answer in the
// top-level fields, the others in more. It is valid until the next build
// or reset.
func (b *responseBuilder) build(batch []streamAnswer) *goethev1.ProduceStreamResponse {
	a := &batch[0]
	b.msg.RequestId = a.id
	if a.err == nil {
		setResult(&b.result, a.res)
		b.ok.Result = &b.result
		b.msg.Outcome = &b.ok
	} else {
		b.failed.Error = b.status(a.err)
		b.msg.Outcome = &b.failed
	}
	rest := batch[1:]
	if cap(b.more) < len(rest) {
		// Not grown by append: the slots hold messages, which must not be
		// copied. The old ones are garbage once more is rebuilt below.
		b.more = make([]moreSlot, len(rest), max(len(rest), 2*cap(b.more)))
	}
	b.more = b.more[:len(rest)]
	b.ptrs = b.ptrs[:0]
	for i := range rest {
		a, m := &rest[i], &b.more[i]
		m.msg.RequestId = a.id
		if a.err == nil {
			setResult(&m.result, a.res)
			m.ok.Result = &m.result
			m.msg.Outcome = &m.ok
		} else {
			m.failed.Error = b.status(a.err)
			m.msg.Outcome = &m.failed
		}
		b.ptrs = append(b.ptrs, &m.msg)
	}
	b.msg.More = b.ptrs
	return &b.msg
}

// reset drops what the last message referenced (error statuses).
func (b *responseBuilder) reset() {
	b.failed.Error = nil
	for i := range b.ptrs {
		b.more[i].failed.Error = nil
	}
	clear(b.ptrs)
	b.ptrs = b.ptrs[:0]
	b.msg.More = nil
}

func setResult(m *goethev1.ProduceResponse, r store.AppendResult) {
	m.FirstId, m.FirstSeq, m.Count, m.RaftIndex = r.FirstID, r.FirstSeq, uint32(r.Count), r.Index
	m.Duplicates = nil
	if len(r.Duplicates) > 0 {
		m.Duplicates = produceResponse(r).Duplicates
	}
}

// streamCall is one request of a ProduceStream handed to the log. Calls are
// pooled with their events buffer and their completion, bound once, so a
// request allocates neither.
type streamCall struct {
	session *produceSession
	id      uint64
	events  []store.Event
	done    func(store.AppendResult, error) // complete, bound once

	// held bytes of budget, the request's encoded size, given back on
	// release: a stream's requests in flight hold the server's in-flight
	// budget until their appends complete.
	held   int64
	budget *budget
}

var streamCallPool sync.Pool

func newStreamCall() *streamCall {
	if c, ok := streamCallPool.Get().(*streamCall); ok {
		return c
	}
	c := &streamCall{}
	c.done = c.complete
	return c
}

// complete is the log's completion of the call: it recycles the call and
// queues the answer.
func (c *streamCall) complete(res store.AppendResult, err error) {
	s, id := c.session, c.id
	c.release()
	s.completed(streamAnswer{id: id, res: res, err: err})
}

// release returns c to the pool, dropping what it pointed to.
func (c *streamCall) release() {
	if c.budget != nil {
		c.budget.release(c.held)
	}
	c.held, c.budget = 0, nil
	clear(c.events)
	c.events = c.events[:0]
	c.session, c.id = nil, 0
	streamCallPool.Put(c)
}

// statusProto is the google.rpc.Status that the unary Produce would have
// returned for err (through v.status), for a ProduceStreamResponse.
func (v *service) statusProto(err error) *spb.Status {
	st, _ := status.FromError(v.status(err))
	return st.Proto()
}
