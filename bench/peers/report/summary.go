package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/goethe-log/goethe/bench/peers"
)

// Plots are the SVG files WritePlots writes, linked from the summary.
const (
	ThroughputSVG = "throughput.svg"
	LatencySVG    = "latency.svg"
)

// WriteSummary writes the markdown summary: the headline comparison, a
// table per workload, the machine, versions and commands.
func (r *Report) WriteSummary(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	b.WriteString("# Goethe against NATS JetStream and Redis Streams, end to end\n\n")
	for _, n := range m.Notes {
		fmt.Fprintf(&b, "> **Note:** %s\n\n", n)
	}
	b.WriteString("One harness (`loadgen.Run`) drove every system through the same workloads over loopback on one machine, " +
		"each run on a freshly started server with a fresh data folder. ")
	if runs := r.maxRuns(); runs > 1 {
		fmt.Fprintf(&b, "Each figure is the mean of %d runs, interleaved across systems; the range is shown beside it. ", runs)
	}
	b.WriteString("Goethe's default is `--sync=true`, an fsync before every acknowledgement, so its `--sync=true` runs " +
		"stand in both the *fsync* and the *default* columns and are compared with the best peer of each; " +
		"`--sync=false` is shown for information only.\n\n")
	r.writeClients(&b)
	b.WriteString("CPU per event: the server process's user + system CPU time (`/proc/<pid>/stat`, all threads) over the run, " +
		"and the load generator's (the `matrix` process, `getrusage`, which holds the system's client library), each divided by " +
		"the events acknowledged (read, for a read-back). Server and client share the machine's cores.\n\n")
	r.writeDisk(&b)
	fmt.Fprintf(&b, "![throughput](%s)\n\n", ThroughputSVG)
	if r.hasLatency() {
		fmt.Fprintf(&b, "![latency](%s)\n\n", LatencySVG)
	}

	r.writeHeadline(&b)
	r.writeTargets(&b)
	for _, wl := range r.Workloads {
		fmt.Fprintf(&b, "## %s\n\n", wl.Title)
		for _, col := range r.Columns(wl) {
			if wl.Metric == "latency" {
				r.writeLatencyTable(&b, col)
			} else {
				r.writeTable(&b, col)
			}
		}
	}
	r.writeFailures(&b)
	r.writeMachine(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) maxRuns() int {
	n := 0
	for _, c := range r.cells {
		n = max(n, len(c.Runs))
	}
	return n
}

func (r *Report) hasLatency() bool {
	return slices.ContainsFunc(r.Workloads, func(w peers.Workload) bool { return w.Metric == "latency" })
}

// writeHeadline writes one row per workload and column: the best peer and
// each Goethe engine as a ratio to it.
func (r *Report) writeHeadline(b *strings.Builder) {
	var engines []string
	for _, s := range r.Systems {
		if !s.Peer && !s.Extra && s.Durability != "nosync" {
			engines = append(engines, s.Engine)
		}
	}
	if len(engines) == 0 {
		return
	}
	b.WriteString("## Where Goethe stands\n\n")
	b.WriteString("Each Goethe engine (`--sync=true`) as a ratio to the best peer at the same durability: " +
		"above 1× Goethe is ahead in throughput; for latency the ratio is of p99 and below 1× is ahead.\n\n")
	b.WriteString("| workload | durability | best peer | figure |")
	for _, e := range engines {
		fmt.Fprintf(b, " Goethe %s |", e)
	}
	b.WriteString("\n|---|---|---|--:|")
	for range engines {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	for _, wl := range r.Workloads {
		for _, col := range r.Columns(wl) {
			best := col.BestPeer()
			if best == nil {
				continue
			}
			unit := wl.Metric
			fig := number(best.Value) + " " + unit
			if unit == "latency" {
				fig = fmt.Sprintf("p99 %s ms", number(best.E2E[2]))
				if best.Saturated() {
					fig += fmt.Sprintf(" (saturated at %s/s)", number(best.EventsPerSec))
				}
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s |", wl.ID, shortColumn(col.Name), Short(best.System), fig)
			for _, e := range engines {
				cell := r.findEngine(col, e)
				if cell == nil {
					b.WriteString(" |")
					continue
				}
				fmt.Fprintf(b, " %s |", ratioText(Ratio(cell, best), cell))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n")
}

func (r *Report) findEngine(col Column, engine string) *Cell {
	for _, c := range col.Cells {
		if !c.System.Peer && !c.System.Extra && c.System.Engine == engine {
			return c
		}
	}
	return nil
}

func shortColumn(name string) string {
	switch {
	case strings.HasPrefix(name, "fsync"):
		return "fsync"
	case strings.HasPrefix(name, "each"):
		return "default"
	}
	return "read-back"
}

// ratioText formats a ratio to the best peer. A latency ratio of a
// saturated run means nothing (its latency grows with the run's length),
// so it reads "saturated at N/s" instead.
func ratioText(x float64, c *Cell) string {
	switch {
	case c != nil && c.OK == 0:
		return "failed"
	case c != nil && c.Saturated():
		return "saturated at " + number(c.EventsPerSec) + "/s"
	case math.IsNaN(x):
		return "–"
	}
	return fmt.Sprintf("%.2f×", x)
}

// writeTable writes a throughput column: system, durability, events/s,
// MB/s, p99, CPU per event of server and client, ratio to the best peer.
func (r *Report) writeTable(b *strings.Builder, col Column) {
	best := col.BestPeer()
	fmt.Fprintf(b, "**%s**\n\n", col.Name)
	b.WriteString("| system | setting | events/s | MB/s | p99 call (ms) | server CPU µs/event | client CPU µs/event | vs best peer |\n" +
		"|---|---|--:|--:|--:|--:|--:|--:|\n")
	row := func(c *Cell, compare bool) {
		ratio := "–"
		switch {
		case c.System.Peer && c == best:
			ratio = "best peer"
		case c.System.Peer:
			ratio = ratioText(Ratio(c, best), c)
		case compare:
			ratio = "**" + ratioText(Ratio(c, best), c) + "**"
		}
		if c.OK == 0 {
			fmt.Fprintf(b, "| %s | %s | failed | | | | | |\n", systemName(c), setting(c))
			return
		}
		eps, mbps := number(c.EventsPerSec), number(c.MBPerSec)
		if len(c.Runs) > 1 && c.OK > 1 {
			rng := fmt.Sprintf(" (%s–%s)", number(c.Min), number(c.Max))
			if c.Workload.Metric == "MB/s" {
				mbps += rng
			} else {
				eps += rng
			}
		}
		p99 := "–"
		if c.P99 > 0 {
			p99 = number(c.P99)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", systemName(c), setting(c), eps, mbps, p99,
			cpu(c.ServerCPU), cpu(c.ClientCPU), ratio)
	}
	for _, c := range col.Cells {
		row(c, true)
	}
	for _, c := range col.Info {
		row(c, false)
	}
	b.WriteString("\n")
	if wl1(col) && strings.HasPrefix(col.Name, "fsync") {
		r.writeAgainstDisk(b, col)
	}
}

// writeAgainstDisk reads a one-producer fsync column against the disk: one
// producer waiting for each fsync'd ack cannot beat the disk's
// appending-fsync rate (or, in records without it, dd's).
func (r *Report) writeAgainstDisk(b *strings.Builder, col Column) {
	limit, what := r.Machine.AppendFsyncRate(100), "appending-fsync rate (fdatasync after each 100 B append, measured in this run)"
	if limit <= 0 {
		limit, what = r.Machine.FsyncPerSec, "synchronous 4 KiB writes/s (dd oflag=dsync)"
	}
	if limit <= 0 {
		return
	}
	fmt.Fprintf(b, "One producer waiting for each fsync'd ack cannot beat the disk's %s, %s/s. Against it:", what, number(limit))
	var parts []string
	for _, c := range col.Cells {
		if c.OK > 0 {
			parts = append(parts, fmt.Sprintf(" %s %s events/s = %.0f%%", Short(c.System), number(c.EventsPerSec), 100*c.EventsPerSec/limit))
		}
	}
	b.WriteString(strings.Join(parts, ";"))
	b.WriteString(".\n\n")
}

// cpu formats a CPU time per event in µs, "–" when not measured.
func cpu(us float64) string {
	if us <= 0 {
		return "–"
	}
	return number(us)
}

// wl1 reports whether col is of a one-producer, one-event-per-call workload.
func wl1(col Column) bool {
	if len(col.Cells) == 0 {
		return false
	}
	c := col.Cells[0].Workload.Config
	return !col.Cells[0].Workload.ReadBack() && c.Producers == 1 && c.Batch == 1 && c.Rate == 0
}

// writeLatencyTable writes the latency column: achieved rate and
// end-to-end percentiles.
func (r *Report) writeLatencyTable(b *strings.Builder, col Column) {
	best := col.BestPeer()
	fmt.Fprintf(b, "**%s**\n\n", col.Name)
	b.WriteString("| system | setting | achieved events/s | p50 | p90 | p99 | p99.9 | max (ms) | server CPU µs/event | client CPU µs/event | p99 vs best peer |\n" +
		"|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	row := func(c *Cell, compare bool) {
		if c.OK == 0 {
			fmt.Fprintf(b, "| %s | %s | failed | | | | | | | | |\n", systemName(c), setting(c))
			return
		}
		ratio := "–"
		switch {
		case c.System.Peer && c == best:
			ratio = "best peer"
		case c.System.Peer:
			ratio = ratioText(Ratio(c, best), c)
		case compare:
			ratio = "**" + ratioText(Ratio(c, best), c) + "**"
		}
		rate := number(c.EventsPerSec)
		if c.Saturated() {
			rate += " (saturated)"
		}
		fmt.Fprintf(b, "| %s | %s | %s |", systemName(c), setting(c), rate)
		for _, v := range c.E2E {
			fmt.Fprintf(b, " %s |", number(v))
		}
		fmt.Fprintf(b, " %s | %s | %s |\n", cpu(c.ServerCPU), cpu(c.ClientCPU), ratio)
	}
	for _, c := range col.Cells {
		row(c, true)
	}
	for _, c := range col.Info {
		row(c, false)
	}
	b.WriteString("\n")
	if slices.ContainsFunc(append(slices.Clone(col.Cells), col.Info...), (*Cell).Saturated) {
		b.WriteString("*Saturated*: the system acknowledged less than 95% of the offered rate, so its latency is mostly " +
			"time spent waiting to be sent (latency is measured from each event's due time).\n\n")
	}
}

func systemName(c *Cell) string {
	switch c.System.Name {
	case "nats":
		return "NATS JetStream"
	case "redis":
		return "Redis Streams"
	}
	if c.System.Extra {
		return "**Goethe " + c.System.Engine + "** (" + c.System.Client + " client)"
	}
	return "**Goethe " + c.System.Engine + "**"
}

func setting(c *Cell) string {
	switch c.System.Name {
	case "nats":
		if c.System.Fsync {
			return "`sync_interval: always`"
		}
		return "default (`sync_interval` 2 min)"
	case "redis":
		if c.System.Fsync {
			return "`appendfsync always`"
		}
		return "`appendfsync everysec`"
	}
	return fmt.Sprintf("`--sync=%t`, %s client", c.System.Fsync, ClientOf(c.System))
}

// writeClients states the client shape each Goethe figure used.
func (r *Report) writeClients(b *strings.Builder) {
	var primary, extra []string
	seen := map[string]bool{}
	for _, s := range r.Systems {
		c := ClientOf(s)
		if c == "" || seen[c] {
			continue
		}
		seen[c] = true
		text := fmt.Sprintf("**%s** (%s)", c, peers.ClientShapes[c])
		if s.Connections > 1 {
			text = fmt.Sprintf("**%s** over %d connections (%s)", c, s.Connections, peers.ClientShapes[c])
		}
		if s.Extra {
			extra = append(extra, text)
		} else {
			primary = append(primary, text)
		}
	}
	if len(primary) == 0 {
		return
	}
	fmt.Fprintf(b, "Goethe's figures used the %s client shape", strings.Join(primary, " and "))
	if len(extra) > 0 {
		fmt.Fprintf(b, "; rows marked with another shape used %s, on the single-event workloads, for comparison", strings.Join(extra, " and "))
	}
	b.WriteString(".\n\n")
}

// writeDisk states the disk's appending-fsync rate, the limit of one writer
// that syncs every event alone.
func (r *Report) writeDisk(b *strings.Builder) {
	small, page := r.Machine.AppendFsyncRate(100), r.Machine.AppendFsyncRate(4096)
	if small <= 0 {
		return
	}
	fmt.Fprintf(b, "The disk's appending-fsync rate, measured in this run at its start and end (a record appended to a file, "+
		"then fdatasync, and again): **%s/s** with 100 B records, %s/s with 4 KiB ones. One producer that waits for each "+
		"event's fsync cannot go faster; more events per fsync (grouping, batches, pipelines) can.\n\n", number(small), number(page))
}

// writeTargets writes the table of issue 7's targets.
func (r *Report) writeTargets(b *strings.Builder) {
	ts := r.Targets()
	measured := 0
	for _, t := range ts {
		if t.Status != StatusUnmeasured {
			measured++
		}
	}
	if measured == 0 {
		return
	}
	primary := r.goetheSystems(peers.DurabilityFsync)
	who := "Goethe"
	if len(primary) > 0 {
		who = fmt.Sprintf("Goethe %s (%s client)", primary[0].Engine, ClientOf(primary[0]))
	}
	b.WriteString("## Targets\n\n")
	fmt.Fprintf(b, "The write path's targets (issue 7), measured on %s against the peer named, in this run; "+
		"the other engines' figures are beside it. The store benchmarks' targets are recorded by `make results-bench`.\n\n", who)
	b.WriteString("| figure | target | measured | other engines | |\n|---|---|--:|---|---|\n")
	for _, t := range ts {
		status := t.Status
		if status == StatusMissed {
			status = "**missed**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", t.Figure, t.Goal, t.Measured, t.Others, status)
	}
	b.WriteString("\n")
}

func (r *Report) writeFailures(b *strings.Builder) {
	var lines []string
	for _, wl := range r.Workloads {
		for _, s := range r.Systems {
			if c := r.Cell(wl.ID, s.Key()); c != nil {
				for _, e := range c.Errors {
					lines = append(lines, fmt.Sprintf("- %s on %s, %s", wl.ID, s.Title, e))
				}
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("## Failed runs\n\n")
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\n\n")
}

func (r *Report) writeMachine(b *strings.Builder) {
	m := r.Machine
	b.WriteString("## Machine, versions, commands\n\n")
	fmt.Fprintf(b, "- CPUs: %d", m.CPUs)
	if m.CPUModel != "" {
		fmt.Fprintf(b, " (%s)", m.CPUModel)
	}
	b.WriteString("\n")
	if m.MemoryGB != "" {
		fmt.Fprintf(b, "- Memory: %s GiB\n", m.MemoryGB)
	}
	if m.OS != "" || m.Kernel != "" {
		fmt.Fprintf(b, "- OS: %s, %s\n", m.OS, m.Kernel)
	}
	if m.DataFS != "" {
		fmt.Fprintf(b, "- Data folders on: %s\n", m.DataFS)
	}
	for _, a := range m.AppendFsync {
		fmt.Fprintf(b, "- Disk, at the %s: %s appending %ss/s of %d B records (%d in %.1f s, package fsyncrate)\n",
			a.When, number(a.PerSec), a.Sync, a.RecordBytes, a.Writes, a.Seconds)
	}
	if m.FsyncPerSec > 0 {
		fmt.Fprintf(b, "- Disk: %s synchronous 4 KiB writes/s (`%s`): the ceiling of any system that fsyncs each "+
			"acknowledgement alone\n", number(m.FsyncPerSec), m.FsyncCommand)
	}
	if !m.Started.IsZero() {
		fmt.Fprintf(b, "- Run: %s to %s UTC (%s)\n", m.Started.Format("2006-01-02 15:04"), m.Finished.Format("15:04"),
			m.Finished.Sub(m.Started).Round(1e9))
	}
	b.WriteString("\n| component | version |\n|---|---|\n")
	keys := make([]string, 0, len(m.Versions))
	for k := range m.Versions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "| %s | %s |\n", k, m.Versions[k])
	}
	b.WriteString("\nCommands:\n\n```sh\n")
	for _, c := range m.Commands {
		b.WriteString(c + "\n")
	}
	b.WriteString("```\n\nServer command lines (ports and folders vary per run):\n\n```sh\n")
	seen := map[string]bool{}
	for _, s := range r.Systems {
		for _, wl := range r.Workloads {
			c := r.Cell(wl.ID, s.Key())
			if c == nil || len(c.Runs) == 0 || len(c.Runs[0].Server) == 0 || seen[s.Key()] {
				continue
			}
			seen[s.Key()] = true
			fmt.Fprintf(b, "%s\n", strings.Join(quoteArgs(c.Runs[0].Server), " "))
		}
	}
	b.WriteString("```\n")
	if r.hasNATS() {
		b.WriteString("\nnats-server's configuration file (`-c`): `listen: \"127.0.0.1:PORT\"` and " +
			"`jetstream { store_dir: \"DIR\" }`, plus `sync_interval: always` inside `jetstream` for the fsync runs.\n")
	}
	b.WriteString("\nWorkload configurations (`loadgen.Config`, as in the JSON records):\n\n")
	for _, wl := range r.Workloads {
		c := wl.Config
		if wl.ReadBack() {
			p := wl.Preload
			fmt.Fprintf(b, "- %s: preload %d events of %d B (%d producers, batches of %d), then 1 consumer reads them back from the start\n",
				wl.ID, p.Events, p.Size, p.Producers, p.Batch)
			continue
		}
		batch := fmt.Sprintf("batch %d", c.Batch)
		if c.Pipelined {
			batch = fmt.Sprintf("%d pipelined single-event requests per call", c.Batch)
		}
		fmt.Fprintf(b, "- %s: %d producer%s × %d in flight, %s, %d B, %s", wl.ID, c.Producers, plural(c.Producers),
			c.Inflight, batch, c.Size, c.Duration)
		if c.Rate > 0 {
			fmt.Fprintf(b, ", offered %s events/s, %d following consumer", number(c.Rate), c.Consumers)
		}
		b.WriteString("\n")
	}
}

func (r *Report) hasNATS() bool {
	return slices.ContainsFunc(r.Systems, func(s peers.System) bool { return s.Name == "nats" })
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}
