package peers

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fanoutChildEnv makes this test binary the followers' process of
// TestFanoutRun: init runs RunFanoutFollowers with the flags after the
// test's own and exits, before any test runs.
const fanoutChildEnv = "PEERS_FANOUT_TEST_CHILD"

func init() {
	if os.Getenv(fanoutChildEnv) == "" {
		return
	}
	i := slices.Index(os.Args, "-role")
	if i < 0 {
		os.Exit(2)
	}
	o, err := ParseFanoutChildArgs(os.Args[i:])
	if err != nil {
		os.Exit(2)
	}
	if err := RunFanoutFollowers(context.Background(), o, os.Stdin, os.Stdout); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

func TestFanoutPayload(t *testing.T) {
	p := newFanoutPayload()
	putFanoutPayload(p, 12345, 7)
	seq, timed, ok := parseFanoutPayload(p)
	if !ok || seq != 12345 || timed != 7 {
		t.Errorf("parse = %d, %d, %v", seq, timed, ok)
	}
	if _, _, ok := parseFanoutPayload(p[:50]); ok {
		t.Error("a short payload parsed")
	}
}

func TestPercentilesOf(t *testing.T) {
	var d []time.Duration
	for i := 1000; i >= 1; i-- { // 1..1000 µs, unsorted
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	p := percentilesOf(d)
	if p != (Percentiles{P50: 500, P99: 990, P999: 999, Max: 1000}) {
		t.Errorf("percentiles = %+v", p)
	}
	if (percentilesOf(nil) != Percentiles{}) {
		t.Error("no durations: not zero")
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("odd: %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even: %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("none: not NaN")
	}
}

func TestParseFanoutChildArgs(t *testing.T) {
	o := FanoutChildOptions{System: "nats", Addr: "127.0.0.1:1", Followers: 2000, Events: 1500, PerConn: 50, Setup: time.Minute}
	got, err := ParseFanoutChildArgs(o.Args())
	if err != nil || got != o {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	if _, err := ParseFanoutChildArgs([]string{"-system", "nats"}); err == nil {
		t.Error("no -role followers: accepted")
	}
}

func TestFanoutSummary(t *testing.T) {
	sys := System{Name: "goethe-leveldb", Title: "Goethe leveldb"}
	rec := func(followers, round int, p99 float64) FanoutRecord {
		return FanoutRecord{System: sys, Followers: followers, IntervalMS: 10, Round: round, Events: 100,
			Produce: Percentiles{P50: 500, P99: p99, P999: p99, Max: p99}}
	}
	recs := []FanoutRecord{rec(0, 1, 1000), rec(2000, 1, 3000), rec(0, 2, 2000), rec(2000, 2, 3000), rec(0, 3, 1500), rec(2000, 3, 2000)}
	bad := rec(2000, 4, 0)
	bad.Error = "followers: boom"
	recs = append(recs, bad)
	s := FanoutSummary(recs)
	for _, want := range []string{
		"| goethe-leveldb | 10ms | 1.50 | 3.00 | **2.00×** | 3.00, 1.50, 1.33 |",
		"| 3 / 3 |",
		"### Failed runs",
		"| goethe-leveldb | 2000 | 10ms | 4 | followers: boom |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

// TestFanoutRun runs a short fan-out on each installed system: a few
// followers in a child process (this test binary), each receiving every
// event.
func TestFanoutRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fanoutChildEnv, "1")
	for _, s := range FanoutSystems([]string{"leveldb"}, GoetheAsync) {
		t.Run(s.Name, func(t *testing.T) {
			bin := map[string]string{"nats": "nats-server", "redis": "redis-server"}[s.Name]
			if bin == "" {
				bin = "goethe"
			}
			path := binary(t, bin)
			r := &FanoutRunner{NATSBin: path, RedisBin: path, GoetheBin: path, WorkDir: t.TempDir(),
				Child: []string{exe, "-test.run=^$"}, Events: 30, PerConn: 4, Setup: 30 * time.Second}
			for _, n := range []int{0, 10} {
				rec, err := r.Run(context.Background(), s, n, time.Millisecond, 1)
				if err != nil {
					t.Fatalf("%d followers: %v", n, err)
				}
				if rec.Events != 30 || rec.Produce.P50 <= 0 || rec.Produce.Max < rec.Produce.P99 || rec.Probes < 1 {
					t.Errorf("%d followers: %+v", n, rec)
				}
				if n > 0 && (rec.Delivery.Max <= 0 || rec.Delivery.P99 < rec.Delivery.P50) {
					t.Errorf("%d followers: delivery %+v", n, rec.Delivery)
				}
			}
			if entries, _ := os.ReadDir(r.WorkDir); len(entries) > 0 {
				t.Errorf("data folders left: %v", filepath.Join(r.WorkDir, entries[0].Name()))
			}
		})
	}
}
