package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goethe-log/goethe/bench/peers"
)

// fixture loads testdata/run (records of a quick matrix run) plus a second
// run of Redis fsync on workload a16 at twice the first's rate.
func fixture(t *testing.T) *Report {
	t.Helper()
	recs, err := peers.ReadRecords("testdata/run")
	if err != nil {
		t.Fatal(err)
	}
	m, err := peers.ReadMachine("testdata/run")
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if rec.Workload.ID == "a16-100B" && rec.System.Key() == "redis.fsync" {
			rec.Run = 2
			rec.Result.Produce.EventsPerSec *= 2
			recs = append(recs, rec)
			break
		}
	}
	return New(m, recs)
}

func TestAggregate(t *testing.T) {
	r := fixture(t)
	c := r.Cell("a16-100B", "redis.fsync")
	if c == nil || c.OK != 2 {
		t.Fatalf("cell: %+v", c)
	}
	if math.Abs(c.Value-1.5*c.Min) > 1e-6*c.Value || math.Abs(c.Max-2*c.Min) > 1e-6*c.Max {
		t.Errorf("mean %v of %v and %v", c.Value, c.Min, c.Max)
	}
	var order []string
	for _, s := range r.Systems {
		order = append(order, s.Key())
	}
	want := "nats.default nats.fsync redis.default redis.fsync goethe-leveldb.fsync goethe-leveldb.nosync"
	if strings.Join(order, " ") != want {
		t.Errorf("system order %v, want %s", order, want)
	}
}

func TestColumns(t *testing.T) {
	r := fixture(t)
	var a16, c100, e peers.Workload
	for _, w := range r.Workloads {
		switch w.ID {
		case "a16-100B":
			a16 = w
		case "c-100B":
			c100 = w
		case "e-100B":
			e = w
		}
	}
	cols := r.Columns(a16)
	if len(cols) != 2 {
		t.Fatalf("a16: %d columns", len(cols))
	}
	keys := func(cells []*Cell) string {
		var k []string
		for _, c := range cells {
			k = append(k, c.System.Key())
		}
		return strings.Join(k, " ")
	}
	// Goethe --sync=true stands in both columns; --sync=false is only
	// information beside the defaults.
	if got := keys(cols[0].Cells); got != "nats.fsync redis.fsync goethe-leveldb.fsync" {
		t.Errorf("fsync column: %s", got)
	}
	if got := keys(cols[1].Cells); got != "nats.default redis.default goethe-leveldb.fsync" {
		t.Errorf("default column: %s", got)
	}
	if got := keys(cols[1].Info); got != "goethe-leveldb.nosync" {
		t.Errorf("default column info: %s", got)
	}
	for i, col := range cols {
		best := col.BestPeer()
		goethe := r.Cell("a16-100B", "goethe-leveldb.fsync")
		if best == nil || !best.System.Peer {
			t.Fatalf("column %d: best peer %+v", i, best)
		}
		for _, c := range col.Cells {
			if c.System.Peer && c.Value > best.Value {
				t.Errorf("column %d: %s beats best peer %s", i, c.System.Key(), best.System.Key())
			}
		}
		if got, want := Ratio(goethe, best), goethe.Value/best.Value; got != want {
			t.Errorf("ratio %v, want %v", got, want)
		}
	}
	if cols := r.Columns(c100); len(cols) != 1 || len(cols[0].Cells) != 2 {
		t.Errorf("read-back columns: %+v", cols)
	}
	cols = r.Columns(e)
	if best := cols[1].BestPeer(); best == nil || best.E2E[2] <= 0 || best.Saturated() {
		t.Errorf("latency best peer: %+v", best)
	}
}

// TestCPUFromRecords reads the CPU figures of records that hold them
// (testdata/run's p-100B, from a quick run with the async client) and
// leaves older records' cells without them.
func TestCPUFromRecords(t *testing.T) {
	r := fixture(t)
	for _, key := range []string{"redis.fsync", "goethe-leveldb.fsync", "goethe-leveldb.nosync"} {
		c := r.Cell("p-100B", key)
		if c == nil || c.OK != 1 || c.ServerCPU <= 0 || c.ClientCPU <= 0 {
			t.Fatalf("p-100B on %s: %+v", key, c)
		}
		want := c.Runs[0].ServerCPU.MicrosPerEvent
		if c.ServerCPU != want {
			t.Errorf("p-100B on %s: server CPU %v, want %v", key, c.ServerCPU, want)
		}
	}
	if c := r.Cell("a16-100B", "redis.fsync"); c.ServerCPU != 0 || c.ClientCPU != 0 {
		t.Errorf("a16 records without CPU: %v, %v", c.ServerCPU, c.ClientCPU)
	}
	var b bytes.Buffer
	if err := r.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	c := r.Cell("p-100B", "goethe-leveldb.fsync")
	row := fmt.Sprintf("| **Goethe leveldb** | `--sync=true`, async client | %s | %s | %s | %s | %s |", number(c.EventsPerSec),
		number(c.MBPerSec), number(c.P99), number(c.ServerCPU), number(c.ClientCPU))
	for _, want := range []string{row, "## (b') 1 producer, 1,000 single 100 B events in flight", "(b') 1,000 pipelined single events, fsync | ≥ 2× Redis always |"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}

func TestWriteSummary(t *testing.T) {
	r := fixture(t)
	var b bytes.Buffer
	if err := r.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{
		"## Where Goethe stands",
		"| a16-100B | fsync | Redis always |",
		"**fsync before every ack**",
		"**each system's default**",
		"| **Goethe leveldb** | `--sync=false`, stream client |",
		"p99 vs best peer",
		"synchronous 4 KiB writes/s",
		"| nats-server | nats-server: v2.15.2 |",
		"```sh\n",
		"appendfsync always",
		"(" + number(r.Cell("a16-100B", "redis.fsync").Min) + "–", // a range for two runs
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if strings.Contains(s, "NaN") {
		t.Error("summary shows NaN")
	}
}

func TestWritePlots(t *testing.T) {
	r := fixture(t)
	dir := t.TempDir()
	if err := r.WritePlots(dir); err != nil {
		t.Fatal(err)
	}
	for name, labels := range map[string][]string{
		ThroughputSVG: {"Redis always", "Goethe leveldb nosync", "(c) read back"},
		LatencySVG:    {"Redis everysec", "Goethe leveldb", "p99.9"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		// Well-formed XML whose root is <svg>, naming every system.
		d := xml.NewDecoder(bytes.NewReader(b))
		var root string
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
			}
		}
		if root != "svg" {
			t.Errorf("%s: root element %q", name, root)
		}
		for _, label := range labels {
			if !bytes.Contains(b, []byte(label)) {
				t.Errorf("%s lacks %q", name, label)
			}
		}
		if !bytes.Contains(b, []byte("Arial")) {
			t.Errorf("%s: no font fallback", name)
		}
	}
}

func TestNumber(t *testing.T) {
	for x, want := range map[float64]string{
		0: "0", 4.567: "4.57", 12.34: "12.3", 812: "812", 9999: "9999", 52345: "52.3k",
		1234567: "1.23M", 2000000: "2M", math.NaN(): "–",
	} {
		if got := number(x); got != want {
			t.Errorf("number(%v) = %q, want %q", x, got, want)
		}
	}
}
