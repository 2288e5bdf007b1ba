package report

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/bench/peers"
	"github.com/goethe-log/goethe/bench/peers/fsyncrate"
	"github.com/goethe-log/goethe/loadgen"
)

// figures are one run's headline figures of a system on a workload.
type figures struct {
	eps, serverCPU, clientCPU, p99 float64
}

// synthetic builds a report from figures keyed by workload id and system
// key, on the matrix's systems (leveldb and pebble, leveldb nosync, the
// async client) and a disk of 5,000 appending fsyncs/s.
func synthetic(t *testing.T, figs map[string]map[string]figures) *Report {
	t.Helper()
	workloads := map[string]peers.Workload{}
	for _, w := range peers.Workloads(time.Second, 1000) {
		workloads[w.ID] = w
	}
	systems := map[string]peers.System{}
	for _, s := range peers.Systems([]string{"leveldb", "pebble"}, []string{"leveldb"}, peers.GoetheAsync) {
		systems[s.Key()] = s
	}
	var recs []peers.Record
	for wid, bySystem := range figs {
		w, ok := workloads[wid]
		require.True(t, ok, wid)
		for key, f := range bySystem {
			s, ok := systems[key]
			require.True(t, ok, key)
			rec := peers.Record{Workload: w, System: s, Run: 1}
			rec.Result.Config = w.Config
			rec.Result.Produce.EventsPerSec = f.eps
			rec.Result.Consume.EndToEnd.P99 = int64(f.p99 * 1000)
			rec.Result.ClientCPU = loadgen.CPU{UserSeconds: 1, MicrosPerEvent: f.clientCPU}
			rec.ServerCPU = loadgen.CPU{UserSeconds: 1, MicrosPerEvent: f.serverCPU}
			recs = append(recs, rec)
		}
	}
	m := peers.Machine{AppendFsync: []peers.AppendFsync{
		{When: "start", Result: fsyncrate.Result{RecordBytes: 100, PerSec: 4000}},
		{When: "end", Result: fsyncrate.Result{RecordBytes: 100, PerSec: 6000}},
		{When: "start", Result: fsyncrate.Result{RecordBytes: 4096, PerSec: 1000}},
	}}
	return New(m, recs)
}

func TestTargets(t *testing.T) {
	r := synthetic(t, map[string]map[string]figures{
		"a16-100B": {
			"redis.default":         {eps: 130_000, serverCPU: 13.5, clientCPU: 21},
			"redis.fsync":           {eps: 30_000, serverCPU: 28, clientCPU: 25},
			"goethe-leveldb.fsync":  {eps: 66_000, serverCPU: 30, clientCPU: 30},
			"goethe-pebble.fsync":   {eps: 50_000, serverCPU: 35, clientCPU: 30},
			"goethe-leveldb.nosync": {eps: 90_000, serverCPU: 20, clientCPU: 40},
		},
		"a1-100B": {
			"redis.fsync":          {eps: 4000, serverCPU: 129, clientCPU: 88},
			"goethe-leveldb.fsync": {eps: 3000, serverCPU: 455, clientCPU: 100},
		},
		"p-100B": {
			"redis.fsync":          {eps: 240_000},
			"redis.default":        {eps: 500_000},
			"goethe-leveldb.fsync": {eps: 480_000},
		},
		"e-100B": {
			"redis.fsync":          {eps: 20_000, p99: 19},
			"goethe-leveldb.fsync": {eps: 19_900, p99: 4},
			"goethe-pebble.fsync":  {eps: 10_000, p99: 900},
		},
	})
	got := map[string]Target{}
	for _, tg := range r.Targets() {
		got[tg.Figure] = tg
	}
	require.Len(t, got, len(issueTargets))
	for _, tc := range []struct {
		figure, status, measured, others string
	}{
		{"server CPU per event, a16-100B, fsync off", StatusMet, "1.48× (20 vs 13.5 µs/event)", ""},
		{"server CPU per event, a1-100B, fsync", StatusMissed, "3.53× (455 vs 129 µs/event)", ""},
		{"load generator CPU per event vs go-redis, a16-100B, fsync off", StatusMissed, "1.90× (40 vs 21 µs/event)", ""},
		{"load generator CPU per event vs go-redis, a1-100B, fsync", StatusMet, "1.14× (100 vs 88 µs/event)", ""},
		{"(a) 16 producers × 1 × 100 B, fsync", StatusMet, "2.20× (66k vs 30k events/s)", "pebble 1.67×"},
		{"(a') 1 producer × 1 × 100 B, fsync", StatusMissed, "0.75× (3000 vs 4000 events/s)", ""},
		{"(a') 1 producer × 1 × 100 B, fsync, against the disk", StatusMissed, "60% (3000 of 5000/s)", ""},
		{"(b') 1,000 pipelined single events, fsync", StatusMet, "2.00× (480k vs 240k events/s)", ""},
		{"(b') 1,000 pipelined single events, fsync, against Redis everysec", StatusMissed, "0.96× (480k vs 500k events/s)", ""},
		{"(d) 16 producers × 1 × 1 KiB, fsync", StatusUnmeasured, "no Goethe run", ""},
		{"(e) 20k events/s offered by 16 producers, fsync: end-to-end p99", StatusMet, "4 ms", "pebble saturated"},
		{"(e) 20k events/s offered by 16 producers, fsync: p99 against Redis always", StatusMet, "0.21× (4 vs 19 ms)", "pebble saturated"},
	} {
		tg, ok := got[tc.figure]
		require.True(t, ok, tc.figure)
		require.Equal(t, tc.status, tg.Status, tc.figure)
		require.Equal(t, tc.measured, tg.Measured, tc.figure)
		require.Equal(t, tc.others, tg.Others, tc.figure)
	}

	var b strings.Builder
	require.NoError(t, r.WriteSummary(&b))
	s := b.String()
	for _, want := range []string{
		"## Targets",
		"measured on Goethe leveldb (async client)",
		"| (a) 16 producers × 1 × 100 B, fsync | ≥ 2× Redis always | 2.20× (66k vs 30k events/s) | pebble 1.67× | met |",
		"| (d) 16 producers × 1 × 1 KiB, fsync | ≥ 2× Redis always | no Goethe run |  | not measured |",
		"**missed**",
		"**5000/s** with 100 B records, 1000/s with 4 KiB ones",
		"Goethe leveldb 3000 events/s = 60%",
		"the **async** (one client connection shared by all producers",
		"server CPU µs/event | client CPU µs/event",
		"| **Goethe leveldb** | `--sync=true`, async client | 66k | 0 | – | 30 | 30 | **2.20×** |",
	} {
		require.Contains(t, s, want)
	}
}
