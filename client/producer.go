package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// ErrProducerClosed is the error of a Send or Produce on a Producer that
// Close has begun to close.
var ErrProducerClosed = errors.New("goethe: producer closed")

// Server limits a Producer assumes when the server does not state them in
// the ProduceStream response header (a server that predates the header):
// the documented defaults of the goethe server.
const (
	assumedMaxEventBytes   = 1 << 20
	assumedMaxBatchEvents  = 10_000
	assumedMaxRequestBytes = 64 << 20
)

// Defaults of ProducerOptions, filled in by DefaultProducerOptions.
const (
	// DefaultMaxInFlightRequests bounds the requests a Producer has sent
	// and not yet had answered. It matters with several topics only: a
	// Producer keeps at most one request per topic in flight (see
	// Producer). See ProducerOptions for how it was chosen.
	DefaultMaxInFlightRequests = 64
	// DefaultMaxInFlightEvents bounds the events accepted by Send and not
	// yet answered.
	DefaultMaxInFlightEvents = 65_536
	// DefaultMaxInFlightBytes bounds the encoded bytes of the events
	// accepted by Send and not yet answered.
	DefaultMaxInFlightBytes = 32 << 20
)

// ProducerOptions bounds what a Producer holds in flight. Start from
// DefaultProducerOptions; zero fields take their defaults.
//
// Events wait in the Producer while a request of their topic is in flight,
// and go out together, merged, once it is answered: the bounds set how
// much may wait, not how long. Send blocks while accepting its events
// would exceed MaxInFlightEvents or MaxInFlightBytes (a Send larger than a
// bound alone is accepted when nothing else is in flight).
type ProducerOptions struct {
	// MaxInFlightRequests bounds the requests sent and not yet answered,
	// over all topics; a topic's next request waits for a free slot (in the
	// order topics became ready), taking the topic's Sends made
	// meanwhile. As a Producer keeps one request per topic in flight, it
	// bounds how many topics are written at once. The default, 64, was
	// chosen with BenchmarkProducer (goroutines each waiting for its own
	// event, fsync on): with 256 goroutines over 64 topics, 16 in flight
	// made 117–126k events/s, 64 made 175–207k and 256 made 192–214k; with
	// 64 goroutines over 16 topics, 16 and 64 did alike (112–150k) and 256
	// no better (124–126k). A server commits the requests in flight
	// together, so the bound should cover the topics written at once.
	MaxInFlightRequests int
	// MaxInFlightEvents bounds the events accepted by Send and not yet
	// answered, queued or sent.
	MaxInFlightEvents int
	// MaxInFlightBytes bounds the encoded bytes of those events.
	MaxInFlightBytes int
	// Reliable makes the Producer survive a broken stream without storing
	// an event twice (see Producer, "Reliable mode"): every event sent
	// without a DedupeKey gets one (the Producer's random id and a
	// counter), and when the stream breaks with ErrUnavailable the
	// Producer opens a new one, waiting as Backoff says, and sends again,
	// in order, the requests that were in flight. It is off by default,
	// as NATS JetStream's clients leave Msg-Id to the caller: it costs a
	// key of about 30 bytes per event (counted in the event's size
	// limit), a copy of each request kept until it is answered, and a
	// dedupe record per event on the server; Kafka's idempotent producer,
	// on by default since 3.0, pays the like with its sequence numbers.
	// goethectl produce turns it on.
	Reliable bool
	// Backoff is how a Reliable Producer waits between attempts to
	// reconnect. A zero MaxElapsed takes DefaultProducerRetryTime: the
	// Producer must give up within the server's dedupe window, or a resend
	// could store its events a second time.
	Backoff Backoff
}

// DefaultProducerOptions returns the documented defaults.
func DefaultProducerOptions() ProducerOptions {
	return ProducerOptions{
		MaxInFlightRequests: DefaultMaxInFlightRequests,
		MaxInFlightEvents:   DefaultMaxInFlightEvents,
		MaxInFlightBytes:    DefaultMaxInFlightBytes,
	}
}

func (o *ProducerOptions) fill() {
	d := DefaultProducerOptions()
	if o.MaxInFlightRequests <= 0 {
		o.MaxInFlightRequests = d.MaxInFlightRequests
	}
	if o.MaxInFlightEvents <= 0 {
		o.MaxInFlightEvents = d.MaxInFlightEvents
	}
	if o.MaxInFlightBytes <= 0 {
		o.MaxInFlightBytes = d.MaxInFlightBytes
	}
	if o.Backoff.MaxElapsed <= 0 {
		o.Backoff.MaxElapsed = DefaultProducerRetryTime
	}
	o.Backoff.fill()
}

// ProducerStats are a Producer's cumulative counters since it opened.
// Sends / Requests is how many Sends shared a request on average, and
// Requests / Responses how many requests shared a response message.
type ProducerStats struct {
	// Sends counts the Sends accepted (each got a Future), Events their
	// events.
	Sends, Events uint64
	// Requests counts the ProduceStream requests sent.
	Requests uint64
	// Responses counts the response messages received; with batched
	// answers one message answers every request of one server commit.
	Responses uint64
	// Reconnects counts the streams a Reliable Producer opened after its
	// first, and Resent the requests it sent again on them.
	Reconnects, Resent uint64
}

// Producer is the asynchronous way to produce, and the way for concurrent
// callers of one process to produce: one long-lived ProduceStream that
// many goroutines share, in the manner of Kafka's producer and the NATS
// client's PublishAsync. Send hands events over and returns at once with a
// Future; while a request of a topic is in flight, the events sent to that
// topic meanwhile, by any goroutine, wait and then go out merged into one
// request. So a busy Producer sends few, large requests, and the server
// commits them together, while a lone caller's Send goes out at once. The
// Producer asks the server to answer every request completed by one commit
// in one message.
//
// # Guarantees
//
//   - Order: a Producer keeps at most one request per topic in flight, and
//     sends a topic's requests in the order it accepted their Sends. So the
//     Sends to one topic through one Producer are stored in the order Send
//     accepted them: one goroutine's Sends to a topic are stored in the
//     order it made them, even when it does not wait between them, and a
//     Send that returned before another began is stored before it. This
//     does not rest on the order in which the server commits a stream's
//     requests, which ProduceStream does not promise. Different topics'
//     requests are in flight together, up to
//     ProducerOptions.MaxInFlightRequests. One request per topic is also
//     what measured best: the events sent while it is in flight go out
//     together in the next, where a second request in flight splits them
//     (goethectl bench --producers 16, one topic, fsync on: 31–39k
//     events/s with one request per topic, 31–38k with two at 40% more
//     client CPU per event, 20k with four).
//   - Atomicity: each Send's events are stored all or none, with
//     consecutive ids and seqs (its Future's ProduceResult). Sends merged
//     into one request are stored atomically together, in Send order, and
//     share its outcome: the request's error fails each of them. A Send
//     with ExpectLastSeq is never merged: it is its own request.
//   - What a merged request would fail on is checked per Send, before it
//     is accepted, against the limits the server states when the stream
//     opens (or its documented defaults): an event over the max event size
//     or more events than the max per Produce (ErrInvalidArgument, reason
//     goethev1.ReasonLimitExceeded), a request over the max request size
//     (ErrTooLarge, same reason), a topic or header that is not valid
//     UTF-8 (ErrInvalidArgument; the server could not decode it, and it
//     would end the stream), no events (ErrInvalidArgument). Send returns
//     these errors itself, so one caller's bad event fails that caller
//     alone, never the Sends merged with it. A merged request never
//     exceeds the server's max events per Produce or max request size.
//   - Durability and errors are Client.Produce's: a nil error means stored
//     (on disk unless the server runs unsafely); ErrConflict with a
//     *ConflictError and ErrInvalidArgument mean not stored; any other
//     error, or a broken stream, may or may not have stored the events.
//     A failed request does not stop the next ones of its topic.
//   - Every Future accepted gets its outcome: an answer, or the error
//     that broke the stream. Once the stream breaks (the server stops, the
//     connection fails, the context given to NewProducer ends), every
//     unanswered Future and every later Send fails with an error that
//     wraps the stream's ("goethe: produce stream ended: ...",
//     ErrUnavailable when the server stopped). A Producer that is not
//     Reliable does not reconnect: make a new one. A Reliable one
//     reconnects and resends (see Reliable mode), and fails so only once
//     it gives up.
//   - A Producer is safe for concurrent use.
//
// # Reliable mode
//
// With ProducerOptions.Reliable, a broken stream is not the end: every
// event carries a dedupe key (the caller's, or one the Producer makes), and
// when the stream breaks with ErrUnavailable (the server stopped or
// restarted, the connection failed) the Producer opens a new stream with
// backoff and sends again the requests that were in flight, each topic's in
// order, before the requests that waited. The server stores an event whose
// key it stored within its dedupe window once: a request that had been
// stored before the break is answered with duplicates, and its Futures
// complete with the original ids and seqs (ProduceResult.Duplicates and
// Position). Sends made while it reconnects wait in the Producer, within
// the in-flight bounds. It gives up after Backoff.MaxElapsed (by default
// DefaultProducerRetryTime, within the server's default window of two
// minutes), or when the context given to NewProducer ends, and then fails
// as a Producer that is not reliable does. A request refused for another
// reason (a conflict, a limit) is not retried. Keys are unique to one
// Producer: a new Producer's resends of another's events are not
// recognised.
//
// # Caveats
//
//   - Send's context bounds only its wait for room under the in-flight
//     bounds; once Send returns, the events will be sent. Wait's context
//     bounds the wait for the answer, not the request. The server does not
//     see either deadline.
//   - Sends waiting for room are admitted in no particular order.
//   - A request's events are held until it is answered: a caller that
//     keeps Sending without ever Waiting is held back by the bounds only.
type Producer struct {
	stream grpc.ClientStream // replaced by a reconnect, under sendMu
	cancel context.CancelFunc
	done   chan struct{} // closed when the receiver has ended
	opts   ProducerOptions
	lim    limits

	// For Reliable mode: the client and context streams are opened with,
	// the current stream's own cancel, and the maker of its keys.
	c            *Client
	ctx          context.Context
	streamCancel context.CancelFunc
	newKey       func() string

	// sendMu serializes SendMsg and CloseSend (gRPC allows one at a time).
	sendMu     sync.Mutex
	sendClosed bool

	mu      sync.Mutex
	err     error // set once the stream is over; every Send fails with it
	closing bool  // Close has begun: Sends fail with ErrProducerClosed
	// answering is set while the receiver completes Futures and yields
	// (see answer): a Send to an idle topic then leaves its request to the
	// receiver, which sends it, merged with the other Sends of the
	// goroutines it woke, once it is done.
	answering bool
	// reconnecting is set while a Reliable Producer opens a new stream:
	// requests wait in their topics.
	reconnecting bool
	nextID       uint64
	topics       map[string]*topicQueue // topics with a request queued or in flight
	ready        []*topicQueue          // topics whose next request waits for a slot, FIFO
	pending      map[uint64]*request    // sent, unanswered, by request id
	events       int                    // accepted and unanswered
	bytes        int                    // their encoded size
	room         chan struct{}          // closed when room frees up; nil if nobody waits
	stats        ProducerStats
	idle         []*topicQueue     // topicQueues to reuse, at most maxIdleTopics
	toSend       []*encodedRequest // the receiver's, reused
	finished     []finished        // the receiver's, reused
}

// limits are the server's, as stated in the stream's header.
type limits struct {
	maxEventBytes, maxBatchEvents, maxRequestBytes int
}

// topicQueue is a topic's requests: the one in flight, and those waiting
// for it, in the order their Sends were accepted. Only the last of queue
// takes more Sends.
type topicQueue struct {
	name  string
	sent  *request   // in flight, or nil
	queue []*request // not yet sent
	ready bool       // in Producer.ready
}

// request is one ProduceStream request being built or in flight: the
// events of one or more Sends, each encoded in its own pooled buffer.
type request struct {
	tq        *topicQueue
	expect    uint64
	hasExpect bool
	chunks    []chunk // the Sends' encoded events, in order; gRPC's once sent
	size      int     // their bytes
	events    int
	futures   []*Future
	flushes   []*flushWait
	// body is the encoded ProduceRequest of a Reliable Producer's request
	// in flight, kept to send it again.
	body []byte
}

var requestPool = sync.Pool{New: func() any { return new(request) }}

// flushWait is a Flush waiting for the requests it marked.
type flushWait struct {
	left atomic.Int64
	done chan struct{}
}

func (w *flushWait) release() {
	if w.left.Add(-1) == 0 {
		close(w.done)
	}
}

// finished is a request taken out of flight with its answer.
type finished struct {
	r   *request
	res ProduceResult
	err error
}

// maxIdleTopics bounds the topicQueues a Producer keeps for reuse: a lone
// caller's topic is idle between its Sends, and would otherwise cost a
// topicQueue and its queue's slice each time.
const maxIdleTopics = 64

// newTopic returns an empty topicQueue for topic and adds it to p.topics,
// with p.mu held.
func (p *Producer) newTopic(topic string) *topicQueue {
	var tq *topicQueue
	if k := len(p.idle); k > 0 {
		tq = p.idle[k-1]
		p.idle[k-1] = nil
		p.idle = p.idle[:k-1]
		tq.name = topic
	} else {
		tq = &topicQueue{name: topic}
	}
	p.topics[topic] = tq
	return tq
}

// dropTopic removes tq, which has no request, from p.topics and keeps it
// for reuse, with p.mu held.
func (p *Producer) dropTopic(tq *topicQueue) {
	delete(p.topics, tq.name)
	if len(p.idle) < maxIdleTopics {
		tq.name = ""
		p.idle = append(p.idle, tq)
	}
}

// produceStreamDesc is the ProduceStream method's stream description.
var produceStreamDesc = func() *grpc.StreamDesc {
	for i := range goethev1.Goethe_ServiceDesc.Streams {
		if d := &goethev1.Goethe_ServiceDesc.Streams[i]; d.StreamName == "ProduceStream" {
			return d
		}
	}
	panic("client: no ProduceStream stream in the service description")
}()

// NewProducer is NewProducerWith with DefaultProducerOptions.
func (c *Client) NewProducer(ctx context.Context) (*Producer, error) {
	return c.NewProducerWith(ctx, DefaultProducerOptions())
}

// NewProducerWith opens a ProduceStream on the client's connection and
// returns a Producer once the server has accepted it. The stream lives
// until Close, or until ctx ends, which breaks it (Futures unanswered
// fail). A Producer holds one HTTP/2 stream of the client's connection.
func (c *Client) NewProducerWith(ctx context.Context, opts ProducerOptions) (*Producer, error) {
	opts.fill()
	ctx, cancel := context.WithCancel(ctx)
	p := &Producer{
		cancel:  cancel,
		done:    make(chan struct{}),
		opts:    opts,
		topics:  make(map[string]*topicQueue),
		pending: make(map[uint64]*request),
		c:       c,
		ctx:     ctx,
	}
	err := p.openStream()
	if err != nil && opts.Reliable {
		err = retry(ctx, opts.Backoff, c.cc, err, reconnectable, p.openStream)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	if opts.Reliable {
		p.newKey = NewKeys()
	}
	go p.receive()
	return p, nil
}

// openStream opens a ProduceStream and, once the server has accepted it,
// makes it the Producer's; the first one's header states the limits.
func (p *Producer) openStream() error {
	ctx, cancel := context.WithCancel(p.ctx)
	sctx := metadata.AppendToOutgoingContext(ctx, goethev1.HeaderBatchedAnswers, "1")
	stream, err := p.c.cc.NewStream(sctx, produceStreamDesc, goethev1.Goethe_ProduceStream_FullMethodName, useCodec)
	var md metadata.MD
	if err == nil {
		md, err = stream.Header()
	}
	if err == nil && md == nil {
		// The stream ended before the server started it.
		err = stream.RecvMsg(&produceAnswers{})
		if err == nil || errors.Is(err, io.EOF) {
			err = status.Error(codes.Internal, "goethe: ProduceStream ended before it started")
		}
	}
	if err != nil {
		cancel()
		return wrapError(err)
	}
	lim := limits{assumedMaxEventBytes, assumedMaxBatchEvents, assumedMaxRequestBytes}
	headerInt(md, goethev1.HeaderMaxEventBytes, &lim.maxEventBytes)
	headerInt(md, goethev1.HeaderMaxBatchEvents, &lim.maxBatchEvents)
	headerInt(md, goethev1.HeaderMaxRequestBytes, &lim.maxRequestBytes)
	p.sendMu.Lock()
	first := p.stream == nil
	p.stream, p.streamCancel = stream, cancel
	p.sendMu.Unlock()
	if first {
		// Set before any Send, which reads it unlocked: a reconnected
		// Producer keeps the limits of its first stream.
		p.lim = lim
	}
	return nil
}

// headerInt sets *v to the positive decimal value of header key, if md has
// one.
func headerInt(md metadata.MD, key string, v *int) {
	if s := md.Get(key); len(s) == 1 {
		if n, err := strconv.Atoi(s[0]); err == nil && n > 0 {
			*v = n
		}
	}
}

// Send hands events over to be appended to topic in one atomic batch,
// creating the topic if needed, and returns at once with the Future of
// their outcome; see Producer for how Sends are merged into requests, and
// what is guaranteed. The events are encoded before Send returns: the
// caller may reuse them and their buffers then.
//
// Send blocks only while the in-flight bounds are full, and ctx bounds that
// wait; Send fails at once if ctx is already done. It returns an error,
// and no Future, for a Send it refuses: events that break a limit or
// cannot be encoded (see Producer), ctx ending while it waits, a Producer
// being closed (ErrProducerClosed) or broken.
func (p *Producer) Send(ctx context.Context, topic string, events []EventData, opts ...ProduceOption) (*Future, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrapError(err)
	}
	expect := expectation(opts)
	if p.opts.Reliable {
		events = p.withKeys(events)
	}
	c, size, err := p.encode(topic, events, expect)
	if err != nil {
		return nil, err
	}
	n := len(events)

	p.mu.Lock()
	if err := p.admit(ctx, size, n); err != nil {
		p.mu.Unlock()
		c.free()
		return nil, err
	}
	tq := p.topics[topic]
	if tq == nil {
		tq = p.newTopic(topic)
		p.topics[topic] = tq
	}
	var r *request
	if k := len(tq.queue); k > 0 && p.merges(tq.queue[k-1], expect, size, n) {
		r = tq.queue[k-1]
	} else {
		r = requestPool.Get().(*request)
		r.tq = tq
		if expect != nil {
			r.expect, r.hasExpect = *expect, true
		}
		tq.queue = append(tq.queue, r)
	}
	f := futurePool.Get().(*Future)
	f.off, f.n = r.events, n
	r.futures = append(r.futures, f)
	r.chunks = append(r.chunks, c)
	r.size += size
	r.events += n
	p.events += n
	p.bytes += size
	p.stats.Sends++
	p.stats.Events += uint64(n)

	var send *encodedRequest
	if tq.sent == nil && !tq.ready {
		// The topic was idle: r is its only request. It goes now if a
		// slot is free, else when one frees up.
		if !p.answering && !p.reconnecting && p.requestsInFlight() < p.opts.MaxInFlightRequests {
			send = p.start(tq)
		} else {
			tq.ready = true
			p.ready = append(p.ready, tq)
		}
	}
	p.mu.Unlock()
	if send != nil {
		p.send(send)
	}
	return f, nil
}

// Produce is Send followed by the Future's Wait, both with ctx: it appends
// events to topic in one atomic batch and waits for the outcome. If ctx
// ends while it waits for the answer, the events may still be stored.
func (p *Producer) Produce(ctx context.Context, topic string, events []EventData, opts ...ProduceOption) (ProduceResult, error) {
	f, err := p.Send(ctx, topic, events, opts...)
	if err != nil {
		return ProduceResult{}, err
	}
	return f.Wait(ctx)
}

// withKeys returns events, copied with a key made for each event that has
// none if there is one (the caller's slice is not changed).
func (p *Producer) withKeys(events []EventData) []EventData {
	var out []EventData
	for i := range events {
		if events[i].DedupeKey != "" {
			continue
		}
		if out == nil {
			out = append([]EventData(nil), events...)
		}
		out[i].DedupeKey = p.newKey()
	}
	if out == nil {
		return events
	}
	return out
}

// expectation is the expected last seq that opts set, or nil.
func expectation(opts []ProduceOption) *uint64 {
	if len(opts) == 0 {
		return nil
	}
	var r goethev1.ProduceRequest
	for _, o := range opts {
		o(&r)
	}
	return r.ExpectedLastSeq
}

// encode checks a Send against the server's limits and encodes its events
// into a chunk, with room for the head of a request of its own, and
// returns the events' encoded size.
func (p *Producer) encode(topic string, events []EventData, expect *uint64) (chunk, int, error) {
	switch {
	case len(events) == 0:
		return chunk{}, 0, invalidf("a produce needs at least one event")
	case len(events) > p.lim.maxBatchEvents:
		return chunk{}, 0, newError(codes.InvalidArgument, goethev1.ReasonLimitExceeded,
			"a produce has %d events, the limit is %d", len(events), p.lim.maxBatchEvents)
	case !utf8.ValidString(topic):
		return chunk{}, 0, newError(codes.InvalidArgument, goethev1.ReasonInvalidName, "topic %q is not valid UTF-8", topic)
	}
	size, err := eventsSize(events, p.lim.maxEventBytes)
	if err != nil {
		return chunk{}, 0, err
	}
	head := maxStreamHead + produceHeadSize(topic, expect)
	if head+size > p.lim.maxRequestBytes {
		return chunk{}, 0, newError(codes.ResourceExhausted, goethev1.ReasonLimitExceeded,
			"a request of %d bytes is larger than the server's max request size (%d bytes)", head+size, p.lim.maxRequestBytes)
	}
	c, err := encodeChunk(events, size, head)
	return c, size, err
}

// admit waits, with p.mu held (and released while waiting), until a Send
// of size bytes and n events fits the in-flight bounds, or returns why it
// cannot.
func (p *Producer) admit(ctx context.Context, size, n int) error {
	for {
		switch {
		case p.err != nil:
			return p.err
		case p.closing:
			return ErrProducerClosed
		case (p.events == 0 || p.events+n <= p.opts.MaxInFlightEvents) &&
			(p.bytes == 0 || p.bytes+size <= p.opts.MaxInFlightBytes):
			return nil
		}
		if p.room == nil {
			p.room = make(chan struct{})
		}
		room := p.room
		p.mu.Unlock()
		select {
		case <-room:
			p.mu.Lock()
		case <-ctx.Done():
			p.mu.Lock()
			return wrapError(ctx.Err())
		}
	}
}

// merges reports whether a Send of size bytes and n events with expect
// may join request r, which is not yet sent.
func (p *Producer) merges(r *request, expect *uint64, size, n int) bool {
	return expect == nil && !r.hasExpect &&
		r.events+n <= p.lim.maxBatchEvents &&
		maxStreamHead+produceHeadSize(r.tq.name, nil)+r.size+size <= p.lim.maxRequestBytes
}

func (p *Producer) requestsInFlight() int { return len(p.pending) }

// start takes tq's next request out of its queue, puts it in flight and
// encodes it, with p.mu held; the caller sends the message once it has
// released p.mu. The request itself is not touched by the sender: its
// answer, or the stream's failure, may complete it at any time.
func (p *Producer) start(tq *topicQueue) *encodedRequest {
	r := tq.queue[0]
	copy(tq.queue, tq.queue[1:])
	tq.queue[len(tq.queue)-1] = nil
	tq.queue = tq.queue[:len(tq.queue)-1]
	tq.sent = r
	p.nextID++
	p.pending[p.nextID] = r
	p.stats.Requests++
	if p.opts.Reliable {
		r.keep()
		return r.resend(p.nextID)
	}
	return r.message(p.nextID)
}

// keep encodes r's ProduceRequest into r.body, to be sent (and sent again)
// by resend, and frees its chunks.
func (r *request) keep() {
	var expect *uint64
	if r.hasExpect {
		expect = &r.expect
	}
	body := appendProduceHead(make([]byte, 0, produceHeadSize(r.tq.name, expect)+r.size), r.tq.name, expect)
	for i, c := range r.chunks {
		body = append(body, c.b[c.reserve:]...)
		c.free()
		r.chunks[i] = chunk{}
	}
	r.chunks = r.chunks[:0]
	r.body = body
}

// resend is the message of a request kept by keep, under id. gRPC only
// reads the body (a SliceBuffer, whose Free does nothing), so it stays r's.
func (r *request) resend(id uint64) *encodedRequest {
	m := newEncodedRequest(2)
	m.data = append(m.data, mem.SliceBuffer(appendStreamHead(nil, id, len(r.body))), mem.SliceBuffer(r.body))
	return m
}

// send sends messages of requests that start put in flight, in order.
func (p *Producer) send(msgs ...*encodedRequest) {
	var failed error
	p.sendMu.Lock()
	for _, m := range msgs {
		var err error
		switch {
		case p.sendClosed:
			err = io.EOF // cannot happen: Close half-closes once nothing is queued
		default:
			err = p.stream.SendMsg(m)
		}
		if m.data != nil {
			m.data.Free() // not marshalled
		}
		if err != nil && !errors.Is(err, io.EOF) && failed == nil {
			// An error of the client's making, which aborted the stream.
			// (With io.EOF the server ended it, and the receiver learns
			// why.)
			failed = err
		}
	}
	cancelStream := p.streamCancel
	p.sendMu.Unlock()
	if failed != nil {
		if p.opts.Reliable && reconnectable(wrapError(failed)) {
			cancelStream() // the receiver sees the stream end, and reconnects
			return
		}
		p.fail(wrapError(failed))
		p.cancel()
	}
}

// message encodes r, in flight under id, as a ProduceStreamRequest: a head
// (written into the room the first chunk reserved, if it did) and the
// Sends' chunks, which the message takes over.
func (r *request) message(id uint64) *encodedRequest {
	var expect *uint64
	if r.hasExpect {
		expect = &r.expect
	}
	headSize := produceHeadSize(r.tq.name, expect)
	var scratch [64]byte
	head := appendProduceHead(appendStreamHead(scratch[:0], id, headSize+r.size), r.tq.name, expect)
	m := newEncodedRequest(1 + len(r.chunks))
	data := m.data
	if len(r.chunks) == 0 { // not made by Send, which sends no empty request
		data = append(data, mem.SliceBuffer(append([]byte(nil), head...)))
	}
	for i, c := range r.chunks {
		switch {
		case i > 0:
			data = append(data, c.buffer())
		case c.reserve >= len(head):
			start := c.reserve - len(head)
			copy(c.b[start:], head)
			data = append(data, mem.SliceBuffer(c.b[start:]))
		default:
			data = append(data, mem.SliceBuffer(append([]byte(nil), head...)), c.buffer())
		}
		r.chunks[i] = chunk{}
	}
	r.chunks = r.chunks[:0]
	m.data = data
	return m
}

// receive reads answers until the stream ends, then fails what is left.
func (p *Producer) receive() {
	defer close(p.done)
	var m produceAnswers
	for {
		p.sendMu.Lock()
		stream := p.stream
		p.sendMu.Unlock()
		if err := stream.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the stream with OK: only after Close,
				// once every request was answered.
				p.fail(ErrProducerClosed)
				return
			}
			err = wrapError(err)
			if p.opts.Reliable && reconnectable(err) && p.ctx.Err() == nil && p.reconnect(err) {
				continue
			}
			p.fail(err)
			return
		}
		p.answer(m.list)
	}
}

// reconnect opens a new stream after the current one broke with err, and
// sends again, in the order they were first sent, the requests in flight,
// then those that waited. It reports false if it gave up (the caller
// fails the Producer).
func (p *Producer) reconnect(err error) bool {
	p.mu.Lock()
	p.reconnecting = true
	closed := p.closing && len(p.pending) == 0 && len(p.topics) == 0
	p.mu.Unlock()
	p.sendMu.Lock()
	p.streamCancel()
	closed = closed || p.sendClosed
	p.sendMu.Unlock()
	if closed {
		return false // Close is done with the stream
	}
	if err := retry(p.ctx, p.opts.Backoff, p.c.cc, err, reconnectable, p.openStream); err != nil {
		return false
	}
	p.mu.Lock()
	ids := make([]uint64, 0, len(p.pending))
	for id := range p.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	old := p.pending
	p.pending = make(map[uint64]*request, len(old))
	msgs := p.toSend[:0]
	for _, id := range ids {
		r := old[id]
		p.nextID++
		p.pending[p.nextID] = r
		msgs = append(msgs, r.resend(p.nextID))
	}
	p.stats.Reconnects++
	p.stats.Resent += uint64(len(ids))
	p.reconnecting = false
	msgs = p.fillSlots(msgs)
	p.mu.Unlock()
	p.send(msgs...)
	clear(msgs)
	p.toSend = msgs
	return true
}

// answer takes the answered requests out of flight, completes their
// Futures, and then sends the requests that were waiting for them.
//
// Completing first, and yielding once in between, matters for callers
// that wait for their own answers before they Send again (N goroutines
// each producing one event at a time): the goroutines woken by an answer
// Send their next events into the request of their topic that is about to
// go, instead of splitting into two groups that take turns, one in flight
// while the other waits. Measured with 16 such goroutines on one topic
// (goethectl bench --producers 16, fsync on): 17–22k events/s and 16–23
// µs of server CPU per event when the waiting request went first, 28–35k
// and 10–15 µs this way. A yield is no timer: a request never waits for
// events that are not already on their way.
func (p *Producer) answer(list []answer) {
	fin := p.finished[:0]
	p.mu.Lock()
	p.stats.Responses++
	for i := range list {
		a := &list[i]
		r := p.pending[a.id]
		if r == nil {
			continue // not ours: a server bug, nothing to complete
		}
		delete(p.pending, a.id)
		f := finished{r: r}
		switch {
		case a.status != nil:
			f.err = fromStatus(status.FromProto(a.status))
		case !a.result:
			f.err = newError(codes.Internal, goethev1.ReasonInternal, "produce stream: answer %d has no outcome", a.id)
		case a.res.Count+len(a.res.Duplicates) != r.events:
			f.err = newError(codes.Internal, goethev1.ReasonInternal,
				"produce stream: answer %d counts %d events and %d duplicates, its request had %d events",
				a.id, a.res.Count, len(a.res.Duplicates), r.events)
		default:
			f.res = a.res
		}
		fin = append(fin, f)
		p.events -= r.events
		p.bytes -= r.size
		tq := r.tq
		tq.sent = nil
		if len(tq.queue) > 0 {
			tq.ready = true
			p.ready = append(p.ready, tq)
		} else {
			p.dropTopic(tq)
		}
	}
	p.answering = true
	p.wakeLocked()
	p.mu.Unlock()

	for i := range fin {
		fin[i].r.finish(fin[i].res, fin[i].err)
	}
	clear(fin)
	p.finished = fin
	// The goroutines just woken may Send again at once: let them, so that
	// their events join the requests about to go rather than the ones
	// after (see answering).
	runtime.Gosched()

	p.mu.Lock()
	p.answering = false
	msgs := p.fillSlots(p.toSend[:0])
	p.mu.Unlock()
	if len(msgs) > 0 {
		p.send(msgs...)
	}
	clear(msgs)
	p.toSend = msgs
}

// fillSlots starts the requests of ready topics while request slots are
// free, with p.mu held, and appends their messages to msgs.
func (p *Producer) fillSlots(msgs []*encodedRequest) []*encodedRequest {
	for len(p.ready) > 0 && p.requestsInFlight() < p.opts.MaxInFlightRequests {
		tq := p.ready[0]
		copy(p.ready, p.ready[1:])
		p.ready[len(p.ready)-1] = nil
		p.ready = p.ready[:len(p.ready)-1]
		tq.ready = false
		msgs = append(msgs, p.start(tq))
	}
	return msgs
}

// wakeLocked wakes the Sends waiting for room, with p.mu held.
func (p *Producer) wakeLocked() {
	if p.room != nil {
		close(p.room)
		p.room = nil
	}
}

// finish completes r's Futures with its outcome, each with its own slice
// of the result, releases the Flushes waiting for it, and recycles r.
func (r *request) finish(res ProduceResult, err error) {
	for i, f := range r.futures {
		r.futures[i] = nil
		if err != nil {
			f.complete(ProduceResult{}, err)
			continue
		}
		f.complete(res.slice(f.off, f.n), nil)
	}
	for i, w := range r.flushes {
		r.flushes[i] = nil
		w.release()
	}
	for i, c := range r.chunks { // never sent
		c.free()
		r.chunks[i] = chunk{}
	}
	*r = request{chunks: r.chunks[:0], futures: r.futures[:0], flushes: r.flushes[:0]}
	requestPool.Put(r)
}

// slice is the result of the n events from off of a request whose result
// is res: a Send's share of a merged request.
func (res ProduceResult) slice(off, n int) ProduceResult {
	out := ProduceResult{RaftIndex: res.RaftIndex}
	if len(res.Duplicates) == 0 {
		out.FirstID, out.FirstSeq, out.Count = res.FirstID+uint64(off), res.FirstSeq+uint64(off), n
		return out
	}
	d, stored := 0, uint64(0)
	for i := 0; i < off+n; i++ {
		if d < len(res.Duplicates) && res.Duplicates[d].Index == i {
			if i >= off {
				dup := res.Duplicates[d]
				dup.Index -= off
				out.Duplicates = append(out.Duplicates, dup)
			}
			d++
			continue
		}
		if i >= off {
			if out.Count == 0 {
				out.FirstID, out.FirstSeq = res.FirstID+stored, res.FirstSeq+stored
			}
			out.Count++
		}
		stored++
	}
	return out
}

// fail ends the Producer with err (the first error wins): every request
// queued or in flight, and every later Send, fails with it.
func (p *Producer) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		if !errors.Is(err, ErrProducerClosed) {
			err = fmt.Errorf("goethe: produce stream ended: %w", err)
		}
		p.err = err
	}
	err = p.err
	var rs []*request
	for id, r := range p.pending {
		rs = append(rs, r)
		delete(p.pending, id)
	}
	for name, tq := range p.topics {
		rs = append(rs, tq.queue...)
		delete(p.topics, name)
	}
	p.ready = nil
	p.events, p.bytes = 0, 0
	p.wakeLocked()
	p.mu.Unlock()
	for _, r := range rs {
		r.finish(ProduceResult{}, err)
	}
}

// Flush waits until every Send accepted before it has its outcome
// (whatever it is: each Future holds its own), sending what waits as fast
// as the in-flight bounds allow; it does not wait for Sends made
// meanwhile, other than those merged into the same requests. It returns
// nil then, the Producer's error if its stream has broken (every outcome
// is known then too), or ctx's error if ctx ends first.
func (p *Producer) Flush(ctx context.Context) error {
	w := &flushWait{done: make(chan struct{})}
	p.mu.Lock()
	for _, tq := range p.topics {
		last := tq.sent
		if k := len(tq.queue); k > 0 {
			last = tq.queue[k-1]
		}
		if last != nil {
			// A topic's requests are answered in order: its last one
			// is answered after all of them.
			last.flushes = append(last.flushes, w)
			w.left.Add(1)
		}
	}
	marked := w.left.Load() > 0
	p.mu.Unlock()
	if marked {
		select {
		case <-w.done:
		case <-ctx.Done():
			return wrapError(ctx.Err())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if errors.Is(p.err, ErrProducerClosed) {
		return nil
	}
	return p.err
}

// Close closes the Producer: later Sends fail with ErrProducerClosed,
// every Send accepted before is sent and answered (as Flush), and then the
// stream ends. Close waits for that; to cut it short, end the context
// given to NewProducer, which fails the Futures still unanswered. Close
// returns nil, or the error that broke the stream. It is idempotent.
func (p *Producer) Close() error {
	p.mu.Lock()
	p.closing = true
	p.wakeLocked() // Sends waiting for room fail
	p.mu.Unlock()
	_ = p.Flush(context.Background())
	p.sendMu.Lock()
	if !p.sendClosed {
		p.sendClosed = true
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

// Stats returns the Producer's counters; safe to call at any time.
func (p *Producer) Stats() ProducerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}
