package peers

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goethe-log/goethe/loadgen"
)

// binary returns the path of a server binary: .work/bin/name if install.sh
// put it there, else name on PATH. It skips the test if there is none.
// goethe is built from this checkout instead (goetheBinary): a copy left
// in .work/bin by an older results run would test an older server.
func binary(t *testing.T, name string) string {
	t.Helper()
	if name == "goethe" {
		return goetheBinary(t)
	}
	if p, err := filepath.Abs(filepath.Join(".work", "bin", name)); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (run bench/peers/install.sh)", name)
	}
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	if goetheBin != "" {
		_ = os.RemoveAll(filepath.Dir(goetheBin))
	}
	os.Exit(code)
}

var (
	goetheOnce sync.Once
	goetheBin  string
	goetheErr  error
)

// goetheBinary builds cmd/goethe of this checkout once per test run, into
// a temporary folder that TestMain removes; every test of the run uses it.
func goetheBinary(t *testing.T) string {
	t.Helper()
	goetheOnce.Do(func() {
		dir, err := os.MkdirTemp("", "peers-goethe-")
		if err != nil {
			goetheErr = err
			return
		}
		goetheBin = filepath.Join(dir, "goethe")
		cmd := exec.Command("go", "build", "-o", goetheBin, "./cmd/goethe")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			goetheErr = fmt.Errorf("go build ./cmd/goethe: %v\n%s", err, out)
		}
	})
	if goetheErr != nil {
		t.Fatal(goetheErr)
	}
	return goetheBin
}

// startServer starts a server with start and stops it when the test ends.
func startServer(t *testing.T, start func(context.Context, ServerOptions) (*Server, error), o ServerOptions) *Server {
	t.Helper()
	o.Dir = filepath.Join(t.TempDir(), "server")
	s, err := start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestNATSConfig(t *testing.T) {
	def := NATSConfig(4222, "/d/js", false)
	fs := NATSConfig(4222, "/d/js", true)
	for _, want := range []string{`listen: "127.0.0.1:4222"`, `store_dir: "/d/js"`} {
		if !strings.Contains(def, want) || !strings.Contains(fs, want) {
			t.Errorf("config lacks %s:\n%s\n%s", want, def, fs)
		}
	}
	if strings.Contains(def, "sync_interval") || !strings.Contains(fs, "sync_interval: always") {
		t.Errorf("sync_interval: default\n%s\nfsync\n%s", def, fs)
	}
}

func TestNATSNames(t *testing.T) {
	stream, subject := natsNames("orders.eu-1 *x")
	if stream != "bench_orders_eu-1__x" || subject != "bench.orders_eu-1__x" {
		t.Errorf("natsNames = %q, %q", stream, subject)
	}
}

// testTarget checks a Target's contract on a live server: ordered
// read-back to the end, follow from the end, and a loadgen run with a
// following consumer that misses nothing.
func testTarget(t *testing.T, open loadgen.Opener) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tg, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()

	var want [][]byte
	for i := range 25 {
		want = append(want, fmt.Appendf(nil, "event-%02d", i))
	}
	if err := tg.Produce(ctx, "t1", want[:1]); err != nil {
		t.Fatal(err)
	}
	if err := tg.Produce(ctx, "t1", want[1:]); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	if err := tg.Consume(ctx, "t1", loadgen.FromBeginning, false, func(p []byte) bool {
		got = append(got, bytes.Clone(p))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%s", got) != fmt.Sprintf("%s", want) {
		t.Fatalf("read back %q, want %q", got, want)
	}

	// Stop early: fn returning false ends Consume.
	n := 0
	if err := tg.Consume(ctx, "t1", loadgen.FromBeginning, false, func([]byte) bool { n++; return n < 3 }); err != nil || n != 3 {
		t.Fatalf("early stop: %d events, %v", n, err)
	}

	// Follow from the end: only events produced afterwards arrive. A
	// second target produces while the first follows.
	other, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	received := make(chan string, 100)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- tg.Consume(fctx, "t1", loadgen.FromEnd, true, func(p []byte) bool {
			received <- string(p)
			return true
		})
	}()
	// The follower may not be subscribed yet: produce until one arrives.
	var first string
	for first == "" {
		if err := other.Produce(ctx, "t1", [][]byte{[]byte("new")}); err != nil {
			t.Fatal(err)
		}
		select {
		case first = <-received:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("follower received nothing")
		}
	}
	if first != "new" {
		t.Errorf("follow from the end delivered %q first, want a new event", first)
	}
	stop()
	if err := <-done; err != nil && fctx.Err() == nil {
		t.Errorf("follow: %v", err)
	}

	// Pipelined: every payload its own request, read back in order.
	pt, ok := tg.(loadgen.PipelineTarget)
	if !ok {
		t.Fatalf("%T is not a loadgen.PipelineTarget", tg)
	}
	if err := pt.ProducePipelined(ctx, "t2", want); err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := tg.Consume(ctx, "t2", loadgen.FromBeginning, false, func(p []byte) bool {
		got = append(got, bytes.Clone(p))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%s", got) != fmt.Sprintf("%s", want) {
		t.Fatalf("pipelined: read back %q, want %q", got, want)
	}

	// The harness end to end: producers, a following consumer, read-back.
	cfg := loadgen.DefaultConfig()
	cfg.Producers, cfg.Batch, cfg.Events, cfg.Consumers = 2, 50, 2000, 1
	cfg.TopicPrefix = "run"
	res, err := loadgen.Run(ctx, open, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Produce.Events != 2000 || res.Consume.Missing != 0 || res.Consume.EndToEnd.Count == 0 {
		t.Errorf("produce run: %+v", res)
	}
	rb := loadgen.DefaultConfig()
	rb.ReadBack, rb.Consumers, rb.Events, rb.TopicPrefix = true, 1, 2000, "run"
	res, err = loadgen.Run(ctx, open, rb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Consume.Events != 2000 {
		t.Errorf("read-back: %d events, want 2000", res.Consume.Events)
	}
}

func TestNATS(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		t.Run(fmt.Sprintf("fsync=%t", fsync), func(t *testing.T) {
			s := startServer(t, StartNATS, ServerOptions{Bin: binary(t, "nats-server"), Fsync: fsync})
			testTarget(t, NATSOpener("nats://"+s.Addr))
		})
	}
}

func TestRedis(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		t.Run(fmt.Sprintf("fsync=%t", fsync), func(t *testing.T) {
			s := startServer(t, StartRedis, ServerOptions{Bin: binary(t, "redis-server"), Fsync: fsync})
			testTarget(t, RedisOpener(s.Addr))
		})
	}
}

// TestRunner runs one short workload through Runner on Redis and checks
// the record it writes.
func TestRunner(t *testing.T) {
	bin := binary(t, "redis-server")
	out := t.TempDir()
	r := &Runner{RedisBin: bin, WorkDir: t.TempDir(), OutDir: out, PIDFile: filepath.Join(t.TempDir(), "pids")}
	var w Workload
	for _, wl := range Workloads(300*time.Millisecond, 5000) {
		if wl.ID == "c-100B" {
			w = wl
		}
	}
	sys := Systems(nil, nil, GoetheStream)[2] // Redis, everysec
	rec, err := r.Run(context.Background(), w, sys, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Result.Consume.Events != 5000 || rec.Preload == nil || rec.Preload.Produce.Events != 5000 {
		t.Errorf("record: preload %+v, result %+v", rec.Preload, rec.Result.Consume)
	}
	recs, err := ReadRecords(out)
	if err != nil || len(recs) != 1 || recs[0].FileName() != "c-100B.redis.default.r1.json" {
		t.Fatalf("ReadRecords: %v, %v", recs, err)
	}
	if entries, _ := os.ReadDir(r.WorkDir); len(entries) != 0 {
		t.Errorf("data folder left behind: %v", entries)
	}
	pids, _ := os.ReadFile(r.PIDFile)
	if len(strings.Fields(string(pids))) != 1 {
		t.Errorf("pid file: %q", pids)
	}
}

func TestServerFailsFast(t *testing.T) {
	bin := binary(t, "redis-server")
	_, err := StartRedis(context.Background(), ServerOptions{Bin: bin, Dir: t.TempDir(), Port: -1})
	if err == nil {
		t.Fatal("redis-server on port -1 started")
	}
}

func TestNATSClusterConfig(t *testing.T) {
	conf := natsClusterConfig("n2", 4222, []int{6001, 6002, 6003}, 1, "/d/js")
	for _, want := range []string{`server_name: "n2"`, `listen: "127.0.0.1:4222"`, `store_dir: "/d/js"`,
		"sync_interval: always", `listen: "127.0.0.1:6002"`, "nats-route://127.0.0.1:6001", "nats-route://127.0.0.1:6003"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %s:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "nats-route://127.0.0.1:6002") {
		t.Errorf("config routes to itself:\n%s", conf)
	}
}

// A cluster of each system starts, takes writes through its leader, and
// survives a leader kill: a survivor acknowledges a write, and the killed
// member rejoins. Every member is stopped at the end.
func TestCluster3Failover(t *testing.T) {
	for _, system := range []string{ClusterGoethe, ClusterNATS} {
		t.Run(system, func(t *testing.T) {
			bin := binary(t, map[string]string{ClusterGoethe: "goethe", ClusterNATS: "nats-server"}[system])
			ctx := context.Background()
			c, err := StartCluster3(ctx, system, "pebble", bin, t.TempDir(), "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := c.Stop(); err != nil {
					t.Error(err)
				}
			})
			f, err := MeasureFailover(ctx, c, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Millis) != 1 || f.Max <= 0 || f.P50 != f.Max {
				t.Fatalf("failover figures %+v", f)
			}
			if err := c.WaitHealthy(ctx, time.Minute); err != nil {
				t.Fatal(err)
			}
			if len(c.running()) != Cluster3Size {
				t.Fatalf("%d members running after the restart", len(c.running()))
			}
		})
	}
}
