package loadgen_test

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/loadgen"
	"github.com/goethe-log/goethe/server"
	"github.com/goethe-log/goethe/store"
)

// startServer serves a real store on a real engine in a temporary folder
// on a loopback listener, and returns its address. Commits are not synced:
// the tests measure counts, not durability.
func startServer(t *testing.T) string {
	opts := store.DefaultOptions()
	opts.UnsafeNoSync = true
	addr, _ := testutil.StartServer(t, engines.Default, t.TempDir(), opts, server.DefaultOptions())
	return addr
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// topicCount returns how many events a topic holds.
func topicCount(t *testing.T, addr, topic string) uint64 {
	t.Helper()
	c, err := client.Dial(addr)
	require.NoError(t, err)
	defer c.Close()
	info, err := c.Topic(ctxT(t), topic)
	require.NoError(t, err)
	return info.Count
}

func TestRunEventsProducedAndConsumed(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	cfg := loadgen.DefaultConfig()
	cfg.Producers, cfg.Inflight, cfg.Batch, cfg.Size = 4, 2, 10, 64
	cfg.Events = 2005 // producers send 502, 501, 501, 501: 51 calls each
	cfg.Topics, cfg.Consumers = 2, 4
	cfg.Label = "goethe test"
	var progress bytes.Buffer

	res, err := loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), cfg, &progress)
	require.NoError(t, err)

	p := res.Produce
	require.EqualValues(t, 2005, p.Events)
	require.EqualValues(t, 4*51, p.Calls)
	require.EqualValues(t, 2005*64, p.Bytes)
	require.Zero(t, p.Errors)
	require.EqualValues(t, 4*51, p.CallLatency.Count)
	require.Positive(t, p.EventsPerSec)
	require.Positive(t, p.CallLatency.P50)
	require.LessOrEqual(t, p.CallLatency.P50, p.CallLatency.P99)
	require.LessOrEqual(t, p.CallLatency.P99, p.CallLatency.Max)

	// Two consumers per topic: every event arrives twice.
	s := res.Consume
	require.Equal(t, 4, s.Consumers)
	require.EqualValues(t, 2*2005, s.Expected)
	require.EqualValues(t, 2*2005, s.Events)
	require.Zero(t, s.Missing)
	require.EqualValues(t, 2*2005, s.EndToEnd.Count)
	require.Positive(t, s.EndToEnd.Max)
	require.Positive(t, s.MBPerSec)
	require.Zero(t, res.Errors)
	require.Equal(t, "produce", res.Mode)
	require.Equal(t, "goethe test", res.Label)
	requireCPU(t, res.ClientCPU, p.Events)

	// Producers 0 and 2 write topic 0, 1 and 3 topic 1; probes come on top.
	require.EqualValues(t, 502+501, topicCount(t, addr, "bench-0")-countProbes(t, addr, "bench-0"))
	require.EqualValues(t, 501+501, topicCount(t, addr, "bench-1")-countProbes(t, addr, "bench-1"))

	require.Contains(t, progress.String(), "producing")
	text := res.Summary()
	for _, want := range []string{"goethe test", "4 producers × 2 in flight", "produce call", "end to end", "2,005",
		"client cpu", "µs/event"} {
		require.Contains(t, text, want)
	}
}

// requireCPU checks that cpu is a measurement of a run of events events
// on this machine: positive, consistent, and no more cores than it has.
func requireCPU(t *testing.T, cpu loadgen.CPU, events int64) {
	t.Helper()
	require.True(t, cpu.Measured(), "client CPU not measured: %+v", cpu)
	total := cpu.UserSeconds + cpu.SystemSeconds
	require.InDelta(t, total*1e6/float64(events), cpu.MicrosPerEvent, 1e-6*cpu.MicrosPerEvent)
	require.Positive(t, cpu.Cores)
	require.LessOrEqual(t, cpu.Cores, 1.05*float64(runtime.NumCPU()))
}

// countProbes counts the probe events (timestamp 0) of a topic.
func countProbes(t *testing.T, addr, topic string) uint64 {
	t.Helper()
	var n uint64
	for _, p := range readPayloads(t, addr, topic) {
		if ts, ok := loadgen.Timestamp(p); ok && ts == 0 {
			n++
		}
	}
	return n
}

func readPayloads(t *testing.T, addr, topic string) [][]byte {
	t.Helper()
	c, err := client.Dial(addr)
	require.NoError(t, err)
	defer c.Close()
	var out [][]byte
	for ev, err := range c.Consume(ctxT(t), topic, client.ConsumeOptions{}) {
		require.NoError(t, err)
		out = append(out, ev.Payload)
	}
	return out
}

func TestPayloadsDistinctAndIncompressible(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	cfg := loadgen.DefaultConfig()
	cfg.Events, cfg.Batch, cfg.Size = 1000, 100, 100
	_, err := loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), cfg, nil)
	require.NoError(t, err)

	payloads := readPayloads(t, addr, "bench-0")
	require.Len(t, payloads, 1000)
	tails := make(map[string]bool)
	var all bytes.Buffer
	for _, p := range payloads {
		require.Len(t, p, 100)
		ts, _ := loadgen.Timestamp(p)
		require.InDelta(t, time.Now().UnixNano(), ts, float64(time.Minute))
		tails[string(p[8:])] = true
		all.Write(p)
	}
	require.Len(t, tails, 1000, "payload tails repeat")
	var z bytes.Buffer
	zw, err := flate.NewWriter(&z, flate.BestCompression)
	require.NoError(t, err)
	_, err = zw.Write(all.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	// Only the timestamps, shared by each batch of 100, compress.
	require.Greater(t, z.Len(), all.Len()*9/10)
}

func TestRunDurationStops(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	cfg := loadgen.DefaultConfig()
	cfg.Events, cfg.Duration = 0, 300*time.Millisecond
	cfg.Producers, cfg.Batch, cfg.Consumers = 2, 5, 1
	cfg.Topics = 1

	start := time.Now()
	res, err := loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), cfg, nil)
	require.NoError(t, err)
	took := time.Since(start)
	require.GreaterOrEqual(t, took, 300*time.Millisecond)
	require.Less(t, took, 10*time.Second)
	require.Greater(t, res.Produce.Seconds, 0.2)
	require.Less(t, res.Produce.Seconds, took.Seconds())
	require.Positive(t, res.Produce.Events)
	require.Zero(t, res.Produce.Events%5)
	require.Equal(t, res.Produce.Events, res.Consume.Events)
	require.Zero(t, res.Consume.Missing)
}

func TestRunRate(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	cfg := loadgen.DefaultConfig()
	cfg.Rate = 2000 // 200 calls of 10 a second: 40 calls in about 0.2 s
	cfg.Events, cfg.Batch = 400, 10
	cfg.Producers, cfg.Inflight, cfg.Consumers = 2, 2, 1

	res, err := loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), cfg, nil)
	require.NoError(t, err)
	require.EqualValues(t, 400, res.Produce.Events)
	require.EqualValues(t, 40, res.Produce.Calls)
	require.EqualValues(t, 400, res.Consume.Events)
	require.Equal(t, 2000.0, res.Produce.OfferedRate)
	// The last call is due 39 × 5 ms after the start.
	require.GreaterOrEqual(t, res.Produce.Seconds, 0.19)
	require.Less(t, res.Produce.EventsPerSec, 2200.0)
}

func TestRunReadBack(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	cfg := loadgen.DefaultConfig()
	cfg.TopicPrefix = "rb"
	cfg.Producers, cfg.Batch, cfg.Topics, cfg.Events = 2, 50, 2, 1000
	cfg.Consumers = 1 // leaves probe events in topic rb-0, which read-back skips
	_, err := loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), cfg, nil)
	require.NoError(t, err)

	rb := loadgen.DefaultConfig()
	rb.TopicPrefix, rb.Topics = "rb", 2
	rb.ReadBack, rb.Consumers, rb.Events = true, 3, 999 // 333 each; consumers 0 and 2 read rb-0
	var progress bytes.Buffer
	res, err := loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), rb, &progress)
	require.NoError(t, err)
	require.Equal(t, "read-back", res.Mode)
	require.EqualValues(t, 999, res.Consume.Events)
	require.EqualValues(t, 999*100, res.Consume.Bytes)
	require.EqualValues(t, 999, res.Consume.Expected)
	require.Zero(t, res.Consume.Missing)
	require.Zero(t, res.Consume.EndToEnd.Count)
	require.Zero(t, res.Produce.Events)
	require.Positive(t, res.Consume.EventsPerSec)
	requireCPU(t, res.ClientCPU, 999)
	require.Contains(t, progress.String(), "reading back")
	require.Contains(t, res.Summary(), "read back 999 events")

	// Each topic holds 500: asking 600 of each comes back short.
	rb.Consumers, rb.Events = 2, 1200
	res, err = loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), rb, nil)
	require.ErrorIs(t, err, loadgen.ErrIncomplete)
	require.EqualValues(t, 1000, res.Consume.Events)
	require.EqualValues(t, 200, res.Consume.Missing)

	// A topic that does not exist fails its consumer.
	rb.TopicPrefix = "absent"
	res, err = loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), rb, nil)
	require.ErrorIs(t, err, client.ErrNotFound)
	require.EqualValues(t, 2, res.Consume.Errors)
	require.NotEmpty(t, res.ErrorSamples)
}

func TestRunStopsOnProduceErrors(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	cfg := loadgen.DefaultConfig()
	cfg.TopicPrefix = "bad\x01name" // the server refuses control characters
	res, err := loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), cfg, nil)
	require.ErrorIs(t, err, loadgen.ErrTooManyErrors)
	require.EqualValues(t, 1, res.Produce.Errors)
	require.Zero(t, res.Produce.Events)
	require.Len(t, res.ErrorSamples, 1)
	require.Contains(t, res.ErrorSamples[0], "control character")
}

func TestRunUnreachable(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	_, err = loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), loadgen.DefaultConfig(), nil)
	require.ErrorIs(t, err, client.ErrUnavailable)
	require.ErrorContains(t, err, "open producer 0")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, loadgen.DefaultConfig().Validate())
	for _, tc := range []struct {
		name string
		edit func(c *loadgen.Config)
		want string
	}{
		{"small size", func(c *loadgen.Config) { c.Size = 15 }, "size 15: must be from 16"},
		{"huge size", func(c *loadgen.Config) { c.Size = loadgen.MaxSize + 1 }, "size"},
		{"no producers", func(c *loadgen.Config) { c.Producers = 0 }, "producers 0: must be at least 1"},
		{"no inflight", func(c *loadgen.Config) { c.Inflight = 0 }, "inflight 0"},
		{"no batch", func(c *loadgen.Config) { c.Batch = 0 }, "batch 0"},
		{"events and duration", func(c *loadgen.Config) { c.Duration = time.Second }, "set exactly one of them"},
		{"neither", func(c *loadgen.Config) { c.Events = 0 }, "set exactly one of them"},
		{"negative events", func(c *loadgen.Config) { c.Events = -1 }, "events -1"},
		{"topics beyond producers", func(c *loadgen.Config) { c.Topics = 2 }, "topics 2: at most producers (1)"},
		{"no topics", func(c *loadgen.Config) { c.Topics = 0 }, "topics 0"},
		{"no prefix", func(c *loadgen.Config) { c.TopicPrefix = "" }, "topic prefix"},
		{"negative consumers", func(c *loadgen.Config) { c.Consumers = -1 }, "consumers -1"},
		{"negative rate", func(c *loadgen.Config) { c.Rate = -5 }, "rate -5"},
		{"no wait", func(c *loadgen.Config) { c.WaitTimeout = 0 }, "wait timeout"},
		{"read-back without consumers", func(c *loadgen.Config) { c.ReadBack = true }, "read-back needs at least 1 consumer"},
		{"read-back for a time", func(c *loadgen.Config) {
			c.ReadBack, c.Consumers, c.Duration = true, 1, time.Second
		}, "duration: read-back"},
		{"read-back at a rate", func(c *loadgen.Config) { c.ReadBack, c.Consumers, c.Rate = true, 1, 10 }, "rate: read-back"},
		{"read-back pipelined", func(c *loadgen.Config) { c.ReadBack, c.Consumers, c.Pipelined = true, 1, true }, "pipelined: read-back"},
		{"read-back topics", func(c *loadgen.Config) {
			c.ReadBack, c.Consumers, c.Topics, c.Producers = true, 1, 2, 2
		}, "topics 2: at most consumers (1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := loadgen.DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			require.ErrorIs(t, err, loadgen.ErrInvalidConfig)
			require.ErrorContains(t, err, tc.want)

			opened := false
			open := func(context.Context) (loadgen.Target, error) { opened = true; return nil, err }
			_, runErr := loadgen.Run(context.Background(), open, c, nil)
			require.ErrorIs(t, runErr, loadgen.ErrInvalidConfig)
			require.False(t, opened, "Run opened a target for an invalid config")
		})
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	cfg := loadgen.DefaultConfig()
	cfg.Events, cfg.Batch, cfg.Consumers, cfg.Rate = 200, 20, 1, 20_000
	res, err := loadgen.Run(ctxT(t), loadgen.GoetheOpener(addr), cfg, nil)
	require.NoError(t, err)

	b, err := json.Marshal(res)
	require.NoError(t, err)
	var back loadgen.Result
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, res, back)

	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Contains(t, doc, "produce")
	require.Contains(t, doc["produce"], "events_per_s")
	require.Contains(t, doc["produce"].(map[string]any)["call_latency"], "p99_9_us")
	require.Contains(t, doc["consume"].(map[string]any)["end_to_end_latency"], "p50_us")
	require.Contains(t, doc["config"], "producers")
	require.Contains(t, doc["client_cpu"], "us_per_event")
	require.Contains(t, doc["client_cpu"], "system_s")
}

func TestTimestamp(t *testing.T) {
	t.Parallel()
	p := make([]byte, 16)
	now := time.Now().UnixNano()
	loadgen.PutTimestamp(p, now)
	got, ok := loadgen.Timestamp(p)
	require.True(t, ok)
	require.Equal(t, now, got)
	_, ok = loadgen.Timestamp(p[:7])
	require.False(t, ok)
}
