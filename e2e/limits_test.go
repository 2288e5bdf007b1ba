package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/goethe-log/goethe/client"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// rawCodec sends requests as the bytes given, so that the tests can send
// what no proto library would encode (31 million empty events).
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// rawProduce encodes a ProduceRequest of topic with n events of size bytes.
func rawProduce(topic string, n, size int) []byte {
	ev := protowire.AppendTag(nil, 1, protowire.BytesType)
	ev = protowire.AppendBytes(ev, make([]byte, size))
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, topic)
	for range n {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, ev)
	}
	return b
}

// rawEmptyEvents encodes a ProduceRequest of n empty events.
func rawEmptyEvents(topic string, n int) []byte {
	b := protowire.AppendTag(make([]byte, 0, 2*n+len(topic)+2), 1, protowire.BytesType)
	b = protowire.AppendString(b, topic)
	for range n {
		b = append(b, 0x12, 0x00)
	}
	return b
}

func dialRaw(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(1 << 30))}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func invokeRaw(ctx context.Context, conn *grpc.ClientConn, req []byte) error {
	var resp []byte
	return conn.Invoke(ctx, "/goethe.v1.Goethe/Produce", &req, &resp, grpc.ForceCodecV2(rawCodec{}))
}

// stallFollower opens a following Consume of topic on a connection of its
// own with 64 KiB HTTP/2 windows and never reads it.
func stallFollower(t *testing.T, ctx context.Context, addr, topic string) {
	t.Helper()
	conn := dialRaw(t, addr, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	st, err := goethev1.NewGoetheClient(conn).Consume(ctx, &goethev1.ConsumeRequest{Topic: topic, Follow: true})
	require.NoError(t, err)
	_, err = st.Header()
	require.NoError(t, err)
}

// fill stores mib MiB of 1 KiB events in topic.
func fill(t *testing.T, addr, topic string, mib int) {
	t.Helper()
	c, err := client.Dial(addr)
	require.NoError(t, err)
	defer c.Close()
	batch := make([]client.EventData, 1024)
	for i := range batch {
		batch[i].Payload = make([]byte, 1024)
	}
	for range mib {
		_, err := c.Produce(context.Background(), topic, batch)
		require.NoError(t, err)
	}
}

// SIGTERM with a follower that has stopped reading: the server ends the
// follower at once, finishes and acknowledges the Produces in flight,
// closes the stalled connection after --stop-grace, and exits 0 well
// within the 30 s stop timeout. Before, it waited the 30 s and exited 1.
// Every acknowledged event is there after a restart.
func TestSIGTERMWithStalledFollower(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "leveldb", dir, "--stop-grace", "500ms")
	fill(t, s.addr, "big", 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 3 {
		stallFollower(t, ctx, s.addr, "big")
	}

	// Producers run through the stop: each Produce is acknowledged or
	// refused (UNAVAILABLE), never cut.
	c, err := client.Dial(s.addr)
	require.NoError(t, err)
	defer c.Close()
	var acked atomic.Int64
	var wg sync.WaitGroup
	pctx, pcancel := context.WithCancel(context.Background())
	for p := range 4 {
		wg.Go(func() {
			for i := 0; pctx.Err() == nil; i++ {
				_, err := c.Produce(pctx, "acked", []client.EventData{{Payload: fmt.Appendf(nil, "%d-%d", p, i)}})
				if err != nil {
					return
				}
				acked.Add(1)
			}
		})
	}
	require.Eventually(t, func() bool { return acked.Load() > 20 }, startTimeout, pollEvery)

	start := time.Now()
	s.stop() // SIGTERM; requires exit status 0 within stopTimeout
	took := time.Since(start)
	pcancel()
	wg.Wait()
	t.Logf("stopped in %v with 3 stalled followers; %d produces acknowledged", took.Round(time.Millisecond), acked.Load())
	require.Contains(t, s.stderr.String(), `"graceful":true`)

	s = startServer(t, "leveldb", dir)
	defer s.stop()
	c2, err := client.Dial(s.addr)
	require.NoError(t, err)
	defer c2.Close()
	info, err := c2.Topic(context.Background(), "acked")
	require.NoError(t, err)
	require.GreaterOrEqual(t, info.Count, uint64(acked.Load()), "every acknowledged event is stored")
}

// soakTime is how long TestSoak runs its adversaries: GOETHE_SOAK_TIME
// (a Go duration; `make soak SOAKTIME=10m`), else 20 s, so that make test
// stays within its minute.
func soakTime(t *testing.T) time.Duration {
	v, ok := os.LookupEnv("GOETHE_SOAK_TIME")
	if !ok {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "GOETHE_SOAK_TIME")
	return d
}

// Limits of the soak's server, small so that the bound means something on
// a machine with GBs of memory.
const (
	soakInflight    = 64 << 20 // --max-inflight-bytes, = the largest request
	soakStreams     = 100      // --max-concurrent-streams
	soakConnections = 128      // --max-connections
	soakFollowers   = 32       // stalled followers, one connection each
)

// The soak's bound on peak RSS is its RSS before the adversaries plus
//
//   - soakMemoryFactor × --max-inflight-bytes: an admitted request holds
//     its encoded bytes while decoding, its decoded events and the
//     engine's batch and memtable;
//   - soakSenders × the largest request (64 MiB): gRPC reads a request's
//     encoded bytes whole before the codec sees them, so every sender of
//     a large request may have one in memory at once, admitted or not
//     (transient: refused ones are dropped at once). This term is bounded
//     by the senders, not by the budget: --max-connections ×
//     --max-concurrent-streams bounds them;
//   - soakSlack, the stated constant: the stalled followers' pages (32 ×
//     about 2 MiB), the Go runtime, and the GC's headroom under
//     GOMEMLIMIT (soakMemLimit).
const (
	soakMemoryFactor = 4
	soakSenders      = 26 // 24 Produces, the stream, the 31M empty events
	soakSlack        = 512 << 20
	soakMemLimit     = 1 << 30 // GOMEMLIMIT of the server: see README "Running it safely"
	maxRequestBytes  = 64 << 20
)

// TestSoak runs a real goethe with small budgets under every hostile
// client of issue 9 at once, for soakTime, sampling its RSS: peak RSS
// stays under its RSS before + soakMemoryFactor × the in-flight budget +
// soakOverhead. The adversaries: a Produce of 31 million empty events
// (62 MB) in a loop; 24 concurrent 60 MiB Produces; a ProduceStream
// pushing 60 MiB requests without waiting for answers; one connection
// opening 5,000 streams; 32 followers that never read. The server keeps
// answering a small Produce throughout, and runs at most
// --max-concurrent-streams Consume streams of the one connection at once
// (its goethe_consume_open_streams gauge, sampled).
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: not in -short")
	}
	bin := soakBinary(t)
	dir := t.TempDir()
	s := startBinary(t, bin, []string{"GOMEMLIMIT=" + strconv.Itoa(soakMemLimit)}, "--engine", "leveldb", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-format", "json",
		"--max-inflight-bytes", strconv.Itoa(soakInflight), "--max-concurrent-streams", strconv.Itoa(soakStreams),
		"--max-connections", strconv.Itoa(soakConnections), "--slow-consumer-timeout", "3s", "--stop-grace", "1s",
		"--metrics-listen", "127.0.0.1:0")
	pid := s.cmd.Process.Pid
	metricsURL := s.metricsURL()
	fill(t, s.addr, "big", 8)
	before := procStatus(t, pid, "VmRSS")

	// The requests are built, and the followers stalled, before the clock
	// starts.
	empties := rawEmptyEvents("soak", 31_000_000)
	big := rawProduce("soak", 60, 1<<20-64)
	overLimit := append(rawProduce("soak", 59, 1<<20-64), rawProduce("", 1, 1<<20+1)[2:]...)
	fctx, fcancel := context.WithCancel(context.Background())
	defer fcancel()
	for range soakFollowers {
		stallFollower(t, fctx, s.addr, "big")
	}

	d := soakTime(t)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var peak atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			if v, err := readProcStatus(pid, "VmRSS"); err == nil && v > peak.Load() {
				peak.Store(v)
			}
			<-tick.C
		}
	}()
	// The Consume streams the server runs at once, sampled from its
	// goethe_consume_open_streams gauge until the soak's streams are gone.
	// The server counts a stream from inside its handler, which gRPC runs
	// only within its per-connection quota of --max-concurrent-streams
	// (grpc-go's handler quota, acquired before the handler starts and
	// released after it returns), so the gauge never overstates what one
	// connection holds. A count on the client cannot say as much: a
	// stream's end reaches the client after the server has released its
	// slot, so when the soak ends and its streams are cancelled, streams
	// still waiting for a slot on the client start on the freed slots
	// (their context is done, but gRPC's wait for quota may take the slot
	// first) while the goroutines of the cancelled ones have not yet
	// counted them closed: the client then counted up to 176 "open", all
	// of the excess after the soak's context had ended.
	var peakStreams, streamSamples atomic.Int64
	streamsSampled := make(chan struct{})
	streamsDone := make(chan struct{}) // closed once the 5,000 streams have ended
	go func() {
		defer close(streamsSampled)
		hc := &http.Client{Timeout: 5 * time.Second}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := scrapeGauge(hc, metricsURL, "goethe_consume_open_streams"); err == nil {
				streamSamples.Add(1)
				if v > peakStreams.Load() {
					peakStreams.Store(v)
				}
			}
			select {
			case <-streamsDone:
				return
			case <-tick.C:
			}
		}
	}()

	var counts sync.Map // name → *atomic.Int64
	count := func(name string) {
		v, _ := counts.LoadOrStore(name, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	// allowed requires err to be nil or one of codes, by name.
	allowed := func(name string, err error, ok ...codes.Code) {
		if err == nil {
			count(name + " ok")
			return
		}
		c := status.Code(err)
		if ctx.Err() != nil || c == codes.DeadlineExceeded || c == codes.Canceled {
			return // the soak ended under the call
		}
		for _, o := range ok {
			if c == o {
				count(name + " " + c.String())
				return
			}
		}
		t.Errorf("%s: %v", name, err)
	}

	var wg sync.WaitGroup
	// 31 million empty events, 62 MB: refused while decoding.
	wg.Go(func() {
		conn := dialRaw(t, s.addr)
		for ctx.Err() == nil {
			allowed("31M empty events", invokeRaw(ctx, conn, empties), codes.InvalidArgument, codes.ResourceExhausted)
		}
	})
	// 24 concurrent 60 MiB Produces: valid twice each, then, so that the
	// disk does not fill over a long soak, 60 MiB whose last event is over
	// --max-event-bytes (read whole, refused) until the end.
	for range 24 {
		wg.Go(func() {
			conn := dialRaw(t, s.addr)
			for i := 0; i < 2 && ctx.Err() == nil; i++ {
				allowed("60 MiB produce", invokeRaw(ctx, conn, big), codes.ResourceExhausted)
			}
			for ctx.Err() == nil {
				allowed("60 MiB over a limit", invokeRaw(ctx, conn, overLimit), codes.InvalidArgument, codes.ResourceExhausted)
			}
		})
	}
	// A stream pushing 60 MiB requests without waiting for answers.
	wg.Go(func() {
		conn := dialRaw(t, s.addr)
		desc := &grpc.StreamDesc{StreamName: "ProduceStream", ServerStreams: true, ClientStreams: true}
		cs, err := conn.NewStream(ctx, desc, "/goethe.v1.Goethe/ProduceStream", grpc.ForceCodecV2(rawCodec{}))
		if err != nil {
			allowed("stream", err)
			return
		}
		go func() {
			for {
				var b []byte
				if cs.RecvMsg(&b) != nil {
					return
				}
				count("stream answer")
			}
		}()
		for id := uint64(1); id <= 8 && ctx.Err() == nil; id++ {
			req := protowire.AppendTag(nil, 1, protowire.VarintType)
			req = protowire.AppendVarint(req, id)
			req = protowire.AppendTag(req, 2, protowire.BytesType)
			req = protowire.AppendBytes(req, big)
			if cs.SendMsg(&req) != nil {
				return
			}
			count("stream request")
		}
		<-ctx.Done()
	})
	// One connection opening 5,000 streams. maxOpen is the most the
	// client counted open at once (for the log only: see peakStreams);
	// dials counts the connections it made, one unless the server dropped
	// it.
	var open, maxOpen, dials atomic.Int64
	var firstEnd sync.Once
	wg.Go(func() {
		defer close(streamsDone)
		conn := dialRaw(t, s.addr, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}))
		gc := goethev1.NewGoetheClient(conn)
		var streams sync.WaitGroup
		for range 5000 {
			streams.Go(func() {
				st, err := gc.Consume(ctx, &goethev1.ConsumeRequest{Topic: "nothing", Follow: true})
				if err != nil {
					return
				}
				// A stream the server started answers with its header; one
				// that ended first (the soak's end) has none.
				if md, err := st.Header(); err != nil || len(md.Get(goethev1.HeaderStartPosition)) == 0 {
					return
				}
				count("streams opened")
				n := open.Add(1)
				for m := maxOpen.Load(); n > m && !maxOpen.CompareAndSwap(m, n); m = maxOpen.Load() {
				}
				_, err = st.Recv() // nothing comes: it ends with the soak
				open.Add(-1)
				if ctx.Err() == nil {
					firstEnd.Do(func() { t.Logf("a stream ended before the soak: %v", err) })
				}
			})
		}
		streams.Wait()
	})
	// A well-behaved producer is served throughout.
	c, err := client.Dial(s.addr)
	require.NoError(t, err)
	defer c.Close()
	for ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.Produce(pctx, "small", []client.EventData{{Payload: []byte("x")}})
		pcancel()
		if ctx.Err() == nil {
			allowed("small produce", err, codes.ResourceExhausted)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // pacing, not a condition
		}
	}
	wg.Wait()
	<-sampled
	<-streamsSampled
	hwm := procStatus(t, pid, "VmHWM")
	counts.Range(func(k, v any) bool {
		t.Logf("%-28s %d", k, v.(*atomic.Int64).Load())
		return true
	})
	bound := before + soakMemoryFactor*soakInflight + soakSenders*maxRequestBytes + soakSlack
	// The server's Consume streams: the 32 stalled followers (one each on
	// their own connections, until --slow-consumer-timeout ends them) and
	// those of the one connection opening 5,000.
	streamBound := int64(soakStreams)*dials.Load() + soakFollowers
	t.Logf("RSS before %d MiB, sampled peak %d MiB, VmHWM %d MiB, bound %d MiB (%v)",
		before>>20, peak.Load()>>20, hwm>>20, bound>>20, d)
	t.Logf("Consume streams on the server at once: peak %d of %d samples, bound %d (%d connection(s) × --max-concurrent-streams %d + %d followers); counted open by the client at once: %d",
		peakStreams.Load(), streamSamples.Load(), streamBound, dials.Load(), soakStreams, soakFollowers, maxOpen.Load())

	require.LessOrEqual(t, hwm, int64(bound), "peak RSS past the budgets")
	small, ok := counts.Load("small produce ok")
	require.True(t, ok, "no small Produce went through during the soak")
	require.Positive(t, small.(*atomic.Int64).Load())
	require.Positive(t, streamSamples.Load(), "the metrics were scraped")
	require.Equal(t, int64(1), dials.Load(), "the streams' connection was not dropped")
	require.GreaterOrEqual(t, peakStreams.Load(), int64(soakStreams), "the connection's streams filled its quota, so the bound was tested")
	require.LessOrEqual(t, peakStreams.Load(), streamBound, "one connection holds at most --max-concurrent-streams")
	s.stop()
}

// metricsURL is the metrics address the server's start line names (it
// was started with --metrics-listen and --log-format json).
func (s *server) metricsURL() string {
	s.t.Helper()
	sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
	for sc.Scan() {
		var line struct {
			Msg     string `json:"msg"`
			Metrics string `json:"metrics"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "goethe serving" && line.Metrics != "" {
			return line.Metrics
		}
	}
	s.t.Fatalf("no metrics URL in the start line:\n%s", s.stderr.String())
	return ""
}

// scrapeGauge reads the value of the unlabelled gauge name from the
// Prometheus text at url.
func scrapeGauge(hc *http.Client, url, name string) (int64, error) {
	res, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		return int64(f), err
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in the metrics at %s", name, url)
}

// soakBinary is a goethe built without the race detector, whose shadow
// memory would make RSS say nothing of the server's own.
func soakBinary(t *testing.T) string {
	if !raceEnabled {
		return goetheBin()
	}
	out := filepath.Join(t.TempDir(), "goethe")
	b, err := exec.Command("go", "build", "-o", out, "github.com/goethe-log/goethe/cmd/goethe").CombinedOutput()
	require.NoError(t, err, "%s", b)
	return out
}

// startBinary is startServer with another binary, more environment
// variables (KEY=value) and all its arguments.
func startBinary(t *testing.T, bin string, env []string, args ...string) *server {
	t.Helper()
	s := &server{t: t, cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, exited: make(chan struct{})}
	s.cmd.Env = append(binEnv(), env...)
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	require.NoError(t, s.cmd.Start())
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.kill)
	require.Eventually(t, func() bool {
		s.addr = s.listenAddr()
		select {
		case <-s.exited:
			return true
		default:
		}
		return s.addr != ""
	}, startTimeout, pollEvery)
	select {
	case <-s.exited:
		t.Fatalf("goethe exited: %v\n%s", s.err, s.stderr.String())
	default:
	}
	s.waitServing(startTimeout)
	return s
}

// procStatus reads a kB field of /proc/pid/status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	v, err := readProcStatus(pid, field)
	require.NoError(t, err)
	return v
}

func readProcStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return kb << 10, err
	}
	return 0, errors.New(field + " not in /proc status")
}
