// Command matrix runs the peer comparison: every workload of peers.Workloads
// on NATS JetStream, Redis Streams and Goethe (each engine), at matched
// durability, each run on a freshly started server on 127.0.0.1 with a
// fresh data folder. It writes one JSON record per run, and machine.json,
// into -out; cmd/render turns them into plots and a summary.
//
//	matrix -out results/e2e/run -goethe .work/bin/goethe -nats .work/bin/nats-server [-quick]
//
// Servers are stopped by their PID after each run, on SIGINT/SIGTERM, and
// (on Linux) by the kernel if matrix itself dies. A failed run is recorded
// with its error and the matrix goes on; the exit status is 1 if any run
// failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/goethe-log/goethe/bench/peers"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		out       = flag.String("out", "", "output folder for the JSON records (created)")
		work      = flag.String("work", ".work/data", "folder for the servers' data folders (each removed after its run)")
		natsBin   = flag.String("nats", ".work/bin/nats-server", "nats-server binary")
		redisBin  = flag.String("redis", "redis-server", "redis-server binary")
		goetheBin = flag.String("goethe", ".work/bin/goethe", "goethe server binary")
		engines   = flag.String("engines", "leveldb,pebble,bolt", "Goethe engines run with --sync=true")
		nosync    = flag.String("nosync", "leveldb", "Goethe engines also run with --sync=false (for information)")
		duration  = flag.Duration("duration", 8*time.Second, "length of each timed run")
		readBack  = flag.Int64("readback", 1_000_000, "events preloaded and read back by workload (c)")
		runs      = flag.Int("runs", 1, "runs of each workload on each system (interleaved)")
		quick     = flag.Bool("quick", false, "smoke run: -duration 2s -readback 100000 -runs 1 -fsync-time 500ms")
		client    = flag.String("goethe-client", peers.GoetheAsync, "how producers reach Goethe: "+shapes())
		conns     = flag.Int("goethe-connections", 1, "client connections the producers share with -goethe-client async")
		extra     = flag.String("goethe-extra-client", "", "also run Goethe leveldb --sync=true with this client shape on the single-event workloads (a, d16, e), to compare shapes")
		fsyncTime = flag.Duration("fsync-time", 2*time.Second, "how long the disk's appending-fsync rate is measured at each record size, at the start and at the end")
		systemsRE = flag.String("systems", "", "only systems whose name.durability matches this regexp")
		worksRE   = flag.String("workloads", "", "only workloads whose id matches this regexp")
		pidFile   = flag.String("pidfile", "", "append each started server's PID to this file")
		progress  = flag.Bool("progress", false, "show loadgen's progress display on stderr")
		root      = flag.String("root", "", "cut this folder from paths in the recorded command lines (default: the current folder)")
		commands  listFlag
	)
	flag.Var(&commands, "command", "a command line to record in machine.json before matrix's own (repeatable)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "matrix: -out is required")
		return 2
	}
	if *quick {
		*duration, *readBack, *runs, *fsyncTime = 2*time.Second, 100_000, 1, 500*time.Millisecond
	}
	for _, c := range []string{*client, *extra} {
		if c == "" {
			continue
		}
		if _, err := peers.GoetheOpener("127.0.0.1:0", c, *conns); err != nil {
			fmt.Fprintf(os.Stderr, "matrix: -goethe-client: %v\n", err)
			return 2
		}
	}
	if *extra == *client {
		*extra = ""
	}
	sysFilter, err := regexp.Compile(*systemsRE)
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrix: -systems:", err)
		return 2
	}
	workFilter, err := regexp.Compile(*worksRE)
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrix: -workloads:", err)
		return 2
	}
	peers.AbsPaths(natsBin, goetheBin, work, out, pidFile)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "matrix:", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *root == "" {
		*root, _ = os.Getwd()
	}
	machine := peers.StartMachine(ctx, *work, *root, *natsBin, *redisBin, *goetheBin, "matrix", os.Args[1:], "command")
	// The commands before this one (results.sh's) go before its own line.
	machine.Commands = slices.Insert(machine.Commands, len(machine.Commands)-1, commands...)
	if *quick {
		machine.Notes = append(machine.Notes, "quick mode (-quick): 2 s runs, 100,000-event read-back, 1 run: a smoke test, not figures to quote")
	}
	appendFsync := func(when string) {
		_ = machine.MeasureDisk(ctx, *work, when, *fsyncTime, os.Stdout, os.Stderr, "matrix") // printed; the run goes on
	}
	fmt.Printf("machine: %d CPUs, %s GB, dd oflag=dsync %.0f writes/s in %s\n", machine.CPUs, machine.MemoryGB, machine.FsyncPerSec, *work)
	appendFsync("start")

	r := &peers.Runner{
		NATSBin: *natsBin, RedisBin: *redisBin, GoetheBin: *goetheBin,
		WorkDir: *work, OutDir: *out, PIDFile: *pidFile, Root: *root,
	}
	if *progress {
		r.Progress = os.Stderr
	}
	var (
		systems   []peers.System
		workloads []peers.Workload
	)
	all := peers.Systems(peers.SplitList(*engines), peers.SplitList(*nosync), *client)
	if *extra != "" {
		for _, s := range all {
			if s.Engine != "" && s.Durability == peers.DurabilityFsync {
				all = append(all, peers.ExtraClient(s, *extra))
				break // the first engine (leveldb, the default) only
			}
		}
	}
	for i := range all {
		if all[i].Client == peers.GoetheAsync {
			all[i].Connections = *conns
		}
	}
	for _, s := range all {
		if sysFilter.MatchString(s.Key()) {
			systems = append(systems, s)
		}
	}
	for _, w := range peers.Workloads(*duration, *readBack) {
		if workFilter.MatchString(w.ID) {
			workloads = append(workloads, w)
		}
	}

	failed := 0
	begin := time.Now()
	for run := 1; run <= *runs; run++ {
		for _, w := range workloads {
			for _, s := range systems {
				if !peers.RunsOn(w, s) {
					continue
				}
				if ctx.Err() != nil {
					fmt.Fprintln(os.Stderr, "matrix: interrupted")
					return 1
				}
				t0 := time.Now()
				rec, err := r.Run(ctx, w, s, run)
				line(os.Stdout, rec, time.Since(t0))
				if err != nil {
					failed++
					fmt.Printf("    FAILED: %v\n", err)
				}
			}
		}
	}
	if ctx.Err() == nil {
		appendFsync("end")
	}
	machine.Finished = time.Now().UTC()
	if err := peers.WriteMachine(*out, machine); err != nil {
		fmt.Fprintln(os.Stderr, "matrix:", err)
		return 1
	}
	fmt.Printf("matrix: done in %s, %d failed, records in %s\n", time.Since(begin).Round(time.Second), failed, *out)
	if failed > 0 {
		return 1
	}
	return 0
}

func shapes() string {
	return strings.Join([]string{peers.GoetheAsync, peers.GoetheStream, peers.GoetheUnary}, ", ")
}

// line prints one run's headline figures.
func line(w io.Writer, rec peers.Record, took time.Duration) {
	res := rec.Result
	fig := ""
	switch {
	case rec.Workload.Metric == "latency":
		l := res.Consume.EndToEnd
		fig = fmt.Sprintf("%9.0f ev/s  e2e p50 %.2f p99 %.2f p99.9 %.2f ms", res.Produce.EventsPerSec,
			float64(l.P50)/1000, float64(l.P99)/1000, float64(l.P999)/1000)
	case rec.Workload.ReadBack():
		pre := 0.0
		if rec.Preload != nil {
			pre = rec.Preload.Produce.EventsPerSec
		}
		fig = fmt.Sprintf("%9.0f ev/s %8.1f MB/s  (preload %.0f ev/s)", res.Consume.EventsPerSec, res.Consume.MBPerSec, pre)
	default:
		l := res.Produce.CallLatency
		fig = fmt.Sprintf("%9.0f ev/s %8.1f MB/s  call p50 %.2f p99 %.2f ms", res.Produce.EventsPerSec, res.Produce.MBPerSec,
			float64(l.P50)/1000, float64(l.P99)/1000)
	}
	cpu := fmt.Sprintf("  cpu µs/event server %.1f client %.1f", rec.ServerCPU.MicrosPerEvent, res.ClientCPU.MicrosPerEvent)
	fmt.Fprintf(w, "r%d %-9s %-28s %s%s  [%s]\n", rec.Run, rec.Workload.ID, rec.System.Key(), fig, cpu, took.Round(100*time.Millisecond))
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, "; ") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
