package peers

// Fan-out: one producer's Produce latency while followers wait at the end
// of the topic it writes (issue 9's target: with 2,000 followers, Produce
// p99 within 2x of no followers), measured on NATS JetStream, Redis
// Streams and Goethe alike. cmd/fanout drives it; this file holds the
// run, the followers' child process and the summary.

import (
	"bufio"
	"context"
	byteorder "encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/loadgen"
)

// FanoutTopic is the topic a fan-out run produces to and follows.
const FanoutTopic = "fan"

// FanoutPayloadBytes is the size of every event of a fan-out run.
const FanoutPayloadBytes = 100

// FanoutSystems are the systems a fan-out run measures, all with an fsync
// before every ack: JetStream (sync_interval always), Redis (appendfsync
// always) and Goethe on each engine (--sync=true, its default), Goethe's
// producer using client shape client.
func FanoutSystems(engines []string, client string) []System {
	var out []System
	for _, s := range Systems(engines, nil, client) {
		if s.Durability == DurabilityFsync {
			out = append(out, s)
		}
	}
	return out
}

// StartSystem starts s's server (StartNATS, StartRedis or StartGoethe)
// with data folder dir, using the binaries named.
func StartSystem(ctx context.Context, s System, natsBin, redisBin, goetheBin, dir, pidFile string) (*Server, error) {
	o := ServerOptions{Dir: dir, Fsync: s.Fsync, Engine: s.Engine, PIDFile: pidFile}
	switch {
	case s.Name == "nats":
		o.Bin = natsBin
		return StartNATS(ctx, o)
	case s.Name == "redis":
		o.Bin = redisBin
		return StartRedis(ctx, o)
	case s.Engine != "":
		o.Bin = goetheBin
		return StartGoethe(ctx, o)
	}
	return nil, fmt.Errorf("peers: unknown system %q", s.Name)
}

// FanoutNATSMaxConsumers is the max_consumers of the JetStream stream of
// a fan-out run: NATS 2.15 refuses a stream's 1,001st consumer unless the
// stream (or the account) sets a limit of its own (JSDefaultMaxConsumersPerStream,
// 1,000), and each follower is an ordered consumer.
const FanoutNATSMaxConsumers = 10_000

// FanoutPerConn is how many followers share one connection by default
// where the system multiplexes them (JetStream subscriptions, Goethe
// Consume streams), as in Goethe's BenchmarkFanoutProduceChild; a Redis
// follower blocks its connection in XREAD and has one of its own.
const FanoutPerConn = 50

// fanoutProducer opens the producer's target on system name's server at
// addr: Goethe's in client shape client; JetStream's creates the topic's
// stream with FanoutNATSMaxConsumers.
func fanoutProducer(ctx context.Context, name, addr, client string) (loadgen.Target, error) {
	switch {
	case name == "nats":
		n, err := DialNATS(ctx, "nats://"+addr)
		if err != nil {
			return nil, err
		}
		cfg := natsStreamConfig(FanoutTopic, 1)
		cfg.MaxConsumers = FanoutNATSMaxConsumers
		st, err := n.js.CreateOrUpdateStream(ctx, cfg)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("peers: nats: create stream %s: %w", cfg.Name, err)
		}
		n.streams[FanoutTopic] = st
		return n, nil
	case name == "redis":
		return DialRedis(ctx, addr)
	case strings.HasPrefix(name, "goethe-"):
		open, err := GoetheOpener(addr, client, 1)
		if err != nil {
			return nil, err
		}
		return open(ctx)
	}
	return nil, fmt.Errorf("peers: unknown system %q", name)
}

// FanoutFollowerOpener returns the Opener of followers on system name's
// server at addr, whose targets only Consume, and a function that closes
// the connections they share (call it after closing every target). A
// Redis follower has a connection of its own (loadgen's Redis target,
// XREAD BLOCK); JetStream and Goethe followers share a connection by
// perConn (each an ordered consumer of the existing stream, or a Consume
// stream).
func FanoutFollowerOpener(name, addr string, perConn int) (open loadgen.Opener, closeAll func(), err error) {
	perConn = max(perConn, 1)
	var (
		mu      sync.Mutex
		opened  int
		closers []func()
	)
	closeAll = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range closers {
			c()
		}
		closers = nil
	}
	switch {
	case name == "redis":
		return RedisOpener(addr), func() {}, nil
	case name == "nats":
		var (
			nc *NATS
			st jetstream.Stream
		)
		return func(ctx context.Context) (loadgen.Target, error) {
			mu.Lock()
			defer mu.Unlock()
			if opened%perConn == 0 {
				n, err := DialNATS(ctx, "nats://"+addr)
				if err != nil {
					return nil, err
				}
				closers = append(closers, n.nc.Close)
				sname, _ := natsNames(FanoutTopic)
				if st, err = n.js.Stream(ctx, sname); err != nil {
					return nil, fmt.Errorf("peers: nats: stream %s: %w", sname, err)
				}
				nc = n
			}
			opened++
			// A NATS of its own over the shared connection: Consume
			// finds the stream ensured (no update of its config).
			t := &NATS{nc: nc.nc, js: nc.js, streams: map[string]jetstream.Stream{FanoutTopic: st}, replicas: 1}
			return sharedTarget{t}, nil
		}, closeAll, nil
	case strings.HasPrefix(name, "goethe-"):
		var c *client.Client
		return func(ctx context.Context) (loadgen.Target, error) {
			mu.Lock()
			defer mu.Unlock()
			if opened%perConn == 0 {
				cl, err := client.Dial(addr)
				if err != nil {
					return nil, err
				}
				closers = append(closers, func() { _ = cl.Close() })
				if err := cl.Ping(ctx); err != nil {
					return nil, fmt.Errorf("goethe server at %s: %w", addr, err)
				}
				c = cl
			}
			opened++
			return goetheFollower{c}, nil
		}, closeAll, nil
	}
	return nil, nil, fmt.Errorf("peers: unknown system %q", name)
}

// sharedTarget is a follower's target over a shared connection: Close
// leaves the connection to FanoutFollowerOpener's closeAll.
type sharedTarget struct{ loadgen.Target }

// Close implements loadgen.Target.
func (sharedTarget) Close() error { return nil }

// goetheFollower is a Goethe follower: one Consume stream on a shared
// client connection.
type goetheFollower struct{ c *client.Client }

// Produce implements loadgen.Target: a follower does not produce.
func (goetheFollower) Produce(context.Context, string, [][]byte) error {
	return errors.New("peers: a fan-out follower does not produce")
}

// Consume implements loadgen.Target.
func (g goetheFollower) Consume(ctx context.Context, topic string, from loadgen.Start, follow bool, fn func([]byte) bool) error {
	opts := client.ConsumeOptions{Follow: follow}
	if from == loadgen.FromEnd {
		opts.From = client.End()
	}
	for ev, err := range g.c.Consume(ctx, topic, opts) {
		if err != nil {
			return err
		}
		if !fn(ev.Payload) {
			return nil
		}
	}
	return nil
}

// Close implements loadgen.Target; the connection is closeAll's.
func (goetheFollower) Close() error { return nil }

// putFanoutPayload writes event seq (1, 2, … over every event of a run,
// warm-up probes included) into p; timed is the event's index in the timed
// loop plus one, or 0 for a warm-up probe. The rest of p is filler.
func putFanoutPayload(p []byte, seq uint64, timed int) {
	byteorder.LittleEndian.PutUint64(p[0:8], seq)
	byteorder.LittleEndian.PutUint64(p[8:16], uint64(timed))
}

// parseFanoutPayload reads what putFanoutPayload wrote.
func parseFanoutPayload(p []byte) (seq uint64, timed int, ok bool) {
	if len(p) != FanoutPayloadBytes {
		return 0, 0, false
	}
	return byteorder.LittleEndian.Uint64(p[0:8]), int(byteorder.LittleEndian.Uint64(p[8:16])), true
}

// newFanoutPayload returns a payload of FanoutPayloadBytes with random
// filler after the header putFanoutPayload writes.
func newFanoutPayload() []byte {
	p := make([]byte, FanoutPayloadBytes)
	r := rand.New(rand.NewPCG(9, 2000))
	for i := 16; i < len(p); i++ {
		p[i] = byte(r.Uint32())
	}
	return p
}

// Percentiles are latencies in µs.
type Percentiles struct {
	P50  float64 `json:"p50_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
}

// percentilesOf returns the nearest-rank percentiles of d, which it sorts.
func percentilesOf(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(q*float64(len(d))+0.999999) - 1 // nearest rank
		return float64(d[min(max(i, 0), len(d)-1)]) / float64(time.Microsecond)
	}
	return Percentiles{P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: at(1)}
}

// FanoutRecord is one fan-out run: one system, follower count and
// interval, on a fresh server; one JSON line of the raw file.
type FanoutRecord struct {
	System    System `json:"system"`
	Followers int    `json:"followers"`
	// PerConn is how many followers shared a connection (1 on Redis).
	PerConn int `json:"per_conn"`
	// IntervalMS is the producer's pace: one Produce every IntervalMS
	// (0: the next as soon as one is acknowledged, closed loop).
	IntervalMS float64 `json:"interval_ms"`
	Round      int     `json:"round"`
	// Events is how many timed Produces (one 100 B event each) were
	// acknowledged.
	Events int `json:"events"`
	// Started is when the run began (UTC); Uptime is `uptime` just before.
	Started time.Time `json:"started"`
	Uptime  string    `json:"uptime"`
	Server  []string  `json:"server,omitempty"`
	// SetupSeconds is from the server's start until every follower had
	// received a warm-up event; Probes is how many warm-up events that took.
	SetupSeconds float64 `json:"setup_s"`
	Probes       int     `json:"probes"`
	// LoopSeconds is the timed loop's wall time.
	LoopSeconds float64 `json:"loop_s"`
	// Produce is the latency of each timed Produce, from its call to its
	// durable ack.
	Produce Percentiles `json:"produce"`
	// Delivery is, over every follower and timed event, the time from the
	// event's ack (in the producer) to the follower's receipt (in the
	// child); a receipt before the ack counts 0.
	Delivery Percentiles `json:"delivery"`
	// ServerCPU is the server process's CPU from the timed loop's start
	// until every follower had received every event, per timed event.
	ServerCPU loadgen.CPU `json:"server_cpu"`
	// ChildCPU is the followers' process's CPU (/proc/self/stat) from their
	// warm-up until they had received every event, per timed event.
	ChildCPU loadgen.CPU `json:"child_cpu"`
	Error    string      `json:"error,omitempty"`
}

// IntervalName is the record's pace for tables: "10ms", "closed loop".
func (r FanoutRecord) IntervalName() string { return IntervalName(r.IntervalMS) }

// IntervalName names a pace in ms for tables: "10ms", "closed loop".
func IntervalName(ms float64) string {
	if ms == 0 {
		return "closed loop"
	}
	return (time.Duration(ms * float64(time.Millisecond))).String()
}

// FanoutRunner runs fan-out runs.
type FanoutRunner struct {
	// NATSBin, RedisBin and GoetheBin are the server binaries.
	NATSBin, RedisBin, GoetheBin string
	// WorkDir holds the servers' data folders, each removed after its run.
	WorkDir string
	// PIDFile, when set, collects the PIDs of started servers.
	PIDFile string
	// Root, when set, is cut from paths in recorded command lines.
	Root string
	// Child is the command line of the followers' process without its
	// own flags (FanoutChildArgs adds them), e.g. nice -n 19 fanout.
	Child []string
	// Events is how many timed Produces a run makes.
	Events int
	// PerConn is how many followers share a connection where the system
	// multiplexes them (FanoutFollowerOpener; FanoutPerConn by default).
	PerConn int
	// Setup bounds opening the followers, their warm-up, and the drain
	// after the loop (each).
	Setup time.Duration
	// Log receives the child's stderr; nil discards it.
	Log io.Writer
}

// fanoutProbeEvery is the pace of the warm-up probes: one event until
// every follower received one.
const fanoutProbeEvery = 50 * time.Millisecond

// Run measures s with followers followers and one Produce per interval
// (0: closed loop): it starts the server fresh, produces the topic's first
// event, starts the followers' process, produces warm-up events until every
// follower received one, then r.Events timed ones, and waits until every
// follower received every event in order. A failure is recorded in the
// record's Error and returned.
func (r *FanoutRunner) Run(ctx context.Context, s System, followers int, interval time.Duration, round int) (FanoutRecord, error) {
	rec := FanoutRecord{System: s, Followers: followers, Round: round,
		IntervalMS: float64(interval) / float64(time.Millisecond), Started: time.Now().UTC(), Uptime: Uptime(ctx)}
	err := r.run(ctx, &rec, interval)
	if err != nil {
		rec.Error = err.Error()
	}
	return rec, err
}

func (r *FanoutRunner) run(ctx context.Context, rec *FanoutRecord, interval time.Duration) (err error) {
	s := rec.System
	t0 := time.Now()
	dir := filepath.Join(r.WorkDir, fmt.Sprintf("fanout-%s-f%d-%s-r%d", s.Name, rec.Followers, interval, rec.Round))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := StartSystem(ctx, s, r.NATSBin, r.RedisBin, r.GoetheBin, dir, r.PIDFile)
	if err != nil {
		return err
	}
	rec.Server = relArgs(r.Root, srv.Args)
	defer func() {
		if serr := srv.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	rec.PerConn = max(r.PerConn, 1)
	if s.Name == "redis" {
		rec.PerConn = 1
	}
	producer, err := fanoutProducer(ctx, s.Name, srv.Addr, s.Client)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer producer.Close()
	payload := newFanoutPayload()
	batch := [][]byte{payload}
	var seq uint64
	produce := func(timed int) error {
		seq++
		putFanoutPayload(payload, seq, timed)
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return producer.Produce(pctx, FanoutTopic, batch)
	}
	// The topic exists, with one event, before the followers start at its end.
	if err := produce(0); err != nil {
		return fmt.Errorf("first event: %w", err)
	}
	co := FanoutChildOptions{System: s.Name, Addr: srv.Addr, Followers: rec.Followers, Events: r.Events,
		PerConn: r.PerConn, Setup: r.Setup}
	child, err := startFanoutChild(r.Child, co.Args(), r.Log)
	if err != nil {
		return err
	}
	defer child.stop()
	if _, err := child.expect("ready", r.Setup); err != nil {
		return err
	}
	// Warm-up: an event every fanoutProbeEvery until every follower has
	// received one, so that every subscription is in effect.
	warmBy := time.Now().Add(r.Setup)
	for {
		if err := produce(0); err != nil {
			return fmt.Errorf("warm-up event: %w", err)
		}
		rec.Probes++
		_, err := child.expect("warm", fanoutProbeEvery)
		if err == nil {
			break
		}
		if !errors.Is(err, errNoLineYet) {
			return err
		}
		if time.Now().After(warmBy) {
			return fmt.Errorf("followers not warm after %v (%d warm-up events)", r.Setup, rec.Probes)
		}
	}
	rec.SetupSeconds = time.Since(t0).Seconds()

	lat := make([]time.Duration, 0, r.Events)
	acks := make([]int64, 0, r.Events)
	cpu0 := markServerCPU(srv)
	start := time.Now()
	for k := range r.Events {
		if interval > 0 {
			// Paced: the k-th Produce starts at start + k intervals (at once
			// if the previous one ended later).
			if d := time.Until(start.Add(time.Duration(k) * interval)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		t := time.Now()
		if err := produce(k + 1); err != nil {
			return fmt.Errorf("timed event %d: %w", k, err)
		}
		end := time.Now()
		acks = append(acks, end.UnixNano())
		lat = append(lat, end.Sub(t))
	}
	rec.LoopSeconds = time.Since(start).Seconds()
	rec.Events = len(lat)
	rec.Produce = percentilesOf(lat)
	res, err := child.finish(acks, r.Setup)
	cpu1 := markServerCPU(srv)
	if err != nil {
		return err
	}
	rec.ServerCPU = cpu0.until(cpu1, int64(rec.Events))
	rec.Delivery = res.delivery
	rec.ChildCPU = loadgen.NewCPU(res.user, res.system, res.wall, int64(rec.Events))
	return nil
}

// ParseFanoutChildArgs parses what FanoutChildOptions.Args wrote.
func ParseFanoutChildArgs(args []string) (FanoutChildOptions, error) {
	var (
		o    FanoutChildOptions
		role string
	)
	fs := flag.NewFlagSet("fanout -role followers", flag.ContinueOnError)
	fs.StringVar(&role, "role", "", "followers")
	fs.StringVar(&o.System, "system", "", "system name: nats, redis, goethe-ENGINE")
	fs.StringVar(&o.Addr, "addr", "", "the server's host:port")
	fs.IntVar(&o.Followers, "followers", 0, "how many followers")
	fs.IntVar(&o.Events, "events", 0, "timed events each follower receives")
	fs.IntVar(&o.PerConn, "per-conn", FanoutPerConn, "followers per shared connection (NATS, Goethe)")
	fs.DurationVar(&o.Setup, "setup", 2*time.Minute, "bound of each wait")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if role != "followers" || fs.NArg() > 0 {
		return o, fmt.Errorf("peers: not the followers' flags: %q", args)
	}
	return o, nil
}

// Args are the flags of the followers' process with options o (cmd/fanout
// -role followers, first).
func (o FanoutChildOptions) Args() []string {
	return []string{"-role", "followers", "-system", o.System, "-addr", o.Addr,
		"-followers", strconv.Itoa(o.Followers), "-events", strconv.Itoa(o.Events),
		"-per-conn", strconv.Itoa(o.PerConn), "-setup", o.Setup.String()}
}

// Uptime returns the output of `uptime` (the load average), trimmed.
func Uptime(ctx context.Context) string { return strings.TrimSpace(output(ctx, "uptime")) }

// The followers' process protocol, one line each on its stdout: "ready"
// once every follower's connection is open and its Consume started; "warm"
// once each received an event; then, after the producer wrote "acks" and
// the ack time (Unix ns) of every timed event on the child's stdin, "done"
// and the delivery percentiles (µs: p50 p99 p99.9 max) and the child's
// CPU (µs: user system, over wall µs) once every follower received every
// event in order; or "fail" and why at any point. The child ends when its
// stdin closes.

// errNoLineYet is expect's error when no line came within its timeout.
var errNoLineYet = errors.New("no line from the followers' process yet")

// fanoutChild is the followers' process, seen from the producer.
type fanoutChild struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string // its stdout; closed when it ends
	done  chan struct{}
	err   error // cmd.Wait's, once done is closed
}

func startFanoutChild(command, args []string, log io.Writer) (*fanoutChild, error) {
	if len(command) == 0 {
		return nil, errors.New("peers: no command for the followers' process")
	}
	cmd := exec.Command(command[0], append(slices.Clone(command[1:]), args...)...)
	cmd.Stderr = log
	cmd.SysProcAttr = sysProcAttr() // dies with this process (nice execs it: same PID)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("peers: start the followers' process: %w", err)
	}
	c := &fanoutChild{cmd: cmd, in: in, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// expect waits up to timeout for the child's next protocol line and
// requires it to be word's; it returns the line's other fields. Lines that
// are no protocol word (a library's log) are skipped. It returns
// errNoLineYet if no line came in time.
func (c *fanoutChild) expect(word string, timeout time.Duration) ([]string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				<-c.done
				return nil, fmt.Errorf("followers' process ended before %q: %v", word, c.err)
			}
			f := strings.Fields(line)
			switch {
			case len(f) == 0:
			case f[0] == word:
				return f[1:], nil
			case f[0] == "fail":
				return nil, fmt.Errorf("followers: %s", strings.TrimPrefix(line, "fail "))
			case slices.Contains([]string{"ready", "warm", "done"}, f[0]):
				return nil, fmt.Errorf("followers' process: %q, want %q", line, word)
			}
		case <-t.C:
			return nil, errNoLineYet
		}
	}
}

// childResult is what the child's "done" line says.
type childResult struct {
	delivery           Percentiles
	user, system, wall time.Duration
}

// finish hands the child the ack times and waits up to drain (plus the
// percentiles' computing) for its "done".
func (c *fanoutChild) finish(acks []int64, drain time.Duration) (childResult, error) {
	var res childResult
	line := make([]byte, 0, 20*len(acks)+8)
	line = append(line, "acks"...)
	for _, a := range acks {
		line = append(line, ' ')
		line = strconv.AppendInt(line, a, 10)
	}
	if _, err := c.in.Write(append(line, '\n')); err != nil {
		return res, fmt.Errorf("followers' process: write acks: %w", err)
	}
	f, err := c.expect("done", drain+time.Minute)
	if errors.Is(err, errNoLineYet) {
		err = fmt.Errorf("followers' process: no \"done\" within %v", drain+time.Minute)
	}
	if err != nil {
		return res, err
	}
	v := make([]float64, 7)
	if len(f) != len(v) {
		return res, fmt.Errorf("followers' process: done %v", f)
	}
	for i := range v {
		if v[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return res, fmt.Errorf("followers' process: done %v: %w", f, err)
		}
	}
	res.delivery = Percentiles{P50: v[0], P99: v[1], P999: v[2], Max: v[3]}
	us := func(x float64) time.Duration { return time.Duration(x * float64(time.Microsecond)) }
	res.user, res.system, res.wall = us(v[4]), us(v[5]), us(v[6])
	return res, nil
}

// stop closes the child's stdin (it then exits), and kills it if it has
// not exited within 10 s.
func (c *fanoutChild) stop() {
	_ = c.in.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// FanoutChildOptions configure RunFanoutFollowers.
type FanoutChildOptions struct {
	// System is the system's name (nats, redis, goethe-ENGINE) and Addr
	// its server's host:port.
	System, Addr string
	// PerConn is how many followers share a connection where the system
	// multiplexes them (FanoutFollowerOpener).
	PerConn int
	// Followers is how many followers to run; Events how many timed
	// events each must receive.
	Followers, Events int
	// Setup bounds opening the followers, their warm-up, waiting for the
	// acks and the drain (each).
	Setup time.Duration
}

// RunFanoutFollowers is the followers' process (the child side of
// FanoutRunner.Run): it opens o.Followers targets (FanoutFollowerOpener),
// each following FanoutTopic from its end, and speaks the protocol above
// on in and out. Each follower checks that it receives every event after
// its first in order, with no gap, and ends after the last timed event.
func RunFanoutFollowers(ctx context.Context, o FanoutChildOptions, in io.Reader, out io.Writer) (err error) {
	defer func() {
		if err != nil {
			fmt.Fprintf(out, "fail %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}()
	if o.Events < 1 {
		return errors.New("no timed events")
	}
	open, closeAll, err := FanoutFollowerOpener(o.System, o.Addr, o.PerConn)
	if err != nil {
		return err
	}
	defer closeAll()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	targets := make([]loadgen.Target, 0, o.Followers)
	defer func() {
		for _, t := range targets {
			_ = t.Close()
		}
	}()
	octx, ocancel := context.WithTimeout(ctx, o.Setup)
	defer ocancel()
	for i := range o.Followers {
		t, err := open(octx)
		if err != nil {
			return fmt.Errorf("follower %d: open: %w", i, err)
		}
		targets = append(targets, t)
	}
	var (
		warm   atomic.Int64
		warmed = make(chan struct{})
		failed = make(chan error, 1)
		wg     sync.WaitGroup
		recv   = make([][]int64, o.Followers)
	)
	if o.Followers == 0 {
		close(warmed)
	}
	for i, t := range targets {
		recv[i] = make([]int64, o.Events)
		wg.Go(func() {
			err := followFanout(ctx, t, recv[i], func() {
				if warm.Add(1) == int64(o.Followers) {
					close(warmed)
				}
			})
			if err != nil {
				select {
				case failed <- fmt.Errorf("follower %d: %w", i, err):
				default:
				}
				cancel()
			}
		})
	}
	fmt.Fprintln(out, "ready")
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-warmed:
	case err := <-failed:
		return err
	case <-time.After(o.Setup):
		return fmt.Errorf("%d of %d followers warm after %v", warm.Load(), o.Followers, o.Setup)
	}
	fmt.Fprintln(out, "warm")
	cpu0, wall0 := selfCPU(), time.Now()
	acksC := make(chan []int64, 1)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(nil, 64<<20)
		if !sc.Scan() {
			readErr <- fmt.Errorf("stdin ended before the acks: %v", sc.Err())
			return
		}
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "acks" {
			readErr <- fmt.Errorf("want acks, got %.40q", sc.Text())
			return
		}
		a := make([]int64, 0, len(f)-1)
		for _, s := range f[1:] {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				readErr <- err
				return
			}
			a = append(a, v)
		}
		acksC <- a
	}()
	var acks []int64
	select {
	case acks = <-acksC:
	case err := <-readErr:
		return err
	case err := <-failed:
		return err
	}
	select {
	case <-finished:
	case err := <-failed:
		return err
	case <-time.After(o.Setup):
		return fmt.Errorf("followers did not receive %d events each within %v of the acks", o.Events, o.Setup)
	}
	select {
	case err := <-failed:
		return err
	default:
	}
	cpu1, wall := selfCPU(), time.Since(wall0)
	if len(acks) != o.Events {
		return fmt.Errorf("%d acks for %d events", len(acks), o.Events)
	}
	d := make([]time.Duration, 0, o.Followers*o.Events)
	for _, r := range recv {
		for k, t := range r {
			d = append(d, time.Duration(max(0, t-acks[k])))
		}
	}
	p := percentilesOf(d)
	fmt.Fprintf(out, "done %.1f %.1f %.1f %.1f %d %d %d\n", p.P50, p.P99, p.P999, p.Max,
		(cpu1.user - cpu0.user).Microseconds(), (cpu1.system - cpu0.system).Microseconds(), wall.Microseconds())
	return nil
}

// followFanout follows FanoutTopic on t from its end until it has received
// the last timed event, recording when it received timed event k in
// recv[k]; first is called on its first event. Every event after the first
// must be the next of the run (no gap, no repeat, in order).
func followFanout(ctx context.Context, t loadgen.Target, recv []int64, first func()) error {
	var (
		prev uint64
		bad  error
		last bool
	)
	err := t.Consume(ctx, FanoutTopic, loadgen.FromEnd, true, func(p []byte) bool {
		now := time.Now().UnixNano()
		seq, timed, ok := parseFanoutPayload(p)
		switch {
		case !ok:
			bad = fmt.Errorf("a %d B payload, want %d B", len(p), FanoutPayloadBytes)
		case prev == 0:
			first()
		case seq != prev+1:
			bad = fmt.Errorf("event %d after %d", seq, prev)
		}
		if bad != nil {
			return false
		}
		prev = seq
		if timed > 0 {
			if timed > len(recv) {
				bad = fmt.Errorf("timed event %d of %d", timed, len(recv))
				return false
			}
			recv[timed-1] = now
			last = timed == len(recv)
		}
		return !last
	})
	switch {
	case bad != nil:
		return bad
	case err != nil:
		return err
	case !last:
		return errors.New("consume ended before the last event")
	}
	return nil
}

// cpuTimes is a process's user and system CPU time.
type cpuTimes struct{ user, system time.Duration }

// selfCPU is this process's CPU time so far, all threads (ProcCPU: 10 ms
// ticks, which a run's seconds of receiving dwarf); zero where it cannot
// be read.
func selfCPU() cpuTimes {
	u, s, _ := ProcCPU(os.Getpid())
	return cpuTimes{u, s}
}

// WriteFanoutRecord appends rec as one JSON line to path.
func WriteFanoutRecord(path string, rec FanoutRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return appendLine(path, string(b))
}

// ReadFanoutRecords reads the JSON lines of path.
func ReadFanoutRecords(path string) ([]FanoutRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []FanoutRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r FanoutRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("peers: %s: %w", path, err)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// fanoutKey groups a fan-out run's records over rounds.
type fanoutKey struct {
	system     string
	intervalMS float64
	followers  int
}

// median returns the median of x (the mean of the middle two for an even
// count), or NaN for none.
func median(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(x))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// FanoutMedian returns the median over rounds of f of the successful
// records of system at intervalMS with followers followers, or NaN if
// there is none.
func FanoutMedian(recs []FanoutRecord, system string, intervalMS float64, followers int, f func(FanoutRecord) float64) float64 {
	var x []float64
	for _, r := range recs {
		if r.Error == "" && r.System.Name == system && r.IntervalMS == intervalMS && r.Followers == followers {
			x = append(x, f(r))
		}
	}
	return median(x)
}

// FanoutSummary renders records as markdown: per system and interval, the
// medians over rounds of Produce p99 with no followers and with the most
// followers, their ratio (and each round's), the other percentiles, CPU
// per event of server and followers' process, and the delivery latency;
// then the failed runs, if any. Failed runs count in no median.
func FanoutSummary(recs []FanoutRecord) string {
	var (
		systems   []string
		titles    = map[string]string{}
		intervals []float64
		most      int
		ok        = map[fanoutKey][]FanoutRecord{}
		failed    []FanoutRecord
	)
	for _, r := range recs {
		if !slices.Contains(systems, r.System.Name) {
			systems = append(systems, r.System.Name)
			titles[r.System.Name] = r.System.Title
		}
		if !slices.Contains(intervals, r.IntervalMS) {
			intervals = append(intervals, r.IntervalMS)
		}
		most = max(most, r.Followers)
		if r.Error != "" {
			failed = append(failed, r)
			continue
		}
		k := fanoutKey{r.System.Name, r.IntervalMS, r.Followers}
		ok[k] = append(ok[k], r)
	}
	med := func(k fanoutKey, f func(FanoutRecord) float64) float64 {
		return FanoutMedian(recs, k.system, k.intervalMS, k.followers, f)
	}
	ms := func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return strconv.FormatFloat(v/1000, 'f', 2, 64)
	}
	num := func(v float64, prec int) string {
		if math.IsNaN(v) {
			return "–"
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### Produce latency, %d followers against none (ms, medians over rounds)\n\n", most)
	fmt.Fprintf(&b, "| system | interval | p99 @0 | p99 @%d | ratio | ratio per round | p50 @0 | p50 @%d | p99.9 @%d | max @%d | runs ok @0 / @%d |\n",
		most, most, most, most, most)
	b.WriteString("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|\n")
	for _, s := range systems {
		for _, iv := range intervals {
			k0, kn := fanoutKey{s, iv, 0}, fanoutKey{s, iv, most}
			p99 := func(r FanoutRecord) float64 { return r.Produce.P99 }
			a, z := med(k0, p99), med(kn, p99)
			var rounds []string
			for _, rn := range ok[kn] {
				for _, r0 := range ok[k0] {
					if r0.Round == rn.Round && r0.Produce.P99 > 0 {
						rounds = append(rounds, fmt.Sprintf("%.2f", rn.Produce.P99/r0.Produce.P99))
					}
				}
			}
			ratio := "–"
			if a > 0 && !math.IsNaN(z) {
				ratio = fmt.Sprintf("**%.2f×**", z/a)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d / %d |\n",
				s, IntervalName(iv), ms(a), ms(z), ratio, strings.Join(rounds, ", "),
				ms(med(k0, func(r FanoutRecord) float64 { return r.Produce.P50 })),
				ms(med(kn, func(r FanoutRecord) float64 { return r.Produce.P50 })),
				ms(med(kn, func(r FanoutRecord) float64 { return r.Produce.P999 })),
				ms(med(kn, func(r FanoutRecord) float64 { return r.Produce.Max })),
				len(ok[k0]), len(ok[kn]))
		}
	}
	fmt.Fprintf(&b, "\n### CPU per event and delivery, %d followers (medians over rounds)\n\n", most)
	fmt.Fprintf(&b, "| system | interval | server µs/event @0 | server µs/event @%d | server cores @%d | followers' process µs/event @%d | its cores | delivery p50 (ms) | delivery p99 (ms) | setup s |\n",
		most, most, most)
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range systems {
		for _, iv := range intervals {
			k0, kn := fanoutKey{s, iv, 0}, fanoutKey{s, iv, most}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, IntervalName(iv),
				num(med(k0, func(r FanoutRecord) float64 { return r.ServerCPU.MicrosPerEvent }), 0),
				num(med(kn, func(r FanoutRecord) float64 { return r.ServerCPU.MicrosPerEvent }), 0),
				num(med(kn, func(r FanoutRecord) float64 { return r.ServerCPU.Cores }), 2),
				num(med(kn, func(r FanoutRecord) float64 { return r.ChildCPU.MicrosPerEvent }), 0),
				num(med(kn, func(r FanoutRecord) float64 { return r.ChildCPU.Cores }), 2),
				ms(med(kn, func(r FanoutRecord) float64 { return r.Delivery.P50 })),
				ms(med(kn, func(r FanoutRecord) float64 { return r.Delivery.P99 })),
				num(med(kn, func(r FanoutRecord) float64 { return r.SetupSeconds }), 1))
		}
	}
	b.WriteString("\nSystems: ")
	for i, s := range systems {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s = %s", s, titles[s])
	}
	b.WriteString(".\n")
	if len(failed) > 0 {
		b.WriteString("\n### Failed runs (in no median)\n\n| system | followers | interval | round | error |\n|---|---:|---|---:|---|\n")
		for _, r := range failed {
			fmt.Fprintf(&b, "| %s | %d | %s | %d | %s |\n", r.System.Name, r.Followers, r.IntervalName(), r.Round,
				strings.ReplaceAll(r.Error, "|", "\\|"))
		}
	}
	return b.String()
}
