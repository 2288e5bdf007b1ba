// Package report turns the records of a peers matrix (peers.Record, one
// JSON file per run, and machine.json) into figures: a markdown summary
// with a table per workload, and SVG plots.
//
// # Figures
//
// Runs of one workload on one system are averaged (mean) and their range
// is shown. A produce workload's figure is the producers' acknowledged
// events/s (MB/s for the 1 KiB batched one) and its p99 the Produce call's;
// a read-back's is the consumer's events/s (MB/s at 1 KiB); the latency
// workload's are the end-to-end percentiles.
//
// Goethe is compared with the best peer at the same durability: in the
// fsync column (an acknowledgement after fsync) with JetStream
// sync_interval always and Redis appendfsync always; in the default column
// with JetStream's and Redis's defaults. Goethe's default is --sync=true,
// so the same Goethe runs stand in both columns; its --sync=false runs are
// shown for information and never compared. Read-back does not depend on
// the write durability and has one column.
package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/goethe-log/goethe/bench/peers"
)

// Cell is the aggregate of the runs of one workload on one system.
type Cell struct {
	Workload peers.Workload
	System   peers.System
	// Runs are the records, failed ones included.
	Runs []peers.Record
	// OK counts the runs without an error; the figures below are their
	// means (zero if none).
	OK int
	// Value is the workload's headline figure (events/s or MB/s; achieved
	// events/s for the latency workload); Min and Max its range.
	Value, Min, Max float64
	// EventsPerSec and MBPerSec are the throughput of the measured side.
	EventsPerSec, MBPerSec float64
	// P99 is the Produce call's p99 in ms (produce workloads).
	P99 float64
	// E2E holds the end-to-end latency percentiles in ms: p50, p90, p99,
	// p99.9, max (latency workload).
	E2E [5]float64
	// Offered is the latency workload's offered rate.
	Offered float64
	// ServerCPU and ClientCPU are the server's and the load generator's
	// CPU time per event in µs (Record.ServerCPU, Result.ClientCPU), the
	// mean over the OK runs that measured it; 0 if none did.
	ServerCPU, ClientCPU float64
	// Errors are the failed runs' messages.
	Errors []string
}

// Saturated reports whether a rate-limited run fell behind its offered
// rate by more than 5%: its latency is then mostly queueing.
func (c *Cell) Saturated() bool { return c.Offered > 0 && c.EventsPerSec < 0.95*c.Offered }

// Report is a matrix's records grouped for presentation.
type Report struct {
	Machine   peers.Machine
	Workloads []peers.Workload // in matrix order
	Systems   []peers.System   // in matrix order
	cells     map[[2]string]*Cell
}

// PercentileNames label Cell.E2E.
var PercentileNames = [5]string{"p50", "p90", "p99", "p99.9", "max"}

// New groups recs. Workloads and systems keep the order of peers.Workloads
// and peers.Systems as far as the records hold them.
func New(m peers.Machine, recs []peers.Record) *Report {
	r := &Report{Machine: m, cells: map[[2]string]*Cell{}}
	for _, rec := range recs {
		k := [2]string{rec.Workload.ID, rec.System.Key()}
		c := r.cells[k]
		if c == nil {
			c = &Cell{Workload: rec.Workload, System: rec.System}
			r.cells[k] = c
			if !slices.ContainsFunc(r.Workloads, func(w peers.Workload) bool { return w.ID == rec.Workload.ID }) {
				r.Workloads = append(r.Workloads, rec.Workload)
			}
			if !slices.ContainsFunc(r.Systems, func(s peers.System) bool { return s.Key() == rec.System.Key() }) {
				r.Systems = append(r.Systems, rec.System)
			}
		}
		c.Runs = append(c.Runs, rec)
	}
	slices.SortStableFunc(r.Workloads, func(a, b peers.Workload) int { return cmp.Compare(workloadRank(a), workloadRank(b)) })
	slices.SortStableFunc(r.Systems, func(a, b peers.System) int { return cmp.Compare(systemRank(a), systemRank(b)) })
	for _, c := range r.cells {
		c.aggregate()
	}
	return r
}

// workloadRank orders workloads as peers.Workloads does, others after.
func workloadRank(w peers.Workload) int {
	for i, known := range peers.Workloads(time.Second, 1) {
		if known.ID == w.ID {
			return i
		}
	}
	return 1 << 20
}

// systemRank orders systems: NATS, Redis, Goethe engines, then --sync=false.
func systemRank(s peers.System) int {
	rank := 0
	switch {
	case s.Name == "nats":
	case s.Name == "redis":
		rank = 10
	case s.Durability == peers.DurabilityNoSync:
		rank = 40
	case s.Extra:
		rank = 30
	default:
		rank = 20
	}
	switch s.Engine {
	case "pebble":
		rank += 2
	case "bolt":
		rank += 4
	}
	if s.Durability == peers.DurabilityFsync && s.Peer {
		rank++
	}
	return rank
}

func (c *Cell) aggregate() {
	var n, nServer, nClient float64
	c.Min = math.Inf(1)
	for _, rec := range c.Runs {
		if rec.Error != "" {
			c.Errors = append(c.Errors, fmt.Sprintf("run %d: %s", rec.Run, rec.Error))
			continue
		}
		res := rec.Result
		var eps, mbps, v, p99 float64
		var e2e [5]float64
		switch {
		case c.Workload.ReadBack():
			eps, mbps = res.Consume.EventsPerSec, res.Consume.MBPerSec
		default:
			eps, mbps = res.Produce.EventsPerSec, res.Produce.MBPerSec
			p99 = float64(res.Produce.CallLatency.P99) / 1000
		}
		v = eps
		if c.Workload.Metric == "MB/s" {
			v = mbps
		}
		if c.Workload.Metric == "latency" {
			l := res.Consume.EndToEnd
			e2e = [5]float64{ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max)}
			c.Offered = res.Config.Rate
		}
		if u := rec.ServerCPU; u.Measured() && u.MicrosPerEvent > 0 {
			c.ServerCPU += u.MicrosPerEvent
			nServer++
		}
		if u := res.ClientCPU; u.Measured() && u.MicrosPerEvent > 0 {
			c.ClientCPU += u.MicrosPerEvent
			nClient++
		}
		n++
		c.OK++
		c.EventsPerSec += eps
		c.MBPerSec += mbps
		c.Value += v
		c.P99 += p99
		for i := range e2e {
			c.E2E[i] += e2e[i]
		}
		c.Min, c.Max = min(c.Min, v), max(c.Max, v)
	}
	if nServer > 0 {
		c.ServerCPU /= nServer
	}
	if nClient > 0 {
		c.ClientCPU /= nClient
	}
	if n == 0 {
		c.Min = 0
		return
	}
	c.EventsPerSec /= n
	c.MBPerSec /= n
	c.Value /= n
	c.P99 /= n
	for i := range c.E2E {
		c.E2E[i] /= n
	}
}

func ms(us int64) float64 { return float64(us) / 1000 }

// Cell returns the cell of workload id on system key (System.Key), or nil.
func (r *Report) Cell(workload, system string) *Cell { return r.cells[[2]string{workload, system}] }

// Column is one durability column of a workload's comparison.
type Column struct {
	// Name is "fsync before ack", "each system's default" or "read-back".
	Name string
	// Cells are the systems compared, in order; Peers the peers among
	// them; Info the cells shown for information only (not compared).
	Cells []*Cell
	Info  []*Cell
}

// Columns returns w's comparison columns: one for read-back, else fsync
// and default. Cells of systems without runs of w are left out.
func (r *Report) Columns(w peers.Workload) []Column {
	pick := func(level string) (cells, info []*Cell) {
		for _, s := range r.Systems {
			c := r.Cell(w.ID, s.Key())
			if c == nil {
				continue
			}
			switch {
			case s.Durability == peers.DurabilityNoSync:
				info = append(info, c)
			case level == "" || s.Durability == level || s.Also == level:
				cells = append(cells, c)
			}
		}
		return cells, info
	}
	if w.ReadBack() {
		cells, info := pick("")
		return []Column{{Name: "read-back (peers at their default, Goethe --sync=true)", Cells: cells, Info: info}}
	}
	fs, _ := pick(peers.DurabilityFsync)
	def, info := pick(peers.DurabilityDefault)
	return []Column{
		{Name: "fsync before every ack", Cells: fs},
		{Name: "each system's default", Cells: def, Info: info},
	}
}

// BestPeer returns the column's best peer cell (highest Value, or for the
// latency workload lowest p99 among unsaturated ones) or nil.
func (col Column) BestPeer() *Cell {
	var best *Cell
	for _, c := range col.Cells {
		if !c.System.Peer || c.OK == 0 {
			continue
		}
		if best == nil || better(c, best) {
			best = c
		}
	}
	return best
}

func better(a, b *Cell) bool {
	if a.Workload.Metric == "latency" {
		if a.Saturated() != b.Saturated() {
			return !a.Saturated()
		}
		return a.E2E[2] < b.E2E[2]
	}
	return a.Value > b.Value
}

// Ratio returns c's figure over best's: Value÷Value, or for latency p99÷p99
// (lower is better). It is NaN without a comparison.
func Ratio(c, best *Cell) float64 {
	if best == nil || c.OK == 0 || best.OK == 0 {
		return math.NaN()
	}
	if c.Workload.Metric == "latency" {
		if best.E2E[2] == 0 {
			return math.NaN()
		}
		return c.E2E[2] / best.E2E[2]
	}
	if best.Value == 0 {
		return math.NaN()
	}
	return c.Value / best.Value
}

// Short is a system's label in plots: "NATS fsync", "Redis default",
// "Goethe leveldb", "Goethe leveldb nosync".
func Short(s peers.System) string {
	switch s.Name {
	case "nats":
		if s.Fsync {
			return "JetStream always"
		}
		return "JetStream default"
	case "redis":
		if s.Fsync {
			return "Redis always"
		}
		return "Redis everysec"
	}
	name := "Goethe " + s.Engine
	if s.Durability == peers.DurabilityNoSync {
		name += " nosync"
	}
	if s.Extra {
		name += " (" + s.Client + ")"
	}
	return name
}

// ClientOf is the client shape of a Goethe system: System.Client, or
// peers.GoetheStream for records made before it was recorded. "" for a peer.
func ClientOf(s peers.System) string {
	switch {
	case s.Peer:
		return ""
	case s.Client == "":
		return peers.GoetheStream
	}
	return s.Client
}

// number formats x compactly: 1.23M, 52.3k, 812, 4.56.
func number(x float64) string {
	switch ax := math.Abs(x); {
	case math.IsNaN(x):
		return "–"
	case ax >= 1e6:
		return trim(fmt.Sprintf("%.2f", x/1e6)) + "M"
	case ax >= 1e4:
		return trim(fmt.Sprintf("%.1f", x/1e3)) + "k"
	case ax >= 100:
		return fmt.Sprintf("%.0f", x)
	case ax >= 10:
		return trim(fmt.Sprintf("%.1f", x))
	default:
		return trim(fmt.Sprintf("%.2f", x))
	}
}

func trim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
