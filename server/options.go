package server

import (
	"fmt"
	"log/slog"
	"math"
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
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		MaxEventBytes:     DefaultMaxEventBytes,
		MaxBatchEvents:    DefaultMaxBatchEvents,
		MaxRequestBytes:   DefaultMaxRequestBytes,
		ConsumePageEvents: DefaultConsumePageEvents,
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
	return nil
}

// maxEventBytesLimit keeps MinRequestBytes within gRPC's int32 message size.
const maxEventBytesLimit = (math.MaxInt32 - RequestOverheadBytes) / headerFramingFactor
