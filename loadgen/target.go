// Package loadgen is the load generator behind `goethectl bench` and the
// peer comparison in bench/peers: one harness drives Goethe, NATS JetStream
// and Redis Streams through the same workloads, so their figures compare.
//
// # Basics
//
// A system under test is a Target, opened by an Opener. Run opens one
// Target per producer slot and one per consumer, drives the load a Config
// describes, and returns a Result: throughput of producing and consuming,
// and HDR-histogram latency percentiles per Produce call and end to end.
//
// # Payloads
//
// Every event's payload is Config.Size bytes: its first 8 bytes are the
// time it was sent (Unix nanoseconds, little-endian; see Timestamp), the
// rest deterministic pseudo-random bytes that neither compress nor repeat
// between neighbouring events. A consumer's end-to-end latency is its
// receive time minus that timestamp, so producers and consumers must share
// a clock (one machine).
//
// # Caveats
//
//   - A run owns its topics while it runs: events another writer appends
//     to them at the same time are counted as received.
//   - When Config.Consumers > 0, Run first appends a few probe events (a
//     zero timestamp) to each consumed topic to learn that its consumers are
//     subscribed; consumers skip them, also when reading back.
package loadgen

import "context"

// Target is a system under test. A Target is used by one goroutine at a
// time: Run opens one per producer slot and one per consumer, so
// connection-level concurrency matches the configuration.
type Target interface {
	// Produce appends payloads to topic as one request (one batch, or one
	// pipeline of requests where the system has no batch call) and returns
	// when the system has acknowledged all of them. It must not retain
	// payloads after it returns: Run reuses them for its next call.
	Produce(ctx context.Context, topic string, payloads [][]byte) error

	// Consume reads topic in order from the start given, calling fn with
	// each event's payload, until fn returns false (Consume then returns
	// nil), ctx ends (it returns an error), or (when follow is false) the
	// end of the topic is reached (it returns nil). fn must not retain
	// payload after it returns. FromEnd may take effect some time after
	// Consume is called (a subscription being set up): Run learns when it
	// has with probe events, so a Target need not signal it.
	Consume(ctx context.Context, topic string, from Start, follow bool, fn func(payload []byte) bool) error

	// Close releases the target's connections.
	Close() error
}

// Start is where a consumer begins.
type Start int

// The starts every target supports.
const (
	FromBeginning Start = iota // replay the topic
	FromEnd                    // only events produced after the consumer started
)

// String names the start, for logs.
func (s Start) String() string {
	if s == FromEnd {
		return "end"
	}
	return "beginning"
}

// Opener opens a new Target connected to the system under test. Run calls
// it once per Target it needs, from one goroutine.
type Opener func(ctx context.Context) (Target, error)

// PipelineTarget is a Target that can also send every payload as a request
// of its own, one event each, all in flight together before it waits for
// their acknowledgements: JetStream's PublishAsync, a Redis pipeline of
// XADDs, Goethe's asynchronous Producer. Run uses it when
// Config.Pipelined is set; a Target without it cannot run such a workload.
type PipelineTarget interface {
	Target
	// ProducePipelined sends each payload to topic as its own single-event
	// request without waiting between them, then returns once every one is
	// acknowledged (or the first error). Like Produce, it must not retain
	// payloads after it returns.
	ProducePipelined(ctx context.Context, topic string, payloads [][]byte) error
}
