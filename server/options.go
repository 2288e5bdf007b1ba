package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Default limits, filled in by DefaultOptions. Each is the default of the
// Options field of the same name.
const (
	// DefaultMaxEventBytes bounds one event: its payload plus the bytes of
	// its header keys and values.
	DefaultMaxEventBytes = 1 << 20
	// DefaultMaxBatchEvents bounds the events of one Produce.
	DefaultMaxBatchEvents = 10_000
	// DefaultMaxRequestBytes bounds one request message as encoded on the
	// wire, a Produce of many events included.
	DefaultMaxRequestBytes = 64 << 20
	// DefaultConsumePageEvents bounds the events of one Consume response
	// message. The store's own page bounds (store.Options.PageEvents and
	// PageBytes) apply as well.
	DefaultConsumePageEvents = 1000
	// DefaultListPageSize is the ListTopics page size when the request
	// names none; MaxListPageSize caps the size a request may ask for.
	DefaultListPageSize = 100
	MaxListPageSize     = 1000
)

// Defaults of the resource limits: memory admission, streams, connections,
// keepalive, slow consumers and stop. Each is the default of the Options
// field of the same name.
const (
	// DefaultMaxInflightBytes bounds the encoded bytes of the Produce and
	// ProduceStream requests the server has taken and not yet completed.
	DefaultMaxInflightBytes = 256 << 20
	// DefaultMaxConcurrentStreams bounds the calls open at once on one
	// connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
	DefaultMaxConcurrentStreams = 256
	// DefaultMaxConnections bounds the connections served at once; more
	// wait in the listen backlog until one closes.
	DefaultMaxConnections = 1024
	// DefaultKeepaliveMinTime is the shortest interval between a client's
	// keepalive pings that the server tolerates; a client pinging more
	// often is disconnected (GOAWAY "too_many_pings").
	DefaultKeepaliveMinTime = 10 * time.Second
	// DefaultKeepaliveTime is how long a connection may be silent before
	// the server pings it, and DefaultKeepaliveTimeout how long it waits
	// for the ping's answer before closing it: dead peers are found within
	// their sum.
	DefaultKeepaliveTime    = time.Minute
	DefaultKeepaliveTimeout = 20 * time.Second
	// DefaultMaxConnectionIdle closes a connection that has had no call
	// open for this long (a following Consume is an open call).
	DefaultMaxConnectionIdle = 15 * time.Minute
	// DefaultHandshakeTimeout bounds a new connection's handshake (TLS and
	// the HTTP/2 preface).
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultSlowConsumerTimeout ends a Consume stream whose client has not
	// read for this long.
	DefaultSlowConsumerTimeout = 30 * time.Second
	// DefaultStopGrace is how long Stop waits for the clients of ended
	// streams to read their last messages before it closes their
	// connections.
	DefaultStopGrace = 5 * time.Second
)

// RequestOverheadBytes is what a request message may need beyond its
// events' bytes: the topic name, field tags and lengths. MaxRequestBytes is
// kept at least at MinRequestBytes(MaxEventBytes).
const RequestOverheadBytes = 64 << 10

// headerFramingFactor bounds an event's encoded size as a multiple of its
// counted bytes (payload plus header keys and values). Each header costs at
// most 7 bytes of framing when small, and header keys are unique, so an
// event of n counted bytes encodes to less than 3.3n bytes however its
// bytes are split into headers.
const headerFramingFactor = 4

// MinRequestBytes is the smallest MaxRequestBytes that still admits a
// Produce of one event of maxEventBytes, whatever its split between payload
// and headers: 4 × maxEventBytes + RequestOverheadBytes.
func MinRequestBytes(maxEventBytes int) int {
	return headerFramingFactor*maxEventBytes + RequestOverheadBytes
}

// Options configures a Server. Start from DefaultOptions; New fills in zero
// fields with their defaults.
type Options struct {
	// MaxEventBytes bounds one event of a Produce: the length of its
	// payload plus the lengths of its header keys and values. A larger event
	// fails the whole Produce with INVALID_ARGUMENT.
	MaxEventBytes int
	// MaxBatchEvents bounds the events of one Produce; more fail it with
	// INVALID_ARGUMENT.
	MaxBatchEvents int
	// MaxRequestBytes is the gRPC max receive message size: a request
	// message larger than this, as encoded, fails with RESOURCE_EXHAUSTED
	// before the server decodes it. New raises it to
	// MinRequestBytes(MaxEventBytes) if it is lower, so that any single
	// valid event can be produced.
	MaxRequestBytes int
	// ConsumePageEvents bounds the events of one Consume response message.
	ConsumePageEvents int
	// Logger receives the server's own log lines (internal errors, stop).
	// Nil discards them.
	Logger *slog.Logger
	// Metrics, if not nil, are kept by the server: its gRPC calls, its
	// Consume streams and its store's counters (see Metrics). Nil turns
	// metrics off, at no cost to the calls.
	Metrics *Metrics
	// TLS, if not nil, makes the server speak only TLS with this
	// configuration (see internal/tlsconf: TLS 1.2 at least; ClientAuth
	// tls.RequireAndVerifyClientCert for mutual TLS). Nil: plaintext.
	TLS *tls.Config
	// Auth, if not nil, makes every call of the Goethe service carry a
	// bearer token it knows, with the permission the call needs on its
	// topic (see Auth); health checks and reflection stay open. Nil: no
	// authentication, every caller may do everything.
	Auth *Auth

	// MaxInflightBytes is the server-wide budget of produce requests in
	// flight: the encoded bytes of every Produce and ProduceStream request
	// decoded and not yet completed by the log. A request that does not fit
	// is refused before it is decoded, with RESOURCE_EXHAUSTED (reason
	// MEMORY_BUDGET); the client retries later. While it is exhausted
	// (less than DoorFreeBytes free, or a request refused since the last
	// release), new Produce and ProduceStream calls are refused before any
	// of their bytes is read (see the door in admission.go, which states
	// what can still be read beyond it). It must be at least
	// MaxRequestBytes (as raised by New), so that any valid request can be
	// taken by an idle server; when zero, it is the default or
	// MaxRequestBytes, whichever is larger. The memory a taken request holds is a small
	// multiple of its encoded size (its decoded events and the engine's
	// batch; see README "Running it safely").
	MaxInflightBytes int64
	// MaxConcurrentStreams bounds the calls open at once on one connection.
	MaxConcurrentStreams uint32
	// MaxConnections bounds the connections served at once; Serve accepts
	// no more until one closes.
	MaxConnections int
	// KeepaliveMinTime is the shortest keepalive ping interval a client
	// may use; KeepaliveTime and KeepaliveTimeout are the server's own
	// pings of a silent connection (see DefaultKeepaliveTime).
	KeepaliveMinTime time.Duration
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// MaxConnectionIdle closes a connection with no call open for this
	// long.
	MaxConnectionIdle time.Duration
	// HandshakeTimeout bounds a new connection's handshake.
	HandshakeTimeout time.Duration
	// SlowConsumerTimeout ends a Consume stream with RESOURCE_EXHAUSTED
	// (reason SLOW_CONSUMER) when one of its messages has waited this long
	// for the client to make room (HTTP/2 flow control). Until then such a
	// stream holds one page of events (ConsumePageEvents, and the store's
	// PageBytes, 4 MiB by default) and its encoding in the server, the
	// HTTP/2 window (4 MiB) being what is on its way to the client; after,
	// only the unsent part of its last message, until the client reads or
	// its connection closes. The client sees the status after the events
	// already sent.
	SlowConsumerTimeout time.Duration
	// StopGrace is how long Stop lets the clients of streams it ended read
	// their last messages: past it, once no call is running, it closes
	// their connections, and the stop still counts as graceful.
	StopGrace time.Duration

	// FanoutSenders bounds the Consume streams of the whole server that
	// send a tail delivery (a page that reaches the topic's end, the
	// events a commit just made) at once; the other followers woken by
	// the commit wait for a turn, blocked, in the order they asked, and
	// send the events committed meanwhile in the same message. Zero takes
	// DefaultFanoutSenders() (GOMAXPROCS-1, at least 1: a processor stays
	// free for the network and the write path); it must not be negative.
	// A value at least the number of followers turns the bound off. A
	// follower waiting for its turn is ended as one waiting in a Send is:
	// by its context, by Stop, and by SlowConsumerTimeout. See
	// fanout_gate.go. With fan-out rounds (FanoutSolo false, the default)
	// it bounds only the followers outside rounds: those with an until or
	// a limit.
	FanoutSenders int
	// FanoutSendLease bounds how long one tail Send holds its turn: a
	// stream whose Send has not returned within it (its client does not
	// read) loses the turn to the next follower, so that a stalled client
	// cannot hold back the others. Zero takes DefaultFanoutSendLease; it
	// must not be negative.
	FanoutSendLease time.Duration
	// FanoutSolo turns fan-out rounds off (consume_rounds.go): every
	// follower at the end of a topic is woken by a commit and sends the
	// new events itself, through the gate above. By default (false) a
	// topic's followers at its end are sent them by one of them, in a
	// round, and a commit wakes that one only, whatever the number of
	// followers.
	FanoutSolo bool
	// FanoutLinger is how long a round for at least 64 followers waits
	// after the commit that woke it: such a round takes milliseconds of
	// processor time, and started at once it would hold up the commit's
	// own acknowledgements (results/bench/fanout/rounds). It adds as much
	// to those followers' delivery latency; the events committed
	// meanwhile go in the same round. Zero takes DefaultFanoutLinger; a
	// negative value turns the wait off; above MaxFanoutLinger New fails.
	FanoutLinger time.Duration
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		MaxEventBytes:     DefaultMaxEventBytes,
		MaxBatchEvents:    DefaultMaxBatchEvents,
		MaxRequestBytes:   DefaultMaxRequestBytes,
		ConsumePageEvents: DefaultConsumePageEvents,

		MaxInflightBytes:     DefaultMaxInflightBytes,
		MaxConcurrentStreams: DefaultMaxConcurrentStreams,
		MaxConnections:       DefaultMaxConnections,
		KeepaliveMinTime:     DefaultKeepaliveMinTime,
		KeepaliveTime:        DefaultKeepaliveTime,
		KeepaliveTimeout:     DefaultKeepaliveTimeout,
		MaxConnectionIdle:    DefaultMaxConnectionIdle,
		HandshakeTimeout:     DefaultHandshakeTimeout,
		SlowConsumerTimeout:  DefaultSlowConsumerTimeout,
		StopGrace:            DefaultStopGrace,
		FanoutSenders:        DefaultFanoutSenders(),
		FanoutSendLease:      DefaultFanoutSendLease,
		FanoutLinger:         DefaultFanoutLinger,
	}
}

// fill sets zero fields to their defaults and keeps the limits consistent.
func (o *Options) fill() error {
	d := DefaultOptions()
	if o.MaxEventBytes == 0 {
		o.MaxEventBytes = d.MaxEventBytes
	}
	if o.MaxBatchEvents == 0 {
		o.MaxBatchEvents = d.MaxBatchEvents
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = d.MaxRequestBytes
	}
	if o.ConsumePageEvents == 0 {
		o.ConsumePageEvents = d.ConsumePageEvents
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.MaxEventBytes < 0 || o.MaxEventBytes > maxEventBytesLimit:
		return fmt.Errorf("server: MaxEventBytes %d: must be between 1 and %d", o.MaxEventBytes, maxEventBytesLimit)
	case o.MaxBatchEvents < 0:
		return fmt.Errorf("server: MaxBatchEvents %d: must be positive", o.MaxBatchEvents)
	case o.MaxRequestBytes < 0:
		return fmt.Errorf("server: MaxRequestBytes %d: must be positive", o.MaxRequestBytes)
	case o.ConsumePageEvents < 0:
		return fmt.Errorf("server: ConsumePageEvents %d: must be positive", o.ConsumePageEvents)
	}
	if m := MinRequestBytes(o.MaxEventBytes); o.MaxRequestBytes < m {
		o.MaxRequestBytes = m
	}
	return o.fillLimits(d)
}

// maxEventBytesLimit keeps MinRequestBytes within gRPC's int32 message size.
const maxEventBytesLimit = (math.MaxInt32 - RequestOverheadBytes) / headerFramingFactor

// fillLimits sets the zero resource limits to their defaults (d's) and
// checks them; MaxRequestBytes is final.
func (o *Options) fillLimits(d Options) error {
	if o.MaxInflightBytes == 0 {
		// The default follows MaxRequestBytes up; a budget set explicitly
		// below it is refused below.
		o.MaxInflightBytes = max(d.MaxInflightBytes, int64(o.MaxRequestBytes))
	}
	setDefault(&o.MaxConcurrentStreams, d.MaxConcurrentStreams)
	setDefault(&o.MaxConnections, d.MaxConnections)
	setDefault(&o.KeepaliveMinTime, d.KeepaliveMinTime)
	setDefault(&o.KeepaliveTime, d.KeepaliveTime)
	setDefault(&o.KeepaliveTimeout, d.KeepaliveTimeout)
	setDefault(&o.MaxConnectionIdle, d.MaxConnectionIdle)
	setDefault(&o.HandshakeTimeout, d.HandshakeTimeout)
	setDefault(&o.SlowConsumerTimeout, d.SlowConsumerTimeout)
	setDefault(&o.StopGrace, d.StopGrace)
	setDefault(&o.FanoutSenders, d.FanoutSenders)
	setDefault(&o.FanoutSendLease, d.FanoutSendLease)
	setDefault(&o.FanoutLinger, d.FanoutLinger)
	switch {
	case o.FanoutLinger > MaxFanoutLinger:
		return fmt.Errorf("server: FanoutLinger %v: must be at most %v (it delays every event to large groups of followers)", o.FanoutLinger, MaxFanoutLinger)
	case o.FanoutSenders < 0:
		return fmt.Errorf("server: FanoutSenders %d: must not be negative (0 takes the default, GOMAXPROCS-1)", o.FanoutSenders)
	case o.MaxInflightBytes < int64(o.MaxRequestBytes):
		return fmt.Errorf("server: MaxInflightBytes %d: must be at least MaxRequestBytes, %d, or no request of the largest size could ever be taken", o.MaxInflightBytes, o.MaxRequestBytes)
	case o.MaxConnections < 0:
		return fmt.Errorf("server: MaxConnections %d: must be positive", o.MaxConnections)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"KeepaliveMinTime", o.KeepaliveMinTime}, {"KeepaliveTime", o.KeepaliveTime},
		{"KeepaliveTimeout", o.KeepaliveTimeout}, {"MaxConnectionIdle", o.MaxConnectionIdle},
		{"HandshakeTimeout", o.HandshakeTimeout}, {"SlowConsumerTimeout", o.SlowConsumerTimeout},
		{"StopGrace", o.StopGrace}, {"FanoutSendLease", o.FanoutSendLease},
	} {
		if d.v < 0 {
			return fmt.Errorf("server: %s %v: must be positive", d.name, d.v)
		}
	}
	return nil
}

func setDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}
