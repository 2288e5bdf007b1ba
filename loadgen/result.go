package loadgen

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: latencies are recorded in microseconds, from 1 µs to
// 60 s, with 3 significant digits. Shorter ones count as 1 µs, longer ones
// as 60 s.
const (
	histMinMicros = 1
	histMaxMicros = 60_000_000
	histDigits    = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)
}

// recordNanos records a latency given in nanoseconds, clamped to the
// histogram's range.
func recordNanos(h *hdrhistogram.Histogram, ns int64) {
	us := min(max(ns/1000, histMinMicros), histMaxMicros)
	_ = h.RecordValue(us) // in range: cannot fail
}

// Result is what a run measured. Rates are per second of the phase's own
// elapsed time; MB are 10^6 bytes of payload (headers and framing are not
// counted).
type Result struct {
	// Config is the configuration that ran.
	Config Config `json:"config"`
	// Label is Config.Label.
	Label string `json:"label,omitempty"`
	// Mode is "produce" or "read-back".
	Mode string `json:"mode"`
	// Started is when producing (or reading back) began, UTC; zero when
	// the run ended before (a Target failed to open, consumers did not
	// subscribe).
	Started time.Time `json:"started"`
	// Seconds is the run's elapsed time from Started until the last
	// consumer was done (or, without consumers, the last producer).
	Seconds float64 `json:"seconds"`
	// Produce is the producers' side; zero in read-back.
	Produce ProduceStats `json:"produce"`
	// Consume is the consumers' side; zero without consumers.
	Consume ConsumeStats `json:"consume"`
	// ClientCPU is the CPU time of the process that ran Run (the load
	// generator and the system's client library: producers and consumers
	// alike) from getrusage(RUSAGE_SELF), from Started until the last
	// producer ended or, with consumers, until they had received every
	// event. Its MicrosPerEvent is per acknowledged event (per event read,
	// in read-back). Zero where getrusage is not available. The server's
	// CPU is not in it: measure that where the server runs (bench/peers
	// does, for its child servers).
	ClientCPU CPU `json:"client_cpu"`
	// Errors counts failed Produce calls and failed consumers.
	Errors int64 `json:"errors"`
	// ErrorSamples holds the messages of the first few errors.
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// ProduceStats describes the acknowledged Produce calls of a run. A failed
// call counts in Errors only.
type ProduceStats struct {
	// Events, Calls and Bytes count what was acknowledged.
	Events int64 `json:"events"`
	Calls  int64 `json:"calls"`
	Bytes  int64 `json:"bytes"`
	// Errors counts failed Produce calls.
	Errors int64 `json:"errors"`
	// Seconds runs from the first call's start to the last call's end.
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_s"`
	MBPerSec     float64 `json:"mb_per_s"`
	// OfferedRate is Config.Rate (events/s), 0 when unlimited.
	OfferedRate float64 `json:"offered_rate,omitempty"`
	// CallLatency is the latency of each acknowledged Produce call, from
	// its start (with a Rate: its due time) to its acknowledgement.
	CallLatency Latency `json:"call_latency"`
}

// ConsumeStats describes what consumers received. With M consumers on a
// topic, each event of it counts M times.
type ConsumeStats struct {
	Consumers int `json:"consumers"`
	// Expected is what the consumers should have received: in a produce
	// run, for each consumer, the events acknowledged on its topic; in
	// read-back, Config.Events.
	Expected int64 `json:"expected"`
	// Events and Bytes count what they received.
	Events int64 `json:"events"`
	Bytes  int64 `json:"bytes"`
	// Missing is the sum over consumers of the events expected and not
	// received before the wait timeout (or, in read-back, the topic's end).
	Missing int64 `json:"missing"`
	// Errors counts consumers that failed.
	Errors int64 `json:"errors"`
	// Seconds runs from Started until the last event was received.
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_s"`
	MBPerSec     float64 `json:"mb_per_s"`
	// EndToEnd is the latency of each received event from its send time
	// (with a Rate: its due time) to its receipt; empty in read-back.
	EndToEnd Latency `json:"end_to_end_latency"`
}

// Latency is a summary of an HDR histogram recorded in microseconds (1 µs
// to 60 s, 3 significant digits): percentiles are exact to 0.1%.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_us"`
	Min   int64   `json:"min_us"`
	P50   int64   `json:"p50_us"`
	P90   int64   `json:"p90_us"`
	P99   int64   `json:"p99_us"`
	P999  int64   `json:"p99_9_us"`
	Max   int64   `json:"max_us"`
}

// latencyOf summarizes h.
func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean(),
		Min:   h.Min(),
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
	}
}

// rates fills events/s and MB/s from counts and seconds.
func rates(events, bytes int64, seconds float64) (eventsPerSec, mbPerSec float64) {
	if seconds <= 0 {
		return 0, 0
	}
	return float64(events) / seconds, float64(bytes) / 1e6 / seconds
}

// Summary returns the text WriteText writes.
func (r *Result) Summary() string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

// WriteText writes r as a human-readable table: the workload, throughput
// per side, then latency percentiles in milliseconds.
func (r *Result) WriteText(w io.Writer) error {
	c := r.Config
	var b strings.Builder
	if r.Label != "" {
		fmt.Fprintf(&b, "%s\n", r.Label)
	}
	topics := plural(int64(c.Topics), "topic")
	if r.Mode == modeReadBack {
		fmt.Fprintf(&b, "workload  read back %s of %d B from %s (%s*) by %s\n",
			plural(c.Events, "event"), c.Size, topics, c.TopicPrefix, plural(int64(c.Consumers), "consumer"))
	} else {
		amount := plural(c.Events, "event")
		if c.Duration > 0 {
			amount = "for " + c.Duration.String()
		}
		rate := "as fast as acknowledged"
		if c.Rate > 0 {
			rate = fmt.Sprintf("offered at %s events/s", thousands(c.Rate, 0))
		}
		calls := fmt.Sprintf("batches of %d × %d B", c.Batch, c.Size)
		if c.Pipelined {
			calls = fmt.Sprintf("%d pipelined single-event requests of %d B per call", c.Batch, c.Size)
		}
		fmt.Fprintf(&b, "workload  %s × %d in flight, %s, %s, %s (%s*), %s, %s\n",
			plural(int64(c.Producers), "producer"), c.Inflight, calls, amount, topics, c.TopicPrefix,
			plural(int64(c.Consumers), "consumer"), rate)
	}
	fmt.Fprintf(&b, "\n%-14s %12s %12s %10s %9s %12s %7s %9s\n", "", "events", "events/s", "MB/s", "seconds", "calls", "errors", "missing")
	if r.Mode != modeReadBack {
		p := r.Produce
		fmt.Fprintf(&b, "%-14s %12s %12s %10s %9.3f %12s %7d\n", "produce", thousands(float64(p.Events), 0),
			thousands(p.EventsPerSec, 0), thousands(p.MBPerSec, 2), p.Seconds, thousands(float64(p.Calls), 0), p.Errors)
	}
	if r.Consume.Consumers > 0 {
		s := r.Consume
		fmt.Fprintf(&b, "%-14s %12s %12s %10s %9.3f %12s %7d %9s\n", "consume", thousands(float64(s.Events), 0),
			thousands(s.EventsPerSec, 0), thousands(s.MBPerSec, 2), s.Seconds, "", s.Errors, thousands(float64(s.Missing), 0))
	}
	if u := r.ClientCPU; u.Measured() {
		fmt.Fprintf(&b, "\n%-14s %9.1f µs/event  (user %.2f s, system %.2f s, %.2f cores)\n", "client cpu",
			u.MicrosPerEvent, u.UserSeconds, u.SystemSeconds, u.Cores)
	}
	if r.Produce.CallLatency.Count > 0 || r.Consume.EndToEnd.Count > 0 {
		fmt.Fprintf(&b, "\n%-14s %9s %9s %9s %9s %9s %9s %12s\n", "latency (ms)", "p50", "p90", "p99", "p99.9", "max", "mean", "count")
		row := func(name string, l Latency) {
			if l.Count == 0 {
				return
			}
			ms := func(us int64) float64 { return float64(us) / 1000 }
			fmt.Fprintf(&b, "%-14s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %12s\n", name, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999),
				ms(l.Max), l.Mean/1000, thousands(float64(l.Count), 0))
		}
		row("produce call", r.Produce.CallLatency)
		row("end to end", r.Consume.EndToEnd)
	}
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(&b, "error: %s\n", s)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return thousands(float64(n), 0) + " " + noun + "s"
}

// thousands formats x with the given decimals and comma thousands
// separators.
func thousands(x float64, decimals int) string {
	s := fmt.Sprintf("%.*f", decimals, x)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	frac := ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s, frac = s[:i], s[i:]
	}
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return sign + b.String() + frac
}
