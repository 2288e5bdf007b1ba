// Command cluster3 runs the cluster part of the peer comparison (issue 8):
// a 3-node NATS JetStream cluster (streams with 3 replicas, file storage,
// sync_interval always) against a 3-node Goethe cluster (3 goethe processes
// in cluster mode, --sync=true), all on 127.0.0.1, each member a process
// with its own data folder. Workloads: (a) 16 producers × 1 event, (b) one
// producer batching 1,000 events, both to the leader; (c) read back from a
// follower events preloaded through the leader. Then failover: the leader
// is killed (SIGKILL) -kills times per system, and the time to the first
// write acknowledged by a survivor is recorded as a distribution.
//
//	cluster3 -out results/e2e/cluster -goethe .work/bin/goethe -nats .work/bin/nats-server
//
// It writes one JSON record per run (cluster3-….r1.json, peers.Record),
// failover.<system>.json, machine.json, summary.md and cluster.svg into
// -out. Every process it starts is stopped by it, on failure and on
// SIGINT/SIGTERM too, and (on Linux) by the kernel if it dies.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/goethe-log/goethe/bench/peers"
	"github.com/goethe-log/goethe/bench/peers/report"
	"github.com/goethe-log/goethe/loadgen"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		out       = flag.String("out", "", "output folder (created)")
		work      = flag.String("work", ".work/data", "folder for the members' data folders (removed after each run)")
		natsBin   = flag.String("nats", ".work/bin/nats-server", "nats-server binary")
		goetheBin = flag.String("goethe", ".work/bin/goethe", "goethe server binary")
		engines   = flag.String("engines", "pebble", "Goethe engines to run a cluster of")
		duration  = flag.Duration("duration", 4*time.Second, "length of each timed run")
		readBack  = flag.Int64("readback", 200_000, "events preloaded and read back from a follower by workload (c)")
		kills     = flag.Int("kills", 20, "leader kills per system in the failover measurement (0: none)")
		systemsRE = flag.String("systems", "", "only systems whose name matches this regexp")
		worksRE   = flag.String("workloads", "", "only workloads whose id matches this regexp")
		pidFile   = flag.String("pidfile", "", "append each started server's PID to this file")
		root      = flag.String("root", "", "cut this folder from paths in the recorded command lines (default: the current folder)")
		command   = flag.String("command", "", "the command line to record in machine.json before cluster3's own")
	)
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "cluster3: -out is required")
		return 2
	}
	sysFilter, err := regexp.Compile(*systemsRE)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster3: -systems:", err)
		return 2
	}
	workFilter, err := regexp.Compile(*worksRE)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster3: -workloads:", err)
		return 2
	}
	peers.AbsPaths(natsBin, goetheBin, work, out, pidFile)
	if *root == "" {
		*root, _ = os.Getwd()
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "cluster3:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	machine := peers.CollectMachine(ctx, *work, *natsBin, "", *goetheBin)
	machine.Started = time.Now().UTC()
	if *command != "" {
		machine.Commands = append(machine.Commands, *command)
	}
	machine.Commands = append(machine.Commands, "cluster3 "+strings.ReplaceAll(strings.Join(os.Args[1:], " "), *root+string(os.PathSeparator), ""))
	if a, err := peers.MeasureAppendFsync(ctx, *work, "start", time.Second); err == nil {
		machine.AppendFsync = append(machine.AppendFsync, a...)
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		machine.Notes = append(machine.Notes, "load average at the start: "+strings.TrimSpace(string(load)))
	}

	type clusterSystem struct {
		sys    peers.System
		kind   string
		bin    string
		engine string
	}
	var systems []clusterSystem
	add := func(s clusterSystem) {
		if sysFilter.MatchString(s.sys.Name) {
			systems = append(systems, s)
		}
	}
	add(clusterSystem{sys: peers.System{Name: "cluster3-nats", Title: "NATS JetStream, 3 servers, R3 streams (sync_interval always)",
		Durability: peers.DurabilityFsync, Peer: true, Fsync: true}, kind: peers.ClusterNATS, bin: *natsBin})
	for _, e := range peers.SplitList(*engines) {
		// The single-node reference of the target "3-node (b) ≥ 0.5×
		// single-node Goethe on the same machine".
		add(clusterSystem{sys: peers.System{Name: "goethe-" + e, Title: "Goethe " + e + ", 1 node (--sync=true, async client)",
			Durability: peers.DurabilityFsync, Engine: e, Fsync: true, Client: peers.GoetheAsync, Connections: 1},
			kind: single, bin: *goetheBin, engine: e})
		add(clusterSystem{sys: peers.System{Name: "cluster3-goethe-" + e, Title: "Goethe " + e + ", 3 nodes (--sync=true, async client)",
			Durability: peers.DurabilityFsync, Engine: e, Fsync: true, Client: peers.GoetheAsync, Connections: 1},
			kind: peers.ClusterGoethe, bin: *goetheBin, engine: e})
	}
	var workloads []peers.Workload
	for _, w := range peers.Workloads(*duration, *readBack) {
		switch w.ID {
		case "a16-100B", "b-100B":
		case "c-100B":
			w.Title = fmt.Sprintf("(c) read back %d events of 100 B from a follower, from the start", *readBack)
		default:
			continue
		}
		if workFilter.MatchString(w.ID) {
			workloads = append(workloads, w)
		}
	}

	failed := 0
	var recs []peers.Record
	runs := func(w peers.Workload, s clusterSystem) bool { return s.kind != single || !w.ReadBack() }
	var fails []peers.Failover
	for _, w := range workloads {
		for _, s := range systems {
			if !runs(w, s) {
				continue
			}
			if ctx.Err() != nil {
				fmt.Fprintln(os.Stderr, "cluster3: interrupted")
				return 1
			}
			rec := runWorkload(ctx, w, s.sys, s.kind, s.bin, s.engine, *work, *pidFile, *root)
			if err := peers.WriteRecord(*out, rec); err != nil {
				fmt.Fprintln(os.Stderr, "cluster3:", err)
				return 1
			}
			recs = append(recs, rec)
			fmt.Println(line(rec))
			if rec.Error != "" {
				failed++
			}
		}
	}
	if *kills > 0 {
		for _, s := range systems {
			if s.kind == single {
				continue
			}
			if ctx.Err() != nil {
				fmt.Fprintln(os.Stderr, "cluster3: interrupted")
				return 1
			}
			fmt.Printf("failover: %s, %d kills\n", s.sys.Name, *kills)
			f := runFailover(ctx, s.sys, s.kind, s.bin, s.engine, *work, *pidFile, *root, *kills)
			if err := peers.WriteFailover(*out, f); err != nil {
				fmt.Fprintln(os.Stderr, "cluster3:", err)
				return 1
			}
			fails = append(fails, f)
			fmt.Printf("failover %-24s p50 %.0f p90 %.0f p99 %.0f max %.0f ms (%d kills)\n", s.sys.Name, f.P50, f.P90, f.P99, f.Max, len(f.Millis))
			if f.Error != "" {
				failed++
				fmt.Printf("    FAILED: %s\n", f.Error)
			}
		}
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		machine.Notes = append(machine.Notes, "load average at the end: "+strings.TrimSpace(string(load)))
	}
	machine.Finished = time.Now().UTC()
	if err := peers.WriteMachine(*out, machine); err != nil {
		fmt.Fprintln(os.Stderr, "cluster3:", err)
		return 1
	}
	if err := report.WriteClusterSummary(*out, machine, recs, fails); err != nil {
		fmt.Fprintln(os.Stderr, "cluster3: summary:", err)
		return 1
	}
	if failed > 0 {
		fmt.Printf("cluster3: %d runs failed\n", failed)
		return 1
	}
	return 0
}

// single is the kind of the single-node reference system.
const single = "single"

// runWorkload runs w on a fresh cluster of s (or a fresh single node) and
// returns its record.
func runWorkload(ctx context.Context, w peers.Workload, s peers.System, kind, bin, engine, work, pidFile, root string) (rec peers.Record) {
	rec = peers.Record{Workload: w, System: s, Run: 1}
	dir := filepath.Join(work, strings.TrimSuffix(rec.FileName(), ".json"))
	if kind == single {
		err := runSingle(ctx, &rec, bin, engine, dir, pidFile, root)
		if err != nil {
			rec.Error = err.Error()
		}
		return rec
	}
	err := func() (err error) {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c, err := peers.StartCluster3(ctx, kind, engine, bin, dir, pidFile)
		if err != nil {
			return err
		}
		defer func() {
			if serr := c.Stop(); serr != nil && err == nil {
				err = serr
			}
		}()
		rec.Server = relArgs(root, c.Args())
		topic := w.Config.Topic(0)
		if err := c.EnsureTopic(ctx, topic); err != nil {
			return err
		}
		leader, err := c.Leader(ctx, topic)
		if err != nil {
			return err
		}
		open, err := c.Opener(leader, peers.GoetheAsync)
		if err != nil {
			return err
		}
		readFrom := open
		if w.Preload != nil {
			pre, err := loadgen.Run(ctx, open, *w.Preload, nil)
			rec.Preload = &pre
			if err != nil {
				return fmt.Errorf("preload: %w", err)
			}
			// Read from a follower once it holds what was written.
			follower := (leader + 1) % peers.Cluster3Size
			if err := c.WaitHealthy(ctx, 60*time.Second); err != nil {
				return err
			}
			if err := c.WaitTopic(ctx, follower, topic, uint64(w.Preload.Events)); err != nil {
				return err
			}
			if readFrom, err = c.Opener(follower, peers.GoetheAsync); err != nil {
				return err
			}
		}
		cfg := w.Config
		cfg.Label = s.Title
		runtime.GC()
		cpu0 := clusterCPU(c)
		if w.Preload != nil {
			rec.Result, err = loadgen.Run(ctx, readFrom, cfg, nil)
		} else {
			rec.Result, err = loadgen.Run(ctx, open, cfg, nil)
		}
		events := rec.Result.Produce.Events
		if w.ReadBack() {
			events = rec.Result.Consume.Events
		}
		u, sys := clusterCPU(c).sub(cpu0)
		rec.ServerCPU = loadgen.NewCPU(u, sys, time.Since(cpu0.wall), events)
		if err == nil && rec.Result.Errors > 0 {
			err = fmt.Errorf("%d errors: %s", rec.Result.Errors, strings.Join(rec.Result.ErrorSamples, "; "))
		}
		return err
	}()
	if err != nil {
		rec.Error = err.Error()
	}
	return rec
}

// runSingle runs rec's workload on one fresh goethe server.
func runSingle(ctx context.Context, rec *peers.Record, bin, engine, dir, pidFile, root string) (err error) {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := peers.StartGoethe(ctx, peers.ServerOptions{Bin: bin, Dir: dir, Fsync: true, Engine: engine, PIDFile: pidFile})
	if err != nil {
		return err
	}
	defer func() {
		if serr := srv.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	rec.Server = relArgs(root, srv.Args)
	open, err := peers.GoetheOpener(srv.Addr, peers.GoetheAsync, 1)
	if err != nil {
		return err
	}
	cfg := rec.Workload.Config
	cfg.Label = rec.System.Title
	runtime.GC()
	u0, s0, _ := srv.CPU()
	t0 := time.Now()
	rec.Result, err = loadgen.Run(ctx, open, cfg, nil)
	u1, s1, _ := srv.CPU()
	rec.ServerCPU = loadgen.NewCPU(u1-u0, s1-s0, time.Since(t0), rec.Result.Produce.Events)
	if err == nil && rec.Result.Errors > 0 {
		err = fmt.Errorf("%d errors: %s", rec.Result.Errors, strings.Join(rec.Result.ErrorSamples, "; "))
	}
	return err
}

// runFailover measures failover on a fresh cluster of s.
func runFailover(ctx context.Context, s peers.System, kind, bin, engine, work, pidFile, root string, kills int) peers.Failover {
	dir := filepath.Join(work, "failover."+s.Key())
	f := peers.Failover{System: s}
	err := func() (err error) {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c, err := peers.StartCluster3(ctx, kind, engine, bin, dir, pidFile)
		if err != nil {
			return err
		}
		defer func() {
			if serr := c.Stop(); serr != nil && err == nil {
				err = serr
			}
		}()
		f, err = peers.MeasureFailover(ctx, c, kills, os.Stdout)
		f.System, f.Server = s, relArgs(root, f.Server)
		return err
	}()
	if err != nil {
		f.Error = err.Error()
	}
	return f
}

// cpuMark is the members' CPU time summed, and the wall clock.
type cpuMark struct {
	user, system time.Duration
	wall         time.Time
}

func clusterCPU(c *peers.Cluster3) cpuMark {
	m := cpuMark{wall: time.Now()}
	for _, s := range c.Members() {
		if s == nil {
			continue
		}
		if u, sys, err := s.CPU(); err == nil {
			m.user += u
			m.system += sys
		}
	}
	return m
}

func (m cpuMark) sub(a cpuMark) (user, system time.Duration) {
	return m.user - a.user, m.system - a.system
}

func line(rec peers.Record) string {
	res := rec.Result
	fig := ""
	if rec.Workload.ReadBack() {
		fig = fmt.Sprintf("%9.0f ev/s read", res.Consume.EventsPerSec)
	} else {
		l := res.Produce.CallLatency
		fig = fmt.Sprintf("%9.0f ev/s  call p50 %.2f p99 %.2f ms", res.Produce.EventsPerSec, float64(l.P50)/1000, float64(l.P99)/1000)
	}
	s := fmt.Sprintf("%-9s %-24s %s  server cpu µs/event %.1f", rec.Workload.ID, rec.System.Name, fig, rec.ServerCPU.MicrosPerEvent)
	if rec.Error != "" {
		s += "\n    FAILED: " + rec.Error
	}
	return s
}

// relArgs returns args with the paths under root made relative to it.
func relArgs(root string, args []string) []string {
	out := make([]string, len(args))
	prefix := strings.TrimSuffix(root, string(filepath.Separator)) + string(filepath.Separator)
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, prefix, "")
	}
	return out
}
