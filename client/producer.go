package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// ErrProducerClosed is the error of a Producer's Produce called after Close.
var ErrProducerClosed = errors.New("goethe: producer closed")

// Producer produces over one long-lived ProduceStream: the fast path for
// many small produces. Many goroutines share a Producer; each Produce sends
// its request without waiting for the others' answers and waits for its
// own, so the requests of all callers are in flight together on one
// stream, and the server commits them together. Per call, this costs a
// fraction of a unary Client.Produce (no HTTP/2 stream, headers or call
// setup per request; about a quarter of the allocations), which is what
// bounds many small produces.
//
// # Guarantees
//
//   - Each Produce is exactly a Client.Produce: atomic, with the same
//     validation, limits, durability and errors (ErrConflict with a
//     *ConflictError, ErrInvalidArgument, ...). A failed request fails
//     alone; the stream and the other calls go on.
//   - What the server could not take without ending the stream fails alone
//     too, without being sent: a request larger than the max request size
//     the server states when the stream opens (ErrTooLarge, as the unary
//     call), and a topic or header that is not valid UTF-8
//     (ErrInvalidArgument; the unary call fails as INTERNAL).
//   - Calls are independent: concurrent calls commit in any order. One
//     goroutine's calls commit in the order it makes them, since each
//     returns only once committed.
//   - A Producer is safe for concurrent use.
//   - Once the stream breaks (the server stops, the connection fails, the
//     context given to NewProducer ends), every call waiting for an answer
//     and every later call fails with an error that wraps the stream's:
//     "goethe: produce stream ended: ...", ErrUnavailable when the server
//     stopped. Those in flight may or may not have been stored. A Producer
//     does not reconnect: make a new one.
//
// # Caveats
//
//   - A Produce's context bounds its wait for the answer, not the request:
//     a call whose context ends first returns the context's error while its
//     request may still be stored. The server does not see the call's
//     deadline; its limits apply per stream, not per call.
//   - A request waits to be sent while the server has its per-stream bound
//     of requests in flight (server.MaxStreamInFlight, 1,024), and Produce
//     cannot return early while it waits to be sent.
type Producer struct {
	stream grpc.ClientStream
	cancel context.CancelFunc
	done   chan struct{} // closed when the receiver has failed every call
	// maxRequest is the server's max request size (0: unknown): a larger
	// request would end the stream, so it fails alone, here.
	maxRequest int
	nextID     atomic.Uint64

	// sendMu serializes SendMsg and CloseSend (gRPC allows one at a time)
	// and guards closing.
	sendMu  sync.Mutex
	closing bool

	mu      sync.Mutex // guards pending and err
	pending map[uint64]*call
	err     error // set once the stream is over; every call fails with it
}

// call is one Produce waiting for its answer. Whoever takes it out of
// pending (the receiver, or fail) sets res or err and signals ready once.
// Calls are reused.
type call struct {
	ready chan struct{} // buffered: signalling never blocks
	res   ProduceResult
	err   error
}

var callPool = sync.Pool{New: func() any { return &call{ready: make(chan struct{}, 1)} }}

// MaxRequestBytesHeader is the ProduceStream response header in which the
// server states its max request message size (decimal bytes).
const MaxRequestBytesHeader = "goethe-max-request-bytes"

// produceStreamDesc is the ProduceStream method's stream description.
var produceStreamDesc = func() *grpc.StreamDesc {
	for i := range goethev1.Goethe_ServiceDesc.Streams {
		if d := &goethev1.Goethe_ServiceDesc.Streams[i]; d.StreamName == "ProduceStream" {
			return d
		}
	}
	panic("client: no ProduceStream stream in the service description")
}()

// NewProducer opens a ProduceStream on the client's connection and returns
// once the server has accepted it. The stream lives until Close, or until
// ctx ends, which breaks it (calls in flight fail). A Producer holds one
// HTTP/2 stream of the client's connection.
func (c *Client) NewProducer(ctx context.Context) (*Producer, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.cc.NewStream(ctx, produceStreamDesc, goethev1.Goethe_ProduceStream_FullMethodName, grpc.ForceCodecV2(codec{}))
	var md metadata.MD
	if err == nil {
		md, err = stream.Header()
	}
	if err == nil && md == nil {
		// The stream ended before the server started it.
		err = stream.RecvMsg(&produceAnswer{})
		if err == nil || errors.Is(err, io.EOF) {
			err = status.Error(codes.Internal, "goethe: ProduceStream ended before it started")
		}
	}
	if err != nil {
		cancel()
		return nil, wrapError(err)
	}
	p := &Producer{stream: stream, cancel: cancel, done: make(chan struct{}), pending: make(map[uint64]*call)}
	if v := md.Get(MaxRequestBytesHeader); len(v) == 1 {
		p.maxRequest, _ = strconv.Atoi(v[0])
	}
	go p.receive()
	return p, nil
}

// Produce appends events to topic in one atomic batch over the Producer's
// stream, creating the topic if needed, and waits for the answer. See the
// package guarantees and Producer's. The events are read, not retained,
// once Produce returns.
func (p *Producer) Produce(ctx context.Context, topic string, events []EventData, opts ...ProduceOption) (ProduceResult, error) {
	if err := ctx.Err(); err != nil {
		return ProduceResult{}, wrapError(err)
	}
	var expect *uint64
	if len(opts) > 0 {
		var r goethev1.ProduceRequest
		for _, o := range opts {
			o(&r)
		}
		expect = r.ExpectedLastSeq
	}
	id := p.nextID.Add(1)
	req, size, err := encodeProduce(id, topic, events, expect)
	if err != nil {
		return ProduceResult{}, err
	}
	if p.maxRequest > 0 && size > p.maxRequest {
		req.data.Free()
		return ProduceResult{}, &Error{st: status.Newf(codes.ResourceExhausted,
			"a request of %d bytes is larger than the server's max request size (%d bytes)", size, p.maxRequest)}
	}

	cl := callPool.Get().(*call)
	p.mu.Lock()
	if err := p.err; err != nil {
		p.mu.Unlock()
		req.data.Free()
		callPool.Put(cl)
		return ProduceResult{}, err
	}
	p.pending[id] = cl
	p.mu.Unlock()

	p.sendMu.Lock()
	if p.closing {
		p.sendMu.Unlock()
		req.data.Free()
		if p.forget(id) {
			callPool.Put(cl)
			return ProduceResult{}, ErrProducerClosed
		}
		<-cl.ready // failed meanwhile
		return p.outcome(cl)
	}
	err = p.stream.SendMsg(req)
	p.sendMu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) {
		// An error of the client's making, which aborted the stream. (With
		// io.EOF the server ended it, and the receiver learns why.)
		p.fail(wrapError(err))
	}

	if done := ctx.Done(); done != nil {
		select {
		case <-cl.ready:
		case <-done:
			if p.forget(id) {
				callPool.Put(cl)
				return ProduceResult{}, wrapError(ctx.Err())
			}
			<-cl.ready // the answer is being delivered: take it
		}
	} else {
		<-cl.ready
	}
	return p.outcome(cl)
}

// forget takes the call id out of pending, and reports whether it was
// there: if not, its answer is being delivered.
func (p *Producer) forget(id uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.pending[id]
	delete(p.pending, id)
	return ok
}

// outcome returns the outcome of cl, whose signal has been taken, and puts
// cl back in the pool.
func (p *Producer) outcome(cl *call) (ProduceResult, error) {
	res, err := cl.res, cl.err
	cl.res, cl.err = ProduceResult{}, nil
	callPool.Put(cl)
	return res, err
}

// receive reads answers and hands each to its call until the stream ends,
// then fails the calls still waiting.
func (p *Producer) receive() {
	defer close(p.done)
	a := new(produceAnswer)
	for {
		if err := p.stream.RecvMsg(a); err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the stream with OK: only after Close.
				p.fail(ErrProducerClosed)
			} else {
				p.fail(wrapError(err))
			}
			return
		}
		p.mu.Lock()
		cl := p.pending[a.id]
		delete(p.pending, a.id)
		p.mu.Unlock()
		if cl == nil {
			continue // its caller gave up
		}
		switch {
		case a.status != nil:
			cl.err = wrapError(status.FromProto(a.status).Err())
		case a.result:
			cl.res = a.res
		default:
			cl.err = &Error{st: status.Newf(codes.Internal, "produce stream: answer %d has no outcome", a.id)}
		}
		cl.ready <- struct{}{}
	}
}

// fail ends the Producer with err (the first one wins): every call waiting
// and every later call fails with it.
func (p *Producer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		if !errors.Is(err, ErrProducerClosed) {
			err = fmt.Errorf("goethe: produce stream ended: %w", err)
		}
		p.err = err
	}
	for id, cl := range p.pending {
		cl.err = p.err
		cl.ready <- struct{}{}
		delete(p.pending, id)
	}
}

// Close ends the Producer: later calls fail with ErrProducerClosed, calls in
// flight get their answers (the server answers every request it received
// before it ends the stream), and then the stream ends. Close waits for
// that; to cut it short, end the context given to NewProducer, which fails
// the calls still waiting. Close returns nil, or the error that had broken
// the stream before. It is idempotent.
func (p *Producer) Close() error {
	p.sendMu.Lock()
	if !p.closing {
		p.closing = true
		_ = p.stream.CloseSend() // never fails; a broken stream ends anyway
	}
	p.sendMu.Unlock()
	<-p.done
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if errors.Is(p.err, ErrProducerClosed) {
		return nil
	}
	return p.err
}
