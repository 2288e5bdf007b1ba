package loadgen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidConfig is wrapped by the error of Config.Validate, and so of Run,
// for a configuration that cannot run. The message names the setting by its
// goethectl bench flag name and says what is wrong.
var ErrInvalidConfig = errors.New("loadgen: invalid config")

// Payload size bounds.
const (
	// MinSize is the smallest payload: the 8-byte send timestamp and at
	// least 8 pseudo-random bytes that keep neighbouring events distinct.
	MinSize = 16
	// MaxSize bounds a payload, so that a run's buffers stay in memory.
	MaxSize = 64 << 20
)

// Config describes a workload. Start from DefaultConfig; Run validates it.
//
// A produce run (ReadBack false) has Producers × Inflight workers, each
// with its own Target, each calling Produce with Batch events of Size bytes
// (with Pipelined: ProducePipelined, Batch single-event requests in
// flight) until Events have been sent or Duration has passed. Events are split
// evenly between producers (the first ones take the remainder), and a
// producer's workers share its part. Producer p writes topic
// TopicPrefix-(p mod Topics); consumer c follows topic
// TopicPrefix-(c mod Topics) from its end and measures end-to-end latency.
//
// A read-back run (ReadBack true) produces nothing: Consumers consumers
// read Events events in all, split evenly, from the beginning of their
// topics, as fast as they can, and the run reports consume throughput. The
// topics must already hold the events (a produce run with the same
// TopicPrefix and Topics writes them).
type Config struct {
	// Producers is the number of producers (N), at least 1. Ignored in
	// read-back.
	Producers int `json:"producers"`
	// Inflight is the number of concurrent Produce calls per producer (W),
	// each on its own Target (its own connection), so that pipelining is
	// real. Ignored in read-back.
	Inflight int `json:"inflight"`
	// Batch is the number of events per Produce call (B). Ignored in
	// read-back.
	Batch int `json:"batch"`
	// Pipelined sends each of a call's Batch events as a request of its
	// own, all of them in flight before the call waits for their
	// acknowledgements (PipelineTarget.ProducePipelined: JetStream's
	// PublishAsync, a Redis pipeline of XADDs, Goethe's asynchronous
	// Producer), instead of as one batch. Every producer Target must be a
	// PipelineTarget, or Run fails with ErrNotPipelined before producing.
	// A call's latency then runs from its first send to its last
	// acknowledgement. Not with read-back.
	Pipelined bool `json:"pipelined,omitempty"`
	// Size is the payload size in bytes (S), from MinSize to MaxSize.
	Size int `json:"size"`
	// Events is the number of events to produce in all (or, in read-back,
	// to read in all). Exactly one of Events and Duration is set in a
	// produce run; read-back needs Events.
	Events int64 `json:"events,omitempty"`
	// Duration is how long producers start new Produce calls; calls in
	// flight at its end complete and count.
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Topics is the number of topics (K), named TopicPrefix-0 …
	// TopicPrefix-(K-1). In a produce run it is at most Producers, so that
	// every topic is written; in read-back at most Consumers.
	Topics int `json:"topics"`
	// TopicPrefix names the topics.
	TopicPrefix string `json:"topic_prefix"`
	// Consumers is the number of consumers (M). In a produce run they
	// follow their topics from the end, are subscribed before the first
	// event is produced, and must each receive every event produced to
	// their topic; 0 measures producing alone. Read-back needs at least 1.
	Consumers int `json:"consumers"`
	// Rate, when not 0, is the offered load in events per second across
	// all producers: producer p's call i is due at start + (i×Producers +
	// p)×Batch/Rate, so that together they offer an even stream, and its
	// latency, like its events' end-to-end latency, is measured from that
	// due time, not from when a worker got to send it. A system that falls
	// behind therefore shows its queueing delay in the percentiles instead
	// of hiding it (no coordinated omission). Producers × Inflight must be
	// large enough to keep up with the rate plus the system's latency.
	// Read-back takes no rate.
	Rate float64 `json:"rate,omitempty"`
	// ReadBack selects a read-back run (see above).
	ReadBack bool `json:"read_back,omitempty"`
	// WaitTimeout bounds each wait for consumers: for them to subscribe
	// before producing starts, and for them to receive every produced
	// event after it ends. Events still missing then are reported.
	WaitTimeout time.Duration `json:"wait_timeout_ns"`
	// MaxErrors is how many failed Produce calls a run tolerates (counting
	// and skipping them) before it stops: 0 stops at the first.
	MaxErrors int `json:"max_errors"`
	// Label is free text copied into the Result, such as the system and
	// its durability setting.
	Label string `json:"label,omitempty"`
}

// DefaultConfig returns the defaults: 1 producer with 1 call in flight,
// batches of 1 event of 100 bytes, 100,000 events, 1 topic named
// "bench-0", no consumers, no rate limit, a 30 s wait timeout and no
// tolerated errors.
func DefaultConfig() Config {
	return Config{
		Producers:   1,
		Inflight:    1,
		Batch:       1,
		Size:        100,
		Events:      100_000,
		Topics:      1,
		TopicPrefix: "bench",
		WaitTimeout: 30 * time.Second,
	}
}

// Validate returns nil if Run can run c, or an error wrapping
// ErrInvalidConfig that names the first setting at fault.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Size < MinSize || c.Size > MaxSize:
		return bad("size %d: must be from %d (an 8-byte timestamp and 8 distinct bytes) to %d bytes", c.Size, MinSize, MaxSize)
	case c.Topics < 1:
		return bad("topics %d: must be at least 1", c.Topics)
	case c.TopicPrefix == "":
		return bad("topic prefix: must not be empty")
	case c.Consumers < 0:
		return bad("consumers %d: must not be negative", c.Consumers)
	case c.Events < 0:
		return bad("events %d: must not be negative", c.Events)
	case c.Duration < 0:
		return bad("duration %s: must not be negative", c.Duration)
	case c.WaitTimeout <= 0:
		return bad("wait timeout %s: must be positive", c.WaitTimeout)
	case c.MaxErrors < 0:
		return bad("max errors %d: must not be negative", c.MaxErrors)
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate < 0:
		return bad("rate %v: must be a positive number of events per second, or 0 for no limit", c.Rate)
	}
	if c.ReadBack {
		switch {
		case c.Consumers < 1:
			return bad("read-back needs at least 1 consumer")
		case c.Events == 0:
			return bad("read-back needs a number of events to read")
		case c.Duration != 0:
			return bad("duration: read-back reads a number of events, not for a time")
		case c.Rate != 0:
			return bad("rate: read-back reads as fast as it can")
		case c.Pipelined:
			return bad("pipelined: read-back produces nothing")
		case c.Topics > c.Consumers:
			return bad("topics %d: at most consumers (%d) in read-back, so that every topic is read", c.Topics, c.Consumers)
		}
		return nil
	}
	switch {
	case c.Producers < 1:
		return bad("producers %d: must be at least 1", c.Producers)
	case c.Inflight < 1:
		return bad("inflight %d: must be at least 1", c.Inflight)
	case c.Batch < 1:
		return bad("batch %d: must be at least 1", c.Batch)
	case (c.Events == 0) == (c.Duration == 0):
		return bad("events %d, duration %s: set exactly one of them", c.Events, c.Duration)
	case c.Topics > c.Producers:
		return bad("topics %d: at most producers (%d), since producer p writes topic p mod topics", c.Topics, c.Producers)
	case c.Rate != 0 && float64(c.Batch)/c.Rate > float64(time.Hour/time.Second):
		return bad("rate %v: below one batch an hour", c.Rate)
	}
	return nil
}

// Topic is the name of topic i (0 ≤ i < Topics).
func (c Config) Topic(i int) string { return fmt.Sprintf("%s-%d", c.TopicPrefix, i) }
