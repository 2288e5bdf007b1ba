// Package client is the Go client of a Goethe server (the goethe.v1.Goethe
// gRPC service).
//
// # Basics
//
// Dial a server, Produce batches of events to a topic, and Consume a topic
// as a range-over-func iterator:
//
//	c, err := client.Dial("127.0.0.1:7420")
//	...
//	defer c.Close()
//	res, err := c.Produce(ctx, "orders", []client.EventData{{Payload: []byte("created")}})
//	for ev, err := range c.Consume(ctx, "orders", client.ConsumeOptions{Follow: true}) {
//		...
//	}
//
// # Concurrent and asynchronous produces: Producer
//
// Client.Produce is one unary gRPC call per batch: simple, bounded by its
// context end to end (the server sees its deadline), and it survives a
// server restart, since gRPC reconnects under it. Its cost per call is
// what limits many small produces, though: each call opens an HTTP/2
// stream with its headers, and carries one caller's events.
//
// A Producer (Client.NewProducer) is the documented way for concurrent
// callers of one process to produce, and for one caller to produce without
// waiting, in the manner of Kafka's producer and the NATS client's
// PublishAsync. Share one Producer between all goroutines: Producer.Send
// returns at once with a Future, and while a request of a topic is in
// flight, the events that goroutines send to it meanwhile are merged into
// the next request, so that a busy process sends few, large requests and
// the server commits them together; Producer.Produce is Send and Wait, for
// a goroutine that waits for its own event's answer. The Sends to one topic
// through one Producer are stored in the order Send accepted them, so one
// goroutine's events in the order it sent them. A Producer does not
// reconnect: a broken stream fails its Futures; open a new one.
//
//	p, err := c.NewProducer(ctx)
//	...
//	defer p.Close() // flushes
//	f, err := p.Send(ctx, "orders", []client.EventData{{Payload: b}})
//	...
//	res, err := f.Wait(ctx)
//
// # TLS and tokens
//
// A server started with --tls-cert speaks TLS; with --tls-client-ca it also
// wants a client certificate; with --auth-file every call needs a bearer
// token with the permission (read, write or admin) the call needs on its
// topic:
//
//	c, err := client.Dial("logs.example.com:7420",
//		client.WithTLSFiles("ca.pem", "client.pem", "client-key.pem"), // or WithTLS(cfg)
//		client.WithToken(os.Getenv("GOETHE_TOKEN")))
//
// A token is sent over TLS, or in plaintext to a loopback address only
// (see WithToken). A call without a valid token fails with
// ErrUnauthenticated, one whose token lacks the permission with
// ErrPermissionDenied; Topics lists only the topics the token may read.
//
// # Guarantees
//
//   - A Produce is atomic: all of its events are stored or none. When it
//     returns nil, the events are committed with consecutive ids and seqs
//     (see ProduceResult) and, unless the server runs with --sync=false, on
//     disk. When it returns an error other than ErrInvalidArgument or
//     ErrConflict, or the context ends first, the batch may or may not be
//     stored.
//   - A Consume delivers the events of a topic in order, each once, from its
//     start; a start that is not an event (an id or a time) lands on the
//     nearest event at or after it.
//   - Errors match the sentinels of this package with errors.Is, carry the
//     server's gRPC status (status.FromError), and say what is wrong. An
//     *Error's Reason (IsReason) names the condition with a goethev1.Reason*
//     constant when the server gave one: branch on the code and the reason,
//     never on the message.
//   - A Client and a Producer are safe for concurrent use; a Subscription
//     is not.
//
// # Clusters
//
// Any member of a cluster takes any call: a follower forwards writes to the
// leader. A member that cannot (it knows no leader, or cannot reach the
// leader's service) refuses a write with ErrUnavailable, reason NOT_LEADER,
// nothing stored; with the leader's client address in the error's metadata
// "leader_address" when it knows it. Produce (unary) then retries once
// against that address, on a connection dialled with the Client's options;
// a Client made by New does not. No call is retried on OUTCOME_UNKNOWN (the
// leader was lost before the write was known committed: it may be stored,
// and a retry could store it twice), nor on any other error: read the
// topic to find out, or use ExpectLastSeq to make a retry safe.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"iter"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"

	"github.com/goethe-log/goethe/internal/wire"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// DefaultAddr is the address a goethe server listens on by default.
const DefaultAddr = "127.0.0.1:7420"

// Client is a connection to one Goethe server. It is safe for concurrent
// use by many goroutines, which share one HTTP/2 connection.
type Client struct {
	conn   *grpc.ClientConn // nil when the caller owns the connection
	cc     grpc.ClientConnInterface
	api    goethev1.GoetheClient
	leader *leaderRedirect // nil for New: no redirects (leader.go)
}

// Option configures Dial.
type Option func(*dialConfig)

type dialConfig struct {
	grpcOpts []grpc.DialOption
	tls      *tls.Config // WithTLS; nil: plaintext
	token    string      // WithToken
	err      error       // an option that failed (WithTLSFiles)
}

// WithDialOptions adds gRPC dial options, applied after the client's own
// (plaintext transport, unbounded receive size, 4 MiB HTTP/2 windows), so
// they can override them, e.g. with TLS credentials.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *dialConfig) { c.grpcOpts = append(c.grpcOpts, opts...) }
}

// Transport tuning, matching the server's: a fixed 4 MiB HTTP/2 window so
// that a fast reader is not stalled by flow control on a fast link.
const (
	windowSize   = 4 << 20
	ioBufferSize = 256 << 10
)

// Dial returns a Client of the server at addr (host:port). It does not wait
// for the connection: the first call connects, and fails with
// ErrUnavailable if the server cannot be reached. The connection is
// plaintext unless WithTLS (or WithDialOptions) says otherwise. The client accepts
// response messages of any size, since the server bounds its own (one page
// of events).
func Dial(addr string, opts ...Option) (*Client, error) {
	var cfg dialConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.err != nil {
		return nil, fmt.Errorf("goethe: dial %s: %w", addr, cfg.err)
	}
	transport := insecure.NewCredentials()
	if cfg.tls != nil {
		transport = credentials.NewTLS(cfg.tls)
	}
	baseOpts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32),
			grpc.ForceCodecV2(wire.Codec{})),
		grpc.WithInitialWindowSize(windowSize),
		grpc.WithInitialConnWindowSize(windowSize),
		grpc.WithWriteBufferSize(ioBufferSize),
		grpc.WithReadBufferSize(ioBufferSize),
	}, cfg.grpcOpts...)
	dial := func(addr string) (*grpc.ClientConn, error) {
		opts := baseOpts
		if cfg.token != "" {
			opts = append(opts[:len(opts):len(opts)], tokenOption(addr, cfg.token))
		}
		return grpc.NewClient(addr, opts...)
	}
	conn, err := dial(addr)
	if err != nil {
		return nil, fmt.Errorf("goethe: dial %s: %w", addr, err)
	}
	return &Client{conn: conn, cc: conn, api: goethev1.NewGoetheClient(conn), leader: &leaderRedirect{dial: dial}}, nil
}

// New returns a Client over a connection the caller made and owns: Close
// does not close it. The connection should accept large enough response
// messages (grpc.MaxCallRecvMsgSize) for the server's pages. Produce and
// the Producer's requests are encoded by the client itself: an interceptor
// on conn sees them as an opaque type, not as goethev1 messages.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{cc: conn, api: goethev1.NewGoetheClient(conn)}
}

// Close closes the connection made by Dial, and those to cluster leaders
// that Produce followed; calls in flight fail. It is a no-op for a Client
// made by New.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return errors.Join(c.conn.Close(), c.leader.close())
}

// EventData is an event to produce. The server assigns its id and seq.
type EventData struct {
	Payload []byte
	Headers map[string]string
	// DedupeKey, when not empty, makes the event idempotent: if the
	// topic stored an event with the same key within its dedupe window
	// (the server's --dedupe-window, 2 minutes by default), it is not
	// stored again and the ProduceResult lists it in Duplicates with the
	// original's id and seq. At most MaxDedupeKeyLen bytes of UTF-8,
	// counted in the event's size limit. A reliable Producer fills it in
	// for events that have none (see ProducerOptions.Reliable).
	DedupeKey string
}

// MaxDedupeKeyLen bounds EventData.DedupeKey, in bytes (the server's
// limit).
const MaxDedupeKeyLen = 255

// Event is an event as stored. Its Payload and Headers belong to the
// caller; events received in one Consume batch share one buffer for their
// payloads (see Subscription.Next), so keeping one payload keeps its batch.
type Event struct {
	Topic string `json:"topic"`
	// ID is unique in the topic and strictly increasing: the nanoseconds
	// since the Unix epoch at which the server committed the event.
	ID uint64 `json:"id"`
	// Seq is the event's dense 1-based position in its topic.
	Seq uint64 `json:"seq"`
	// Time is ID read as nanoseconds since the Unix epoch.
	Time    time.Time         `json:"time"`
	Headers map[string]string `json:"headers,omitempty"`
	Payload []byte            `json:"payload"`
	// Skipped counts the events just before this one that the stream did
	// not deliver because retention or a trim removed them before it read
	// them (see Subscription.Skipped for where the count is exact).
	Skipped uint64 `json:"skipped,omitempty"`
	// DedupeKey is the key the event was produced with, if any.
	DedupeKey string `json:"dedupe_key,omitempty"`
}

// ProduceResult says where a Produce's events landed. Without
// Duplicates, the i-th event (from 0) has id FirstID+i and seq FirstSeq+i.
// With them, the Count events stored (those not in Duplicates, in order)
// have ids FirstID, FirstID+1, … and Position gives any event's id and
// seq; when every event was a duplicate, FirstID, FirstSeq and Count are 0.
type ProduceResult struct {
	FirstID  uint64
	FirstSeq uint64
	Count    int
	// RaftIndex, from a cluster, is the index of the Raft log entry that
	// stored the events: pass it as ConsumeOptions.MinRaftIndex or
	// MinRaftIndex to read them on any member. 0 from a single node.
	RaftIndex uint64
	// Duplicates lists, in request order, the events not stored because
	// their DedupeKey was stored within the topic's window.
	Duplicates []Duplicate
}

// Duplicate is an event of a Produce that was not stored again: Index is
// its position in the Produce (from 0), ID and Seq the original event's.
type Duplicate struct {
	Index   int
	ID, Seq uint64
}

// ID is the id of the i-th event of a Produce without duplicates (see
// Position).
func (r ProduceResult) ID(i int) uint64 { return r.FirstID + uint64(i) }

// Seq is the seq of the i-th event of a Produce without duplicates (see
// Position).
func (r ProduceResult) Seq(i int) uint64 { return r.FirstSeq + uint64(i) }

// Position is the id and seq of the i-th event of the Produce (from 0):
// where it was stored, or, for a duplicate, where the original is.
func (r ProduceResult) Position(i int) (id, seq uint64) {
	before := 0
	for _, d := range r.Duplicates {
		if d.Index == i {
			return d.ID, d.Seq
		}
		if d.Index < i {
			before++
		}
	}
	k := uint64(i - before)
	return r.FirstID + k, r.FirstSeq + k
}

// LastSeq is the seq of the Produce's last stored event: what the next
// conditional Produce of the same writer expects (0 when it stored none).
func (r ProduceResult) LastSeq() uint64 {
	if r.Count == 0 {
		return 0
	}
	return r.FirstSeq + uint64(r.Count) - 1
}

// ProduceOption modifies a Produce.
type ProduceOption func(*goethev1.ProduceRequest)

// ExpectLastSeq makes a Produce conditional: it stores the batch only if the
// topic's last seq is n when it commits (0: the topic is empty or absent);
// otherwise it fails with a *ConflictError holding the actual last seq.
func ExpectLastSeq(n uint64) ProduceOption {
	return func(r *goethev1.ProduceRequest) { r.ExpectedLastSeq = &n }
}

// Produce appends events to topic in one atomic batch, creating the topic
// if needed. See the package guarantees; against a cluster member that
// refuses it with NOT_LEADER and names the leader, it is retried once
// against the leader (see Clusters). The events' slices are read, not
// retained, once Produce returns. The request is encoded straight from
// events into one pooled buffer, and the answer decoded without a
// goethev1 message in between.
func (c *Client) Produce(ctx context.Context, topic string, events []EventData, opts ...ProduceOption) (ProduceResult, error) {
	req, err := encodeProduce(topic, events, expectation(opts))
	if err != nil {
		return ProduceResult{}, err
	}
	var res ProduceResult
	err = c.cc.Invoke(ctx, goethev1.Goethe_Produce_FullMethodName, req, &res, useCodec)
	if req.data != nil {
		req.data.Free() // not marshalled
	}
	if err != nil {
		err = wrapError(err)
		if hint := leaderHint(err); hint != "" && c.leader != nil {
			return c.produceAt(ctx, hint, topic, events, opts, err)
		}
		return ProduceResult{}, err
	}
	return res, nil
}

// produceAt retries a Produce refused with NOT_LEADER once, against the
// leader at addr (see leader.go); refused is the first answer, returned if
// the leader cannot be dialled.
func (c *Client) produceAt(ctx context.Context, addr, topic string, events []EventData, opts []ProduceOption, refused error) (ProduceResult, error) {
	conn, err := c.leader.conn(addr)
	if err != nil {
		return ProduceResult{}, refused
	}
	req, err := encodeProduce(topic, events, expectation(opts))
	if err != nil {
		return ProduceResult{}, err
	}
	var res ProduceResult
	err = conn.Invoke(ctx, goethev1.Goethe_Produce_FullMethodName, req, &res, useCodec)
	if req.data != nil {
		req.data.Free()
	}
	if err != nil {
		return ProduceResult{}, wrapError(err)
	}
	return res, nil
}

// encodeProduce encodes a ProduceRequest into one buffer (of wire.Pool if
// it is large). It refuses what the protobuf encoding refuses, strings
// that are not valid UTF-8, with INVALID_ARGUMENT.
func encodeProduce(topic string, events []EventData, expect *uint64) (*encodedRequest, error) {
	if !utf8.ValidString(topic) {
		return nil, newError(codes.InvalidArgument, goethev1.ReasonInvalidName, "topic %q is not valid UTF-8", topic)
	}
	size, err := eventsSize(events, 0)
	if err != nil {
		return nil, err
	}
	headSize := produceHeadSize(topic, expect)
	c, err := encodeChunk(events, size, headSize)
	if err != nil {
		return nil, err
	}
	if c.pooled == nil {
		appendProduceHead(c.b[:0], topic, expect) // into the room reserved
		r := newEncodedRequest(1)
		r.data = append(r.data, mem.SliceBuffer(c.b))
		return r, nil
	}
	head := appendProduceHead(make([]byte, 0, headSize), topic, expect)
	r := newEncodedRequest(2)
	r.data = append(r.data, mem.SliceBuffer(head), c.buffer())
	return r, nil
}

// Cursor is a consumer's stored position in a topic, with the topic's end
// at the time it was read.
type Cursor struct {
	// ID is the last event the consumer processed.
	ID uint64
	// Updated is when the cursor was last committed.
	Updated time.Time
	// LastID and LastSeq are the topic's last event's (0 if none).
	LastID, LastSeq uint64
	// Lag is the number of events in the topic after the cursor.
	Lag uint64
}

// CommitCursor stores that consumer has processed topic up to and including
// event id. It is durable like a Produce. The topic must exist
// (ErrNotFound otherwise); id need not be an event's.
func (c *Client) CommitCursor(ctx context.Context, topic, consumer string, id uint64) error {
	_, err := c.api.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: topic, Consumer: consumer, Id: id})
	return wrapError(err)
}

// GetCursor returns consumer's cursor in topic, or ErrNotFound when the
// topic or the cursor does not exist.
func (c *Client) GetCursor(ctx context.Context, topic, consumer string) (Cursor, error) {
	res, err := c.api.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: topic, Consumer: consumer})
	if err != nil {
		return Cursor{}, wrapError(err)
	}
	return Cursor{ID: res.Id, Updated: res.Updated.AsTime(), LastID: res.LastId, LastSeq: res.LastSeq, Lag: res.Lag}, nil
}

// TopicInfo describes a topic as of its last commit. FirstID and FirstSeq
// name the first event still stored (retention and trims move them up),
// LastID and LastSeq the last one ever stored; all four are 0 while the
// topic has never held an event. A topic emptied by retention or a trim
// keeps LastID and LastSeq, with FirstID 0 and FirstSeq LastSeq+1.
type TopicInfo struct {
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	FirstID  uint64    `json:"first_id"`
	FirstSeq uint64    `json:"first_seq"`
	LastID   uint64    `json:"last_id"`
	LastSeq  uint64    `json:"last_seq"`
	Count    uint64    `json:"count"`
	// Bytes is the stored size of the topic's events: keys, payloads,
	// headers and framing, before the engine's compression.
	Bytes uint64 `json:"bytes"`
	// Config is what SetTopicConfig set on the topic (nil fields: the
	// server's defaults apply); Effective is what applies, every field
	// present, 0 meaning no limit.
	Config    TopicConfig `json:"config"`
	Effective TopicConfig `json:"effective_config"`
}

func topicInfo(t *goethev1.Topic) TopicInfo {
	return TopicInfo{Name: t.GetName(), Created: t.GetCreated().AsTime(), FirstID: t.GetFirstId(),
		FirstSeq: t.GetFirstSeq(), LastID: t.GetLastId(), LastSeq: t.GetLastSeq(), Count: t.GetCount(),
		Bytes: t.GetBytes(), Config: topicConfig(t.GetConfig()), Effective: topicConfig(t.GetEffectiveConfig())}
}

// TopicOption modifies a Topic call.
type TopicOption func(*goethev1.GetTopicRequest)

// MinRaftIndex makes a cluster member answer Topic only once it has
// applied its Raft log up to index (a ProduceResult.RaftIndex): it then
// counts that Produce's events. The wait ends with ctx. A single node
// ignores it.
func MinRaftIndex(index uint64) TopicOption {
	return func(r *goethev1.GetTopicRequest) { r.MinRaftIndex = index }
}

// Linearizable makes a cluster member answer Topic only once its state
// reflects every Produce acknowledged, on any member, before the call: it
// confirms the leader with a quorum (a follower asks the leader, one hop)
// and waits to apply what the leader had committed. It costs a round trip
// to the leader and its quorum. A member that cannot reach the leader
// fails with ErrUnavailable (reason NOT_LEADER or LEADER_BUSY); nothing
// was changed, so the call may be retried anywhere. A single node ignores
// it (its answers are linearizable anyway).
func Linearizable() TopicOption {
	return func(r *goethev1.GetTopicRequest) { r.Linearizable = true }
}

// Topic describes one topic, or returns ErrNotFound.
func (c *Client) Topic(ctx context.Context, name string, opts ...TopicOption) (TopicInfo, error) {
	req := &goethev1.GetTopicRequest{Topic: name}
	for _, o := range opts {
		o(req)
	}
	res, err := c.api.GetTopic(ctx, req)
	if err != nil {
		return TopicInfo{}, wrapError(err)
	}
	return topicInfo(res.GetTopic()), nil
}

// Topics iterates over every topic in byte order of their names, fetching
// pages of up to pageSize topics (0: the server's default) as it goes. A
// failed page yields its error once and ends the iteration. Topics created
// while iterating may or may not appear.
func (c *Client) Topics(ctx context.Context, pageSize int) iter.Seq2[TopicInfo, error] {
	return func(yield func(TopicInfo, error) bool) {
		token := ""
		for {
			res, err := c.api.ListTopics(ctx, &goethev1.ListTopicsRequest{PageSize: uint32(max(0, pageSize)), PageToken: token})
			if err != nil {
				yield(TopicInfo{}, wrapError(err))
				return
			}
			for _, t := range res.Topics {
				if !yield(topicInfo(t), nil) {
					return
				}
			}
			if token = res.NextPageToken; token == "" {
				return
			}
		}
	}
}

// Ping reports whether the server answers a call, without side effects:
// nil, or the error the call failed with (ErrUnavailable if unreachable).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.api.ListTopics(ctx, &goethev1.ListTopicsRequest{PageSize: 1})
	if err != nil {
		return wrapError(err)
	}
	return nil
}
