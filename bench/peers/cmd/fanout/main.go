// Command fanout measures one producer's Produce latency with followers
// waiting at the end of the topic, on NATS JetStream (sync_interval
// always), Redis Streams (appendfsync always) and Goethe (--sync=true), in
// one run on one machine: issue 9's target, "with 2,000 followers at the
// end of a topic, Produce p99 within 2x of no followers", read against the
// peers. It writes one JSON line per run into OUT/raw.jsonl, machine.json
// and summary.md.
//
//	fanout -out results/e2e/fanout [-rounds 3] [-events 1500] [-followers 0,2000] [-intervals 10ms,40ms,0]
//	fanout -out results/e2e/fanout -render     # summary.md again from raw.jsonl and machine.json
//
// Each run starts its server fresh (peers.StartSystem), produces the
// topic's first event, starts the followers in a child process at nice 19
// (this command again, -role followers: -per-conn followers to a
// connection on JetStream and Goethe, one each on Redis), produces warm-up events until every follower received
// one, then -events timed events, one 100 B event per Produce, each paced
// -interval after the previous one's start (0: closed loop), each waiting
// for its durable ack; see peers.FanoutRunner. Every round runs each
// interval on each system at each follower count, the systems' order
// rotating from round to round. The disk's appending-fsync rate is
// measured at the start and at the end.
//
// Servers and the child are stopped by PID after each run and die with
// this process (Pdeathsig); every wait is bounded by -setup.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goethe-log/goethe/bench/peers"
)

func main() {
	if len(os.Args) > 1 && strings.TrimLeft(os.Args[1], "-") == "role" {
		os.Exit(followers(os.Args[1:]))
	}
	os.Exit(run())
}

// followers is the child process: -role followers and the flags of
// peers.FanoutChildOptions.Args.
func followers(args []string) int {
	o, err := peers.ParseFanoutChildArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := peers.RunFanoutFollowers(ctx, o, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fanout followers:", err)
		return 1
	}
	return 0
}

func run() int {
	var (
		out       = flag.String("out", "", "output folder (created): raw.jsonl, machine.json, summary.md")
		work      = flag.String("work", ".work/data", "folder for the servers' data folders (each removed after its run)")
		natsBin   = flag.String("nats", ".work/bin/nats-server", "nats-server binary")
		redisBin  = flag.String("redis", "redis-server", "redis-server binary")
		goetheBin = flag.String("goethe", ".work/bin/goethe", "goethe server binary")
		engines   = flag.String("engines", "leveldb", "Goethe engines, each with --sync=true")
		client    = flag.String("goethe-client", peers.GoetheAsync, "how the producer reaches Goethe: async, stream or unary")
		systemsF  = flag.String("systems", "", "only these systems, comma-separated (nats, redis, goethe-leveldb, …)")
		follows   = flag.String("followers", "0,2000", "follower counts, comma-separated")
		intervals = flag.String("intervals", "10ms,40ms,0", "producer paces, comma-separated (0: closed loop)")
		events    = flag.Int("events", 1500, "timed Produces per run")
		rounds    = flag.Int("rounds", 3, "rounds; each runs every system, follower count and interval once")
		setup     = flag.Duration("setup", 2*time.Minute, "bound of each wait: followers opening, warm-up, drain")
		maxTime   = flag.Duration("max-time", 0, "start no run after this long (0: no bound); the summary says so")
		nice      = flag.Int("nice", 19, "the followers' process's nice value")
		perConn   = flag.Int("per-conn", peers.FanoutPerConn, "followers sharing one connection on NATS and Goethe (Redis: 1, XREAD BLOCK holds it)")
		fsyncTime = flag.Duration("fsync-time", 2*time.Second, "how long the disk's appending-fsync rate is measured at each record size, at the start and at the end")
		pidFile   = flag.String("pidfile", "", "append each started server's PID to this file")
		root      = flag.String("root", "", "cut this folder from paths in recorded command lines (default: the current folder)")
		render    = flag.Bool("render", false, "only write OUT/summary.md again from OUT/raw.jsonl and OUT/machine.json")
	)
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "fanout: -out is required")
		return 2
	}
	if *render {
		m, err := peers.ReadMachine(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fanout:", err)
			return 1
		}
		return writeSummary(*out, m)
	}
	counts, err := ints(*follows)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout: -followers:", err)
		return 2
	}
	paces, err := durations(*intervals)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout: -intervals:", err)
		return 2
	}
	if _, err := peers.GoetheOpener("127.0.0.1:0", *client, 1); err != nil {
		fmt.Fprintln(os.Stderr, "fanout: -goethe-client:", err)
		return 2
	}
	var systems []peers.System
	for _, s := range peers.FanoutSystems(peers.SplitList(*engines), *client) {
		if *systemsF == "" || slices.Contains(peers.SplitList(*systemsF), s.Name) {
			systems = append(systems, s)
		}
	}
	if len(systems) == 0 || len(counts) == 0 || len(paces) == 0 || *events < 1 || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "fanout: nothing to run")
		return 2
	}
	peers.AbsPaths(natsBin, goetheBin, work, out, pidFile)
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		return 1
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		return 1
	}
	raw := filepath.Join(*out, "raw.jsonl")
	if _, err := os.Stat(raw); err == nil {
		fmt.Fprintf(os.Stderr, "fanout: %s exists: move it away first\n", raw)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *root == "" {
		*root, _ = os.Getwd()
	}
	machine := peers.StartMachine(ctx, *work, *root, *natsBin, *redisBin, *goetheBin, "fanout", os.Args[1:])
	machine.Notes = append(machine.Notes, "load average before the run: "+peers.Uptime(ctx))
	fmt.Printf("machine: %d CPUs (%s), %s GB, %s, dd oflag=dsync %.0f writes/s in %s\n",
		machine.CPUs, machine.CPUModel, machine.MemoryGB, machine.Kernel, machine.FsyncPerSec, *work)
	appendFsync := func(when string) {
		_ = machine.MeasureDisk(ctx, *work, when, *fsyncTime, os.Stdout, os.Stderr, "fanout") // printed; the run goes on
	}
	appendFsync("start")

	r := &peers.FanoutRunner{
		NATSBin: *natsBin, RedisBin: *redisBin, GoetheBin: *goetheBin,
		WorkDir: *work, PIDFile: *pidFile, Root: *root,
		Child:  []string{"nice", "-n", strconv.Itoa(*nice), exe},
		Events: *events, PerConn: *perConn, Setup: *setup, Log: os.Stderr,
	}
	failed, done, stopped := 0, 0, false
	begin := time.Now()
rounds:
	for round := 1; round <= *rounds; round++ {
		for _, pace := range paces {
			for i := range systems {
				s := systems[(i+round-1)%len(systems)] // rotate the order per round
				for j := range counts {
					n := counts[j]
					if round%2 == 0 { // and the follower counts' order
						n = counts[len(counts)-1-j]
					}
					if ctx.Err() != nil {
						fmt.Fprintln(os.Stderr, "fanout: interrupted")
						stopped = true
						break rounds
					}
					if *maxTime > 0 && time.Since(begin) > *maxTime {
						stopped = true
						break rounds
					}
					t0 := time.Now()
					rec, err := r.Run(ctx, s, n, pace, round)
					if werr := peers.WriteFanoutRecord(raw, rec); werr != nil {
						fmt.Fprintln(os.Stderr, "fanout:", werr)
						return 1
					}
					done++
					fmt.Printf("r%d %-15s followers %5d %-11s produce p50 %6.2f p99 %7.2f max %7.2f ms  deliver p99 %7.2f ms  cpu µs/event server %6.0f child %6.0f  [%s]\n",
						round, s.Name, n, rec.IntervalName(), rec.Produce.P50/1000, rec.Produce.P99/1000, rec.Produce.Max/1000,
						rec.Delivery.P99/1000, rec.ServerCPU.MicrosPerEvent, rec.ChildCPU.MicrosPerEvent, time.Since(t0).Round(100*time.Millisecond))
					if err != nil {
						failed++
						fmt.Printf("    FAILED: %v\n", err)
					}
				}
			}
		}
	}
	if stopped {
		machine.Notes = append(machine.Notes, fmt.Sprintf("stopped after %d runs of %d (-max-time %v or a signal): fewer rounds than asked",
			done, *rounds*len(paces)*len(systems)*len(counts), *maxTime))
	}
	if ctx.Err() == nil {
		appendFsync("end")
	}
	machine.Notes = append(machine.Notes, "load average after the run: "+peers.Uptime(context.WithoutCancel(ctx)))
	machine.Finished = time.Now().UTC()
	if err := peers.WriteMachine(*out, machine); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		return 1
	}
	if code := writeSummary(*out, machine); code != 0 {
		return code
	}
	fmt.Printf("fanout: %d runs in %s, %d failed; %s\n", done, time.Since(begin).Round(time.Second), failed, *out)
	if failed > 0 {
		return 1
	}
	return 0
}

// writeSummary writes dir/summary.md from dir/raw.jsonl and m.
func writeSummary(dir string, m peers.Machine) int {
	recs, err := peers.ReadFanoutRecords(filepath.Join(dir, "raw.jsonl"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		return 1
	}
	var b strings.Builder
	b.WriteString("# Fan-out: Produce latency with followers at the end of the topic, Goethe against its peers\n\n")
	b.WriteString("One producer, one 100 B event per Produce, each waiting for its durable ack; F followers at the end of the topic ")
	b.WriteString("in a child process at nice 19 (JetStream and Goethe followers 50 to a connection by default, `per_conn` in raw.jsonl; Redis followers one each, blocked in XREAD), every follower checking it receives every event in order. ")
	b.WriteString("Each run on a freshly started server on 127.0.0.1; systems and follower counts interleaved in every round. ")
	b.WriteString("Issue 9's target: Produce p99 with 2,000 followers within 2× of none. Raw runs: `raw.jsonl`; machine facts: `machine.json`.\n\n")
	b.WriteString("## Command\n\n```sh\n")
	for _, c := range m.Commands {
		b.WriteString(c + "\n")
	}
	b.WriteString("```\n\n## Machine\n\n")
	fmt.Fprintf(&b, "- %d CPUs, %s; %s GB; %s; %s\n", m.CPUs, m.CPUModel, m.MemoryGB, m.Kernel, m.OS)
	fmt.Fprintf(&b, "- data folders on %s; `%s`: %.0f writes/s\n", m.DataFS, m.FsyncCommand, m.FsyncPerSec)
	for _, a := range m.AppendFsync {
		fmt.Fprintf(&b, "- disk at the %s: %s\n", a.When, a.Result)
	}
	fmt.Fprintf(&b, "- started %s, finished %s\n", m.Started.Format(time.RFC3339), m.Finished.Format(time.RFC3339))
	var keys []string
	for k := range m.Versions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %s\n", k, m.Versions[k])
	}
	for _, n := range m.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("\n## Results\n\n")
	b.WriteString(peers.FanoutSummary(recs))
	b.WriteString("\n![Produce p99 with no followers and with the most, per system and interval](fanout.svg)\n")
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		return 1
	}
	if err := writePlot(filepath.Join(dir, "fanout.svg"), recs); err != nil {
		fmt.Fprintln(os.Stderr, "fanout: plot:", err)
		return 1
	}
	return 0
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range peers.SplitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func durations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range peers.SplitList(s) {
		if f == "0" {
			out = append(out, 0)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("bad interval %q", f)
		}
		out = append(out, d)
	}
	return out, nil
}
