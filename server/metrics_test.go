package server_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/buildinfo"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// metricsServer is a real server with metrics on a loopback listener, its
// /metrics served over HTTP on another.
type metricsServer struct {
	c       *client.Client
	raw     goethev1.GoetheClient
	url     string // of /metrics
	engine  string
	metrics *server.Metrics
}

func startMetricsServer(t *testing.T, engine string) *metricsServer {
	t.Helper()
	m := server.NewMetrics(server.MetricsOptions{Engine: engine})
	sopts := store.DefaultOptions()
	sopts.Observer = m
	addr, _ := testutil.StartServer(t, engine, t.TempDir(), sopts, server.Options{Metrics: m})
	hs := httptest.NewServer(m.Handler())

	c, err := client.Dial(addr)
	require.NoError(t, err)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, c.Close())
		require.NoError(t, conn.Close())
		hs.Close()
	})
	return &metricsServer{c: c, raw: goethev1.NewGoetheClient(conn), url: hs.URL + "/metrics",
		engine: engine, metrics: m}
}

// scrape is one scrape of /metrics: the text as served and its families.
type scrape struct {
	text     string
	families map[string]*dto.MetricFamily
}

func scrapeMetrics(t *testing.T, url string) scrape {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	require.NoError(t, err, "the scrape parses as the text format")
	return scrape{text: string(b), families: fams}
}

// metric returns the series of family name whose labels include
// labelPairs (name, value, name, value, …), requiring exactly one.
func (s scrape) metric(t *testing.T, name string, labelPairs ...string) *dto.Metric {
	t.Helper()
	f := s.families[name]
	require.NotNil(t, f, "family %s is served", name)
	var found []*dto.Metric
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i < len(labelPairs); i += 2 {
			if have[labelPairs[i]] != labelPairs[i+1] {
				match = false
			}
		}
		if match {
			found = append(found, m)
		}
	}
	require.Len(t, found, 1, "one series of %s with %v", name, labelPairs)
	return found[0]
}

// value is a counter's or gauge's value.
func (s scrape) value(t *testing.T, name string, labelPairs ...string) float64 {
	t.Helper()
	m := s.metric(t, name, labelPairs...)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", name)
	return 0
}

func (s scrape) histogram(t *testing.T, name string, labelPairs ...string) *dto.Histogram {
	t.Helper()
	h := s.metric(t, name, labelPairs...).Histogram
	require.NotNil(t, h, "%s is a histogram", name)
	return h
}

// goetheLabels are the only label names a goethe_* family may have: an
// engine, a gRPC type, method and code. None can name a topic or consumer.
var goetheLabels = map[string]bool{"engine": true, "grpc_type": true, "grpc_method": true, "grpc_code": true}

const (
	produceMethod = "/goethe.v1.Goethe/Produce"
	consumeMethod = "/goethe.v1.Goethe/Consume"
)

func TestMetrics(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ms := startMetricsServer(t, engine)
		ctx := ctxT(t)
		eng := []string{"engine", engine}

		// Before any call: every method's OK series is there at zero, and
		// so are the runtime and process collectors.
		s := scrapeMetrics(t, ms.url)
		require.Zero(t, s.value(t, "goethe_grpc_server_handled_total", "grpc_type", "unary", "grpc_method", produceMethod, "grpc_code", "OK"))
		require.Zero(t, s.value(t, "goethe_grpc_server_handled_total", "grpc_type", "server_stream", "grpc_method", consumeMethod, "grpc_code", "OK"))
		require.Zero(t, s.histogram(t, "goethe_grpc_server_handling_seconds", "grpc_method", produceMethod, "grpc_code", "OK").GetSampleCount())
		require.Zero(t, s.value(t, "goethe_consume_open_streams"))
		require.Zero(t, s.value(t, "goethe_consume_sent_events_total"))
		require.Zero(t, s.value(t, "goethe_store_appended_events_total", eng...))
		for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_start_time_seconds", "process_resident_memory_bytes"} {
			require.Contains(t, s.families, name)
		}

		// Several topics, a cursor, a rejected Produce.
		topics := []string{"orders-3f9c1a", "payments-7b2e44", "audit-c81d05"}
		const consumer = "billing-5e0d2b"
		for _, topic := range topics {
			for _, n := range []int{3, 2} {
				_, err := ms.c.Produce(ctx, topic, make([]client.EventData, n))
				require.NoError(t, err)
			}
		}
		_, err := ms.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: topics[0]})
		requireCode(t, err, codes.InvalidArgument)
		require.NoError(t, ms.c.CommitCursor(ctx, topics[0], consumer, 1))
		cur, err := ms.c.GetCursor(ctx, topics[0], consumer)
		require.NoError(t, err)
		require.Equal(t, uint64(5), cur.Lag, "every event is after a cursor at id 1")

		// A Consume to the end, and a following one that gets one event.
		require.Len(t, ms.readAll(t, topics[1]), 5)
		sub, err := ms.c.Subscribe(ctx, topics[2], client.ConsumeOptions{From: client.End(), Follow: true})
		require.NoError(t, err)
		require.Equal(t, 1.0, scrapeMetrics(t, ms.url).value(t, "goethe_consume_open_streams"))
		_, err = ms.c.Produce(ctx, topics[2], []client.EventData{{Payload: []byte("live")}})
		require.NoError(t, err)
		require.Equal(t, "live", string(next(t, sub).Payload))
		sub.Close()
		require.Eventually(t, func() bool {
			return scrapeMetrics(t, ms.url).value(t, "goethe_consume_open_streams") == 0
		}, 10*time.Second, 5*time.Millisecond, "the stream's end closes it in the gauge")

		s = scrapeMetrics(t, ms.url)
		handled := func(typ, method, code string) float64 {
			return s.value(t, "goethe_grpc_server_handled_total", "grpc_type", typ, "grpc_method", method, "grpc_code", code)
		}
		require.Equal(t, 7.0, handled("unary", produceMethod, "OK"))
		require.Equal(t, 1.0, handled("unary", produceMethod, "InvalidArgument"))
		require.Equal(t, 1.0, handled("unary", "/goethe.v1.Goethe/CommitCursor", "OK"))
		require.Equal(t, 1.0, handled("unary", "/goethe.v1.Goethe/GetCursor", "OK"))
		require.Equal(t, 1.0, handled("server_stream", consumeMethod, "OK"))
		require.Equal(t, 1.0, handled("server_stream", consumeMethod, "Canceled"))
		h := s.histogram(t, "goethe_grpc_server_handling_seconds", "grpc_type", "unary", "grpc_method", produceMethod, "grpc_code", "OK")
		require.Equal(t, uint64(7), h.GetSampleCount())
		require.Positive(t, h.GetSampleSum())
		require.Equal(t, 6.0, s.value(t, "goethe_consume_sent_events_total"), "5 read to the end, 1 followed")

		// The store's counters: 16 events in 7 Appends and 1 cursor commit.
		require.Equal(t, 16.0, s.value(t, "goethe_store_appended_events_total", eng...))
		require.Equal(t, 8.0, s.value(t, "goethe_store_requests_total", eng...))
		commits := s.value(t, "goethe_store_commits_total", eng...)
		require.GreaterOrEqual(t, commits, 1.0)
		require.LessOrEqual(t, commits, 8.0)
		require.Positive(t, s.value(t, "goethe_store_appended_bytes_total", eng...))
		require.Positive(t, s.value(t, "goethe_store_write_seconds_total", eng...))
		require.GreaterOrEqual(t, s.value(t, "goethe_store_commit_requests_max", eng...), 1.0)
		require.Zero(t, s.value(t, "goethe_store_reclaimed_events_total", eng...), "no topic was deleted")

		// No topic or consumer is named anywhere: not as a label, not at all.
		for _, name := range append(topics, consumer) {
			require.NotContains(t, s.text, name)
		}
		for name, f := range s.families {
			if !strings.HasPrefix(name, "goethe_") {
				continue
			}
			for _, m := range f.Metric {
				for _, l := range m.Label {
					if name == "goethe_build_info" {
						continue // one series, of the binary's build
					}
					require.True(t, goetheLabels[l.GetName()], "%s has label %s", name, l.GetName())
				}
			}
		}

		t.Run("commit histograms", func(t *testing.T) {
			require.Equal(t, uint64(commits), s.histogram(t, "goethe_store_commit_events", eng...).GetSampleCount())
			require.Equal(t, 16.0, s.histogram(t, "goethe_store_commit_events", eng...).GetSampleSum())
			require.Equal(t, 8.0, s.histogram(t, "goethe_store_commit_requests", eng...).GetSampleSum())
			w := s.histogram(t, "goethe_store_commit_write_seconds", eng...)
			require.Equal(t, uint64(commits), w.GetSampleCount())
			require.InDelta(t, s.value(t, "goethe_store_write_seconds_total", eng...), w.GetSampleSum(), 1e-6)
			require.Zero(t, s.value(t, "goethe_store_commit_failures_total", eng...))
		})
	})
}

// readAll consumes topic from the beginning without following.
func (ms *metricsServer) readAll(t *testing.T, topic string) []client.Event {
	t.Helper()
	var evs []client.Event
	for ev, err := range ms.c.Consume(ctxT(t), topic, client.ConsumeOptions{}) {
		require.NoError(t, err)
		evs = append(evs, ev)
	}
	return evs
}

// ObserveCommit feeds the per-commit histograms, whatever calls it.
func TestMetricsObserveCommit(t *testing.T) {
	m := server.NewMetrics(server.MetricsOptions{Engine: "bolt"})
	m.ObserveCommit(3, 10, 1000, 2*time.Millisecond, nil)
	m.ObserveCommit(1, 0, 50, 20*time.Millisecond, errors.New("disk full"))
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	s := scrapeMetrics(t, hs.URL)

	eng := []string{"engine", "bolt"}
	req := s.histogram(t, "goethe_store_commit_requests", eng...)
	require.Equal(t, uint64(2), req.GetSampleCount())
	require.Equal(t, 4.0, req.GetSampleSum())
	require.Equal(t, 10.0, s.histogram(t, "goethe_store_commit_events", eng...).GetSampleSum())
	w := s.histogram(t, "goethe_store_commit_write_seconds", eng...)
	require.Equal(t, uint64(2), w.GetSampleCount())
	require.InDelta(t, 0.022, w.GetSampleSum(), 1e-9)
	require.Equal(t, 1.0, s.value(t, "goethe_store_commit_failures_total", eng...))

	// Not yet serving a store: the store's counters are absent, not zero.
	require.NotContains(t, s.families, "goethe_store_commits_total")
}

// Without an engine name, no series has an engine label.
func TestMetricsNoEngineLabel(t *testing.T) {
	m := server.NewMetrics(server.MetricsOptions{})
	m.ObserveCommit(1, 1, 1, time.Millisecond, nil)
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	s := scrapeMetrics(t, hs.URL)
	require.Empty(t, s.metric(t, "goethe_store_commit_events").Label)
	require.NotContains(t, s.text, `engine="`)
}

// logOnly is a Log with no ability beyond the interface: the methods of
// Log are all it has, as a log standing in for the store might.
type logOnly struct{ server.Log }

// A Log without CommitStats serves every call; the store's counter
// families are absent from its metrics, not zero.
func TestMetricsLogWithoutStats(t *testing.T) {
	e, err := engines.Open("leveldb", t.TempDir())
	require.NoError(t, err)
	st, err := store.Open(e, store.DefaultOptions())
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	m := server.NewMetrics(server.MetricsOptions{})
	srv, err := server.New(logOnly{st}, server.Options{Metrics: m})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		require.NoError(t, srv.Stop(ctxT(t)))
		require.NoError(t, <-served)
	}()
	c, err := client.Dial(lis.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Produce(ctxT(t), "t", []client.EventData{{Payload: []byte("x")}})
	require.NoError(t, err)

	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	s := scrapeMetrics(t, hs.URL)
	require.Equal(t, 1.0, s.value(t, "goethe_grpc_server_handled_total", "grpc_method", produceMethod, "grpc_code", "OK"))
	require.NotContains(t, s.families, "goethe_store_commits_total")
}

// TestMetricsBuildInfo: goethe_build_info is one series, 1, labelled with
// the running binary's version, commit and Go version.
func TestMetricsBuildInfo(t *testing.T) {
	m := server.NewMetrics(server.MetricsOptions{})
	hs := httptest.NewServer(m.Handler())
	t.Cleanup(hs.Close)
	s := scrapeMetrics(t, hs.URL+"/metrics")
	b := buildinfo.Read()
	require.Equal(t, 1.0, s.value(t, "goethe_build_info", "version", b.Version, "commit", b.Commit, "go_version", runtime.Version()))
	require.Len(t, s.families["goethe_build_info"].Metric, 1)
}
