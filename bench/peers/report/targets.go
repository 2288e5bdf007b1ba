package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/goethe-log/goethe/bench/peers"
)

// Target is one of the write path's targets (issue 7) read off a matrix:
// a Goethe figure against a peer's in the same run, or against the disk.
type Target struct {
	// Figure says what is compared: "(a) a16-100B events/s, fsync".
	Figure string
	// Goal is the target: "≥ 2× Redis always".
	Goal string
	// Measured is the main Goethe system's figure (the first engine, with
	// the main client shape): "0.75× (22.2k vs 29.7k events/s)".
	Measured string
	// Others are the other engines' ratios, where the target is measured
	// at a durability they ran at: "pebble 0.73×, bolt 0.65×".
	Others string
	// Status is StatusMet, StatusMissed or StatusUnmeasured.
	Status string
}

// Target statuses.
const (
	StatusMet        = "met"
	StatusMissed     = "missed"
	StatusUnmeasured = "not measured"
)

// targetKind is what a target compares.
type targetKind int

const (
	kindEvents    targetKind = iota // events/s over the peer's
	kindServerCPU                   // server µs/event over the peer's
	kindClientCPU                   // load generator µs/event over the peer's
	kindP99Ratio                    // end-to-end p99 over the peer's
	kindP99                         // end-to-end p99 in ms
	kindDisk                        // events/s over the disk's appending-fsync rate
)

// targetSpec is a target as data: Goethe's system at durability goethe on
// workload, against the peer system peer (a System.Key), by kind.
type targetSpec struct {
	figure, workload string
	goethe           string // peers.DurabilityFsync or peers.DurabilityNoSync
	kind             targetKind
	peer             string // System.Key of the peer; "" for kindP99 and kindDisk
	atMost           bool   // the figure must be ≤ bound (else ≥ bound)
	bound            float64
}

// issueTargets are issue 7's targets that a matrix measures. (The store
// benchmarks' targets are measured by results/bench.sh.)
var issueTargets = []targetSpec{
	{"server CPU per event, a16-100B, fsync off", "a16-100B", peers.DurabilityNoSync, kindServerCPU, "redis.default", true, 1.5},
	{"server CPU per event, a1-100B, fsync", "a1-100B", peers.DurabilityFsync, kindServerCPU, "redis.fsync", true, 1.5},
	{"load generator CPU per event vs go-redis, a16-100B, fsync off", "a16-100B", peers.DurabilityNoSync, kindClientCPU, "redis.default", true, 1.5},
	{"load generator CPU per event vs go-redis, a1-100B, fsync", "a1-100B", peers.DurabilityFsync, kindClientCPU, "redis.fsync", true, 1.5},
	{"(a) 16 producers × 1 × 100 B, fsync", "a16-100B", peers.DurabilityFsync, kindEvents, "redis.fsync", false, 2},
	{"(a') 1 producer × 1 × 100 B, fsync", "a1-100B", peers.DurabilityFsync, kindEvents, "redis.fsync", false, 1},
	{"(a') 1 producer × 1 × 100 B, fsync, against the disk", "a1-100B", peers.DurabilityFsync, kindDisk, "", false, 0.7},
	{"(b') 1,000 pipelined single events, fsync", "p-100B", peers.DurabilityFsync, kindEvents, "redis.fsync", false, 2},
	{"(b') 1,000 pipelined single events, fsync, against Redis everysec", "p-100B", peers.DurabilityFsync, kindEvents, "redis.default", false, 1},
	{"(d) 16 producers × 1 × 1 KiB, fsync", "d16-1KiB", peers.DurabilityFsync, kindEvents, "redis.fsync", false, 2},
	{"(e) 20k events/s offered by 16 producers, fsync: end-to-end p99", "e-100B", peers.DurabilityFsync, kindP99, "", true, 5},
	{"(e) 20k events/s offered by 16 producers, fsync: p99 against Redis always", "e-100B", peers.DurabilityFsync, kindP99Ratio, "redis.fsync", true, 0.5},
}

// Targets reads issue 7's targets off the report, in the issue's order.
func (r *Report) Targets() []Target {
	var out []Target
	for _, spec := range issueTargets {
		out = append(out, r.target(spec))
	}
	return out
}

// goetheSystems returns the main Goethe systems (not Extra) at durability,
// the first engine first.
func (r *Report) goetheSystems(durability string) []peers.System {
	var out []peers.System
	for _, s := range r.Systems {
		if !s.Peer && !s.Extra && s.Durability == durability {
			out = append(out, s)
		}
	}
	return out
}

func (r *Report) target(spec targetSpec) Target {
	t := Target{Figure: spec.figure, Goal: goal(spec), Status: StatusUnmeasured}
	systems := r.goetheSystems(spec.goethe)
	var peer *Cell
	if spec.peer != "" {
		peer = r.Cell(spec.workload, spec.peer)
	}
	disk := r.Machine.AppendFsyncRate(100)
	var others []string
	for i, s := range systems {
		c := r.Cell(spec.workload, s.Key())
		v, text, ok := measure(spec, c, peer, disk)
		if !ok {
			if i == 0 {
				t.Measured = text
			}
			continue
		}
		if i > 0 {
			others = append(others, s.Engine+" "+short(spec, v))
			continue
		}
		t.Measured = text
		t.Status = StatusMissed
		if (spec.atMost && v <= spec.bound) || (!spec.atMost && v >= spec.bound) {
			t.Status = StatusMet
		}
	}
	t.Others = strings.Join(others, ", ")
	return t
}

func goal(spec targetSpec) string {
	op := "≥"
	if spec.atMost {
		op = "≤"
	}
	switch spec.kind {
	case kindP99:
		return fmt.Sprintf("%s %s ms", op, number(spec.bound))
	case kindDisk:
		return fmt.Sprintf("%s %.0f%% of the disk's appending-fsync rate", op, 100*spec.bound)
	}
	return fmt.Sprintf("%s %s× %s", op, number(spec.bound), peerName(spec.peer))
}

func peerName(key string) string {
	switch key {
	case "redis.fsync":
		return "Redis always"
	case "redis.default":
		return "Redis everysec"
	case "nats.fsync":
		return "JetStream always"
	case "nats.default":
		return "JetStream default"
	}
	return key
}

// short formats v as the target's unit: a ratio or a share of the disk.
func short(spec targetSpec, v float64) string {
	if math.IsInf(v, 1) {
		return "saturated"
	}
	switch spec.kind {
	case kindP99:
		return number(v) + " ms"
	case kindDisk:
		return fmt.Sprintf("%.0f%%", 100*v)
	}
	return fmt.Sprintf("%.2f×", v)
}

// measure returns the target's figure for Goethe cell c, with a text that
// shows what it is made of; ok is false when it cannot be computed, and
// text then says why.
func measure(spec targetSpec, c, peer *Cell, disk float64) (v float64, text string, ok bool) {
	switch {
	case c == nil || c.OK == 0:
		return 0, "no Goethe run", false
	case spec.peer != "" && (peer == nil || peer.OK == 0):
		return 0, "no " + peerName(spec.peer) + " run", false
	}
	ratio := func(a, b float64, unit string) (float64, string, bool) {
		if a <= 0 || b <= 0 {
			return 0, "no " + unit + " recorded", false
		}
		x := a / b
		return x, fmt.Sprintf("%.2f× (%s vs %s %s)", x, number(a), number(b), unit), true
	}
	switch spec.kind {
	case kindEvents:
		return ratio(c.EventsPerSec, peer.EventsPerSec, "events/s")
	case kindServerCPU:
		return ratio(c.ServerCPU, peer.ServerCPU, "µs/event")
	case kindClientCPU:
		return ratio(c.ClientCPU, peer.ClientCPU, "µs/event")
	case kindP99Ratio:
		if c.Saturated() {
			return math.Inf(1), fmt.Sprintf("saturated at %s/s", number(c.EventsPerSec)), true
		}
		return ratio(c.E2E[2], peer.E2E[2], "ms")
	case kindP99:
		if c.Saturated() {
			return math.Inf(1), fmt.Sprintf("saturated at %s/s", number(c.EventsPerSec)), true
		}
		return c.E2E[2], number(c.E2E[2]) + " ms", c.E2E[2] > 0
	case kindDisk:
		if disk <= 0 {
			return 0, "no appending-fsync rate recorded", false
		}
		x := c.EventsPerSec / disk
		return x, fmt.Sprintf("%.0f%% (%s of %s/s)", 100*x, number(c.EventsPerSec), number(disk)), true
	}
	return 0, "", false
}
