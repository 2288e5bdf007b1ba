package report

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goethe-log/goethe/bench/peers"
)

// The cluster summary states each Goethe figure's ratio to the 3-node
// JetStream and to the single node of the same workload, the failover
// distribution, and draws a well-formed SVG.
func TestWriteClusterSummary(t *testing.T) {
	dir := t.TempDir()
	w := peers.Workloads(time.Second, 1000)[0] // a16-100B
	rec := func(name string, peer bool, evs float64) peers.Record {
		r := peers.Record{Workload: w, System: peers.System{Name: name, Title: name + " title", Peer: peer,
			Durability: peers.DurabilityFsync}, Run: 1, Server: []string{name, "--flag"}}
		r.Result.Produce.EventsPerSec = evs
		return r
	}
	recs := []peers.Record{rec("cluster3-nats", true, 4000), rec("goethe-pebble", false, 40000), rec("cluster3-goethe-pebble", false, 10000)}
	fails := []peers.Failover{
		{System: peers.System{Name: "cluster3-nats", Title: "nats R3", Peer: true}, Millis: []float64{5000, 7000}, P50: 5000, P90: 7000, P99: 7000, Max: 7000},
		{System: peers.System{Name: "cluster3-goethe-pebble", Title: "goethe 3"}, Millis: []float64{800, 1200}, P50: 800, P90: 1200, P99: 1200, Max: 1200},
	}
	if err := WriteClusterSummary(dir, peers.Machine{CPUs: 2}, recs, fails); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 2.50× | 0.25× |", "| goethe 3 | 2 | 800 | 1200 | 1200 | 1200 |", "cluster3-nats --flag"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, "cluster.svg"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ XMLName xml.Name }
	if err := xml.Unmarshal(svg, &doc); err != nil || doc.XMLName.Local != "svg" {
		t.Errorf("cluster.svg is not an SVG document: %v, root %q", err, doc.XMLName.Local)
	}
}
