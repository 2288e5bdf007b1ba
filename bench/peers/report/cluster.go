package report

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/goethe-log/goethe/bench/peers"
)

// WriteClusterSummary writes dir/summary.md and dir/cluster.svg of a
// cmd/cluster3 run: the workloads' figures per system, Goethe's ratio to
// the 3-node JetStream in the same run, the failover distributions, the
// durability settings and the machine.
func WriteClusterSummary(dir string, m peers.Machine, recs []peers.Record, fails []peers.Failover) error {
	var b strings.Builder
	b.WriteString("# Goethe cluster against NATS JetStream cluster: 3 nodes on one machine (issue 8)\n\n")
	b.WriteString("Made by `bench/peers/cmd/cluster3` (see the commands below). Every member is a process of its own on " +
		"127.0.0.1 with its own data folder; the three members share the machine's cores and its disk.\n\n")
	b.WriteString("Durability: **Goethe** acknowledges a write once it is on a majority's Raft log (raft-wal, fsync'd before " +
		"each append) and applied on the leader (`--sync=true`; the engine's own writes are unsynced where the Raft log " +
		"replays them). **JetStream**: every server `jetstream { sync_interval: always }`, streams with 3 replicas, file " +
		"storage; a publish is acknowledged once the stream's quorum stored it.\n\n")
	b.WriteString("Producers reach the leader of the writes (Goethe's Raft leader; the leader of the JetStream stream); " +
		"(c) preloads through the leader, then reads from a follower.\n\n")

	var systems []peers.System
	for _, r := range recs {
		if !slices.ContainsFunc(systems, func(s peers.System) bool { return s.Name == r.System.Name }) {
			systems = append(systems, r.System)
		}
	}
	var workloads []peers.Workload
	for _, r := range recs {
		if !slices.ContainsFunc(workloads, func(w peers.Workload) bool { return w.ID == r.Workload.ID }) {
			workloads = append(workloads, r.Workload)
		}
	}
	find := func(w, s string) *peers.Record {
		for i := range recs {
			if recs[i].Workload.ID == w && recs[i].System.Name == s {
				return &recs[i]
			}
		}
		return nil
	}
	figure := func(r *peers.Record) float64 {
		if r == nil || r.Error != "" {
			return 0
		}
		if r.Workload.ReadBack() {
			return r.Result.Consume.EventsPerSec
		}
		return r.Result.Produce.EventsPerSec
	}
	b.WriteString("## Throughput\n\nTargets: 3-node Goethe ≥ 1.0× 3-node JetStream on (a) and (b); 3-node Goethe (b) ≥ 0.5× " +
		"single-node Goethe (the `goethe-…` row, one process with the machine to itself).\n\n")
	b.WriteString("| workload | system | events/s | call p50 / p99 ms | server CPU µs/event (all members) | vs JetStream R3 | vs 1 node |\n|---|---|---|---|---|---|---|\n")
	for _, w := range workloads {
		nats := figure(find(w.ID, "cluster3-nats"))
		for _, s := range systems {
			r := find(w.ID, s.Name)
			if r == nil {
				continue
			}
			lat := "–"
			if !w.ReadBack() {
				l := r.Result.Produce.CallLatency
				lat = fmt.Sprintf("%.2f / %.2f", float64(l.P50)/1000, float64(l.P99)/1000)
			}
			ratio := "–"
			if f := figure(r); s.Name != "cluster3-nats" && strings.HasPrefix(s.Name, "cluster3-") && nats > 0 && f > 0 {
				ratio = fmt.Sprintf("%.2f×", f/nats)
			}
			vsOne := "–"
			if name, ok := strings.CutPrefix(s.Name, "cluster3-"); ok {
				if one := figure(find(w.ID, name)); one > 0 && figure(r) > 0 {
					vsOne = fmt.Sprintf("%.2f×", figure(r)/one)
				}
			}
			val := number(figure(r))
			if r.Error != "" {
				val = "failed: " + r.Error
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f | %s | %s |\n", w.Title, s.Title, val, lat, r.ServerCPU.MicrosPerEvent, ratio, vsOne)
		}
	}
	if len(fails) > 0 {
		b.WriteString("\n## Failover\n\nThe leader of the writes is killed with SIGKILL; writers connected to both survivors " +
			"before the kill retry every 5 ms (each attempt bounded by 300 ms) until one write is acknowledged. The figure is " +
			"the time from the kill to that acknowledgement; the killed member is then restarted on its data folder, and the " +
			"next round waits until the cluster is healthy again. Target (Goethe): p99 ≤ 3 s.\n\n")
		b.WriteString("| system | kills | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n")
		for _, f := range fails {
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.0f | %.0f |\n", f.System.Title, len(f.Millis), f.P50, f.P90, f.P99, f.Max)
			if f.Error != "" {
				fmt.Fprintf(&b, "\n%s: stopped early: %s\n\n", f.System.Name, f.Error)
			}
		}
	}
	b.WriteString("\n![throughput and failover](cluster.svg)\n\n## Machine\n\n")
	fmt.Fprintf(&b, "- %d CPUs (%s), %s GB memory, %s, %s\n", m.CPUs, m.CPUModel, m.MemoryGB, m.OS, m.Kernel)
	for _, a := range m.AppendFsync {
		fmt.Fprintf(&b, "- Disk, at the %s: %s appending %ss/s of %d B records (package fsyncrate): the rate of one "+
			"writer that syncs every record alone\n", a.When, number(a.PerSec), a.Sync, a.RecordBytes)
	}
	for _, n := range m.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if !m.Started.IsZero() {
		fmt.Fprintf(&b, "- Run: %s to %s UTC\n", m.Started.Format("2006-01-02 15:04"), m.Finished.Format("15:04"))
	}
	b.WriteString("\n| component | version |\n|---|---|\n")
	keys := make([]string, 0, len(m.Versions))
	for k := range m.Versions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %s |\n", k, m.Versions[k])
	}
	b.WriteString("\nCommands:\n\n```sh\n")
	for _, c := range m.Commands {
		b.WriteString(c + "\n")
	}
	b.WriteString("```\n\nMember n1's command line per system (ports and folders vary per run):\n\n```sh\n")
	seen := map[string]bool{}
	for _, r := range recs {
		if !seen[r.System.Name] && len(r.Server) > 0 {
			seen[r.System.Name] = true
			b.WriteString(strings.Join(quoteArgs(r.Server), " ") + "\n")
		}
	}
	b.WriteString("```\n")
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return writeClusterPlot(filepath.Join(dir, "cluster.svg"), systems, workloads, find, figure, fails)
}

// writeClusterPlot draws one bar panel per workload (events/s per system)
// and the failover times' distribution (sorted, one line per system).
func writeClusterPlot(path string, systems []peers.System, workloads []peers.Workload,
	find func(w, s string) *peers.Record, figure func(*peers.Record) float64, fails []peers.Failover) error {
	var panels []*plot.Plot
	for _, w := range workloads {
		p := plot.New()
		p.Title.Text = w.Title
		p.Title.TextStyle.Font.Size = vg.Points(8)
		p.Y.Label.Text = "events/s"
		p.Y.Min = 0
		var names []string
		for i, s := range systems {
			v := figure(find(w.ID, s.Name))
			bars, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(28))
			if err != nil {
				return err
			}
			bars.Color = clusterColor(s)
			bars.LineStyle.Width = 0
			bars.Offset = vg.Points(float64(i-len(systems)/2) * 30)
			p.Add(bars)
			p.Legend.Add(s.Name, bars)
			names = append(names, s.Name)
		}
		p.Legend.Top = true
		p.Legend.TextStyle.Font.Size = vg.Points(7)
		p.NominalX("")
		p.Y.Tick.Marker = siTicks{}
		p.Add(plotter.NewGrid())
		_ = names
		panels = append(panels, p)
	}
	if len(fails) > 0 {
		p := plot.New()
		p.Title.Text = "failover: leader SIGKILL to first ack on a survivor"
		p.Title.TextStyle.Font.Size = vg.Points(8)
		p.X.Label.Text = "kills, sorted"
		p.Y.Label.Text = "ms"
		p.Y.Min = 0
		for _, f := range fails {
			s := slices.Clone(f.Millis)
			slices.Sort(s)
			pts := make(plotter.XYs, len(s))
			for i, v := range s {
				pts[i].X, pts[i].Y = float64(i+1), v
			}
			if len(pts) == 0 {
				continue
			}
			l, sc, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			l.Color, sc.Color = clusterColor(f.System), clusterColor(f.System)
			sc.Shape = draw.CircleGlyph{}
			p.Add(l, sc)
			p.Legend.Add(f.System.Name, l, sc)
		}
		p.Legend.Top = true
		p.Legend.Left = true
		p.Legend.TextStyle.Font.Size = vg.Points(7)
		p.Add(plotter.NewGrid())
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil
	}
	cols := min(len(panels), 2)
	return savePanels(path, panels, cols, vg.Points(300), vg.Points(220))
}

func clusterColor(s peers.System) color.Color {
	if s.Peer {
		return color.RGBA{R: 0x31, G: 0x6b, B: 0xc4, A: 0xff}
	}
	return color.RGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0xff}
}
