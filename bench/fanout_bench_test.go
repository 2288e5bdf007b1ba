package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/server"
	"github.com/goethe-log/goethe/store"
)

// fanoutFollowers are the follower counts of the fan-out benchmarks: how
// the write path's latency grows with the readers parked at the end of the
// topic it writes (issue 9, item 5: 2,000 followers took Produce from ~1 ms
// to ~103 ms).
var fanoutFollowers = []int{0, 10, 100, 1000, 2000}

// fanoutStreamsPerConn is how many follower streams share one client
// connection in BenchmarkFanoutProduce: 2,000 followers on 40 connections,
// below any per-connection stream cap the server sets.
const fanoutStreamsPerConn = 50

// fanoutDrain bounds the wait for every follower to have received every
// event once the timed loop ends.
const fanoutDrain = 2 * time.Minute

// latencies records one duration per op and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	at := func(q float64) float64 {
		return float64(l[min(len(l)-1, int(q*float64(len(l))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// followerSet counts what followers received and checks that each saw the
// topic's events in order, with dense seqs. Use newFollowerSet.
type followerSet struct {
	received atomic.Int64
	wake     chan struct{} // holds a token after a receipt or a failure
	mu       sync.Mutex
	err      error
}

func newFollowerSet() *followerSet { return &followerSet{wake: make(chan struct{}, 1)} }

// add counts n events received and wakes await.
func (f *followerSet) add(n int64) {
	f.received.Add(n)
	f.signal()
}

func (f *followerSet) signal() {
	select {
	case f.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

func (f *followerSet) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	f.signal()
}

func (f *followerSet) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// await waits until n events in all were received, or fails b: on a
// follower's failure, or after fanoutDrain.
func (f *followerSet) await(b *testing.B, n int64) {
	deadline := time.NewTimer(fanoutDrain)
	defer deadline.Stop()
	for f.received.Load() < n {
		if err := f.failed(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-f.wake:
		case <-deadline.C:
			b.Fatalf("followers received %d events of %d within %v", f.received.Load(), n, fanoutDrain)
		}
	}
	if err := f.failed(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFanoutAppend measures Store.Append while followers wait at the
// end of the topic: each follower is a goroutine doing what the server's
// Consume does with follow on (Read a page; at the end, Wait), without
// gRPC. One op is one fsync'd Append of one 100 B event by one appender;
// the next starts when it returns, while the followers still read. p50-µs
// and p99-µs are the Append latencies.
func BenchmarkFanoutAppend(b *testing.B) {
	for _, eng := range engines.Names {
		for _, n := range fanoutFollowers {
			b.Run(fmt.Sprintf("engine=%s/sync=true/size=100B/followers=%d", eng, n), func(b *testing.B) {
				benchFanoutAppend(b, eng, n)
			})
		}
	}
}

func benchFanoutAppend(b *testing.B, eng string, followers int) {
	st := openStore(b, eng, b.TempDir(), true)
	ctx, cancel := context.WithCancel(context.Background())
	events := []store.Event{{Payload: payloadOf(100)}}
	// The topic exists and followers start at its end.
	res, err := st.Append(ctx, "fan", events, store.ExpectAny)
	if err != nil {
		b.Fatal(err)
	}
	fs := newFollowerSet()
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	for range followers {
		// A context of its own, as each Consume stream has.
		ctx, cancel := context.WithCancel(ctx)
		wg.Go(func() {
			defer cancel()
			pos, seq := store.After(res.FirstID), res.FirstSeq
			for {
				p, err := st.Read("fan", pos, 0)
				if err != nil {
					fs.fail(err)
					return
				}
				if len(p.Events) == 0 {
					if err := st.Wait(ctx, "fan", pos); err != nil {
						if !errors.Is(err, context.Canceled) {
							fs.fail(err)
						}
						return
					}
					continue
				}
				for i := range p.Events {
					if seq++; p.Events[i].Seq != seq {
						fs.fail(fmt.Errorf("follower got seq %d, want %d", p.Events[i].Seq, seq))
						return
					}
				}
				fs.add(int64(len(p.Events)))
				pos = p.Next
			}
		})
	}
	// A warm-up append that every follower receives: all are running.
	if _, err := st.Append(ctx, "fan", events, store.ExpectAny); err != nil {
		b.Fatal(err)
	}
	fs.await(b, int64(followers))
	lat := make(latencies, 0, b.N)
	b.ReportAllocs()
	cpu := cpuClock()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := st.Append(ctx, "fan", events, store.ExpectAny); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportCPU(b, cpu, b.N)
	lat.report(b)
	fs.await(b, int64(followers)*int64(b.N+1))
}

// fanoutGates are the fan-out settings the Produce benchmarks run with:
// rounds (the server's default: one goroutine per topic sends the new
// events to its followers at the end, server/consume_rounds.go), and each
// follower sending for itself (server.Options.FanoutSolo) with the gate
// on (GOMAXPROCS-1 senders at once) or off (more senders than followers).
var fanoutGates = []struct {
	name    string
	senders int
	solo    bool
}{{"rounds", 0, false}, {"on", 0, true}, {"off", fanoutGateOff, true}}

// fanoutIntervals are the producer's paces in the Produce benchmarks: 0,
// the next Produce as soon as one returns (the write path's latency under
// the most load the followers let through: followers that fall behind get
// several events per message); one Produce every 40 ms (one event per
// message: a rate that 2,000 followers keep up with on 2 cores in every
// mode, at 4–27 ms of CPU per event, so that the delivery latencies
// compare at the same load); and one every 10 ms, which saturates the
// machine when each follower sends for itself, not with rounds.
var fanoutIntervals = []time.Duration{0, 10 * time.Millisecond, 40 * time.Millisecond}

// fanoutGateOff is a FanoutSenders that no follower count here reaches:
// the gate never makes a follower wait.
const fanoutGateOff = 1 << 20

// BenchmarkFanoutProduce is BenchmarkFanoutAppend through a loopback gRPC
// server: followers are Consume streams with follow on, started at the end
// of the topic (fanoutStreamsPerConn per client connection), and one op is
// one Produce of one 100 B event on a connection of its own. Client and
// server share the process, so the followers' receiving costs CPU beside
// the server's sending (BenchmarkFanoutProduceChild moves it out).
// p50-µs and p99-µs are the Produce latencies; deliver-p50-µs and
// deliver-p99-µs the follower delivery latencies: from the Produce's
// acknowledgement to each follower's receipt of its event (0 for a
// receipt before the acknowledgement), over every follower and event.
func BenchmarkFanoutProduce(b *testing.B) { runFanoutProduce(b, fanoutInProcess) }

// fanoutWhere says where a fan-out benchmark's followers run.
type fanoutWhere struct {
	child bool   // in a child process at nice 19, not the benchmark's
	pin   string // if not empty, the CPU list (taskset -c) the child runs on
	wire  bool   // wire followers (fanout_wire_test.go), not the Go client
}

// fanoutInProcess: the followers are Go clients in the benchmark's process.
var fanoutInProcess = fanoutWhere{}

// runFanoutProduce runs benchFanoutProduce over engines, follower counts,
// gates and intervals, with the followers where says.
func runFanoutProduce(b *testing.B, where fanoutWhere) {
	for _, eng := range engines.Names {
		for _, n := range fanoutFollowers {
			for _, g := range fanoutGates {
				for _, iv := range fanoutIntervals {
					b.Run(fmt.Sprintf("engine=%s/sync=true/size=100B/followers=%d/gate=%s/interval=%v", eng, n, g.name, iv), func(b *testing.B) {
						benchFanoutProduce(b, eng, n, g.senders, g.solo, iv, where)
					})
				}
			}
		}
	}
}

// BenchmarkFanoutProduceChild is BenchmarkFanoutProduce with the
// followers in a child process (this test binary again, running
// TestFanoutChild) started with the lowest CPU priority (nice 19): as
// followers on other machines would, their receiving does not take the
// server's processors from it, except what the scheduler gives a niced
// process. The child checks that every follower received every event in
// order with dense seqs, and computes the delivery latencies from the
// acknowledgement times the benchmark hands it.
func BenchmarkFanoutProduceChild(b *testing.B) {
	if _, err := exec.LookPath("nice"); err != nil {
		b.Skip("no nice command:", err)
	}
	runFanoutProduce(b, fanoutWhere{child: true})
}

// BenchmarkFanoutProduceChildOneCPU is BenchmarkFanoutProduceChild with
// the child bound to the machine's last CPU (taskset): the followers'
// receiving, which at one Produce per 10 ms needs more than a CPU of its
// own (child-cpu-µs/event), can then take at most one of the CPUs the
// server runs on, still one more than followers on other machines would
// take. Skipped without taskset or with a single CPU.
func BenchmarkFanoutProduceChildOneCPU(b *testing.B) {
	for _, tool := range []string{"nice", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skip("no "+tool+" command:", err)
		}
	}
	if runtime.NumCPU() < 2 {
		b.Skip("one CPU: nothing to keep the followers off")
	}
	runFanoutProduce(b, fanoutWhere{child: true, pin: strconv.Itoa(runtime.NumCPU() - 1)})
}

// BenchmarkFanoutProduceWire is BenchmarkFanoutProduceChild with wire
// followers: the child's streams are read by one goroutine per connection
// that decodes only each event's seq (fanout_wire_test.go), so the
// followers' receiving takes a fraction of the CPU the Go client's takes
// (child-cpu-µs/event), as followers on other machines would take none of
// this machine's. The server serves them as any Consume stream.
func BenchmarkFanoutProduceWire(b *testing.B) {
	if _, err := exec.LookPath("nice"); err != nil {
		b.Skip("no nice command:", err)
	}
	runFanoutProduce(b, fanoutWhere{child: true, wire: true})
}

// fanoutClients are a benchmark's followers, wherever they run.
type fanoutClients interface {
	// awaitWarm waits until every follower received the first event.
	awaitWarm(b *testing.B)
	// finish waits until every follower received events events in all,
	// in order with dense seqs, and returns the delivery latencies'
	// p50 and p99 in µs; acks[k] is when event k was acknowledged (Unix
	// nanoseconds).
	finish(b *testing.B, acks []int64) (p50, p99 float64)
}

func benchFanoutProduce(b *testing.B, eng string, followers, senders int, solo bool, interval time.Duration, where fanoutWhere) {
	sopts := store.DefaultOptions()
	opts := server.DefaultOptions()
	opts.FanoutSenders = senders
	opts.FanoutSolo = solo
	if senders == 0 {
		opts.FanoutSenders = server.DefaultFanoutSenders()
	}
	addr, _ := testutil.StartServer(b, eng, b.TempDir(), sopts, opts)
	producer := dial(b, addr)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	events := []client.EventData{{Payload: payloadOf(100)}}
	if _, err := producer.Produce(ctx, "fan", events); err != nil {
		b.Fatal(err)
	}
	heap0 := liveHeap()
	var fc fanoutClients
	if where.child {
		fc = startFanoutChild(b, addr, followers, b.N+1, where)
	} else {
		fc = startFanoutInProcess(b, ctx, addr, followers, b.N+1)
	}
	acks := make([]int64, 0, b.N+1)
	if _, err := producer.Produce(ctx, "fan", events); err != nil {
		b.Fatal(err)
	}
	acks = append(acks, time.Now().UnixNano())
	fc.awaitWarm(b)
	// What a follower at the end holds while it waits: its stream (on
	// both sides when they share the process) and its connection's share
	// (goroutine stacks are not counted). Reported after the loop:
	// ResetTimer drops metrics reported before it.
	heapPer := float64(liveHeap()-heap0) / float64(max(followers, 1))
	lat := make(latencies, 0, b.N)
	b.ReportAllocs()
	cpu := cpuClock()
	b.ResetTimer()
	t0 := time.Now()
	for k := range b.N {
		if interval > 0 {
			// Paced: the k-th Produce starts at t0 + k intervals (at
			// once if the previous one ended later).
			time.Sleep(time.Until(t0.Add(time.Duration(k) * interval)))
		}
		start := time.Now()
		if _, err := producer.Produce(ctx, "fan", events); err != nil {
			b.Fatal(err)
		}
		end := time.Now()
		acks = append(acks, end.UnixNano())
		lat = append(lat, end.Sub(start))
	}
	b.StopTimer()
	reportCPU(b, cpu, b.N)
	lat.report(b)
	if followers > 0 {
		if !where.child {
			b.ReportMetric(heapPer, "heap-B/follower")
		}
		p50, p99 := fc.finish(b, acks)
		b.ReportMetric(p50, "deliver-p50-µs")
		b.ReportMetric(p99, "deliver-p99-µs")
		if c, ok := fc.(*childFollowers); ok {
			// The followers' receiving, which shares the machine's CPUs
			// with the server here (remote followers would not).
			b.ReportMetric(c.cpuMicros/float64(b.N), "child-cpu-µs/event")
		}
	}
}

// inProcessFollowers are followers on goroutines of the benchmark's
// process.
type inProcessFollowers struct {
	fs   *followerSet
	n    int
	wg   *sync.WaitGroup
	recv [][]int64 // recv[f][k]: when follower f received event k (Unix ns)
}

func startFanoutInProcess(b *testing.B, ctx context.Context, addr string, followers, events int) *inProcessFollowers {
	ip := &inProcessFollowers{fs: newFollowerSet(), n: followers, recv: make([][]int64, followers)}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	b.Cleanup(func() { cancel(); wg.Wait() })
	var conn *client.Client
	for i := range followers {
		if i%fanoutStreamsPerConn == 0 {
			conn = dial(b, addr)
		}
		sub, err := conn.Subscribe(ctx, "fan", client.ConsumeOptions{From: client.End(), Follow: true})
		if err != nil {
			b.Fatal(err)
		}
		recv := make([]int64, 0, events)
		ip.recv[i] = recv
		wg.Go(func() {
			defer sub.Close()
			err := followFan(sub, events, func(int) { recv = append(recv, time.Now().UnixNano()); ip.fs.add(1) })
			ip.recv[i] = recv
			if err != nil && ctx.Err() == nil {
				ip.fs.fail(err)
			}
		})
	}
	ip.wg = &wg
	return ip
}

func (ip *inProcessFollowers) awaitWarm(b *testing.B) { ip.fs.await(b, int64(ip.n)) }

func (ip *inProcessFollowers) finish(b *testing.B, acks []int64) (p50, p99 float64) {
	ip.fs.await(b, int64(ip.n)*int64(len(acks)))
	ip.wg.Wait() // every follower has stored its receipts
	return deliveryPercentiles(ip.recv, acks)
}

// followFan reads sub until it has received events events, checking dense
// seqs, and calls got with each event's index.
func followFan(sub *client.Subscription, events int, got func(k int)) error {
	var seq uint64
	for k := range events {
		ev, err := sub.Next()
		if err != nil {
			return err
		}
		if seq != 0 && ev.Seq != seq+1 {
			return fmt.Errorf("follower got seq %d after %d", ev.Seq, seq)
		}
		seq = ev.Seq
		got(k)
	}
	return nil
}

// deliveryPercentiles is the p50 and p99, in µs, of recv[f][k]-acks[k]
// over every follower f and event k (a receipt before the ack counts 0).
func deliveryPercentiles(recv [][]int64, acks []int64) (p50, p99 float64) {
	var all latencies
	for _, r := range recv {
		for k, t := range r {
			all = append(all, time.Duration(max(0, t-acks[k])))
		}
	}
	if len(all) == 0 {
		return 0, 0
	}
	slices.Sort(all)
	at := func(q float64) float64 {
		return float64(all[min(len(all)-1, int(q*float64(len(all))))]) / float64(time.Microsecond)
	}
	return at(0.50), at(0.99)
}

// The child process of BenchmarkFanoutProduceChild: TestFanoutChild runs
// the followers when fanoutChildEnv names the server's address. Protocol,
// one line each: the child writes "ready" once every follower's stream
// is open and "warm" once each received the first event; the benchmark
// then writes the acknowledgement times ("acks" and Unix nanoseconds) once
// its loop is over; the child answers "done P50 P99" once every follower
// received every event in order, or "fail" and why.
const (
	fanoutChildEnv       = "GOETHE_BENCH_FANOUT_CHILD"     // the server's address
	fanoutChildFollowers = "GOETHE_BENCH_FANOUT_FOLLOWERS" // how many
	fanoutChildEvents    = "GOETHE_BENCH_FANOUT_EVENTS"    // events each receives
	fanoutChildWire      = "GOETHE_BENCH_FANOUT_WIRE"      // set: wire followers
	fanoutChildNice      = "19"                            // the child's nice value
)

// startClientFollowers starts followers Subscriptions of the Go client
// (fanoutStreamsPerConn per connection), each at the end of topic "fan",
// on goroutines of wg; got(i, k, at) records follower i's k-th event.
// It returns once every stream has started; a follower's failure goes to
// fs.
func startClientFollowers(ctx context.Context, wg *sync.WaitGroup, fs *followerSet, addr string, followers, events int, got func(i, k int, at int64)) error {
	var conn *client.Client
	for i := range followers {
		if i%fanoutStreamsPerConn == 0 {
			c, err := client.Dial(addr)
			if err != nil {
				return err
			}
			context.AfterFunc(ctx, func() { c.Close() })
			conn = c
		}
		sub, err := conn.Subscribe(ctx, "fan", client.ConsumeOptions{From: client.End(), Follow: true})
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer sub.Close()
			if err := followFan(sub, events, func(k int) { got(i, k, time.Now().UnixNano()) }); err != nil {
				fs.fail(err)
			}
		})
	}
	return nil
}

// startWireFollowers is startClientFollowers with wire followers
// (fanout_wire_test.go), one goroutine per connection of
// fanoutStreamsPerConn streams.
func startWireFollowers(wg *sync.WaitGroup, fs *followerSet, addr string, followers, events int, got func(i, k int, at int64)) error {
	// Each connection signals at most twice: started, then failed.
	started := make(chan struct{}, 2*(followers/fanoutStreamsPerConn+1))
	conns := 0
	for first := 0; first < followers; first += fanoutStreamsPerConn {
		n := min(fanoutStreamsPerConn, followers-first)
		c, err := dialWire(addr, "fan", n, events, func(i, k int, at int64) { got(first+i, k, at) },
			func() { started <- struct{}{} })
		if err != nil {
			return err
		}
		conns++
		wg.Go(func() {
			if err := c.run(); err != nil {
				fs.fail(err)
				started <- struct{}{} // unblock the wait below; the failure is reported
			}
		})
	}
	for range conns {
		<-started
	}
	return fs.failed()
}

type childFollowers struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	done chan struct{}
	// cpuMicros is the CPU time the child spent from its followers' first
	// event to their last (its receiving), in µs; set by finish.
	cpuMicros float64
}

func startFanoutChild(b *testing.B, addr string, followers, events int, where fanoutWhere) *childFollowers {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"nice", "-n", fanoutChildNice, exe, "-test.run", "^TestFanoutChild$", "-test.count", "1"}
	if where.pin != "" {
		args = append([]string{"taskset", "-c", where.pin}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), fanoutChildEnv+"="+addr,
		fanoutChildFollowers+"="+strconv.Itoa(followers), fanoutChildEvents+"="+strconv.Itoa(events))
	if where.wire {
		cmd.Env = append(cmd.Env, fanoutChildWire+"=1")
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &childFollowers{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	c.out.Buffer(nil, 1<<20)
	b.Cleanup(func() {
		_ = in.Close() // the child ends when its stdin does
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c.expect(b, "ready")
	return c
}

// expect reads the child's next protocol line and requires it to start
// with word; it returns the line's other fields.
func (c *childFollowers) expect(b *testing.B, word string) []string {
	for c.out.Scan() {
		f := strings.Fields(c.out.Text())
		if len(f) == 0 || f[0] != word && f[0] != "fail" {
			continue // the test framework's own lines
		}
		if f[0] == "fail" {
			b.Fatalf("fan-out child: %s", c.out.Text())
		}
		return f[1:]
	}
	b.Fatalf("fan-out child ended before %q: %v", word, c.out.Err())
	return nil
}

func (c *childFollowers) awaitWarm(b *testing.B) { c.expect(b, "warm") }

func (c *childFollowers) finish(b *testing.B, acks []int64) (p50, p99 float64) {
	line := make([]byte, 0, 24*len(acks)+8)
	line = append(line, "acks"...)
	for _, a := range acks {
		line = append(line, ' ')
		line = strconv.AppendInt(line, a, 10)
	}
	line = append(line, '\n')
	if _, err := c.in.Write(line); err != nil {
		b.Fatal(err)
	}
	f := c.expect(b, "done")
	if len(f) != 3 {
		b.Fatalf("fan-out child: done %v", f)
	}
	p50, err1 := strconv.ParseFloat(f[0], 64)
	p99, err2 := strconv.ParseFloat(f[1], 64)
	cpu, err3 := strconv.ParseFloat(f[2], 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		b.Fatal(err)
	}
	c.cpuMicros = cpu
	return p50, p99
}

// TestFanoutChild is BenchmarkFanoutProduceChild's child process; it is
// skipped unless fanoutChildEnv is set.
func TestFanoutChild(t *testing.T) {
	addr := os.Getenv(fanoutChildEnv)
	if addr == "" {
		t.Skip("runs as BenchmarkFanoutProduceChild's child process only")
	}
	fail := func(err error) {
		fmt.Printf("fail %v\n", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
	followers, err1 := strconv.Atoi(os.Getenv(fanoutChildFollowers))
	events, err2 := strconv.Atoi(os.Getenv(fanoutChildEvents))
	if err := errors.Join(err1, err2); err != nil {
		fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := newFollowerSet()
	recv := make([][]int64, followers)
	for i := range recv {
		recv[i] = make([]int64, 0, events)
	}
	var warm atomic.Int64
	warmed := make(chan struct{})
	got := func(i, k int, at int64) { // called by follower i's goroutine only
		recv[i] = append(recv[i], at)
		if k == 0 && warm.Add(1) == int64(followers) {
			close(warmed)
		}
	}
	var wg sync.WaitGroup
	var err error
	if os.Getenv(fanoutChildWire) != "" {
		err = startWireFollowers(&wg, fs, addr, followers, events, got)
	} else {
		err = startClientFollowers(ctx, &wg, fs, addr, followers, events, got)
	}
	if err != nil {
		fail(err)
	}
	fmt.Println("ready")
	acks := make(chan []int64, 1)
	go func() {
		in := bufio.NewScanner(os.Stdin)
		in.Buffer(nil, 64<<20)
		if !in.Scan() {
			os.Exit(0) // the benchmark ended early
		}
		var a []int64
		for _, f := range strings.Fields(in.Text())[1:] {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				fail(err)
			}
			a = append(a, v)
		}
		acks <- a
	}()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-warmed:
	case <-finished: // no followers, or some failed
		if err := fs.failed(); err != nil {
			fail(err)
		}
	}
	fmt.Println("warm")
	cpu0 := cpuClock()
	a := <-acks
	select {
	case <-finished:
	case <-time.After(fanoutDrain):
		fail(fmt.Errorf("followers did not receive %d events each within %v", events, fanoutDrain))
	}
	if err := fs.failed(); err != nil {
		fail(err)
	}
	if len(a) != events {
		fail(fmt.Errorf("%d acks for %d events", len(a), events))
	}
	p50, p99 := deliveryPercentiles(recv, a)
	fmt.Printf("done %.1f %.1f %.0f\n", p50, p99, float64(cpuClock()-cpu0)/float64(time.Microsecond))
}

// liveHeap is the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
