package server

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/internal/buildinfo"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// Metrics are a server's Prometheus metrics, in a registry of their own
// (not prometheus.DefaultRegisterer) that also holds the Go runtime and
// process collectors. Create them with NewMetrics, hand them to New in
// Options.Metrics, and serve Handler at /metrics.
//
// # Families
//
// Every family is in the namespace "goethe":
//
//   - goethe_build_info (gauge, always 1): the running binary's build in
//     its labels version, commit and go_version (internal/buildinfo), one
//     series per process.
//   - goethe_grpc_server_handled_total (counter) and
//     goethe_grpc_server_handling_seconds (histogram): every gRPC call
//     the server handled, by grpc_type, grpc_method and grpc_code. A
//     stream's handling time is its whole life.
//   - goethe_consume_open_streams (gauge) and
//     goethe_consume_sent_events_total (counter): Consume streams now open
//     and the events all Consume streams have sent.
//   - goethe_store_commits_total, goethe_store_requests_total,
//     goethe_store_appended_events_total, goethe_store_appended_bytes_total,
//     goethe_store_write_seconds_total (counters) and
//     goethe_store_commit_requests_max (gauge): the log's group commits,
//     and goethe_store_dedupe_forgotten_keys_total (counter): dedupe keys
//     forgotten early, past a topic's limit (see store/dedupe.go),
//     read from its Stats at scrape time when it has them (CommitStats;
//     *store.Store does); goethe_store_reclaimed_events_total (counter):
//     event records of deleted topics removed in the background.
//   - goethe_store_commit_requests, goethe_store_commit_events and
//     goethe_store_commit_write_seconds (histograms) and
//     goethe_store_commit_failures_total (counter): one observation per group
//     commit, made when the Metrics are the store's store.CommitObserver.
//
// # Labels
//
// Labels only ever name the engine (the store's families, when
// MetricsOptions.Engine is set), a gRPC method, type and code, or the
// build (goethe_build_info's one series) — never a
// topic or a consumer, which are unbounded: a deployment may hold millions
// of topics, and a label value per topic would take the Prometheus server
// down. Per-topic figures (a consumer's lag, a topic's counts) are served
// by GetCursor and GetTopic instead.
//
// The methods of Metrics are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	handled  *prometheus.CounterVec
	handling *prometheus.HistogramVec
	// methods caches each registered method's OK series, so that the
	// common case costs no label lookup. Written by New before the server
	// serves, read-only afterwards.
	methods atomic.Pointer[map[string]*methodMetrics]

	consumeOpen prometheus.Gauge
	consumeSent prometheus.Counter

	commitRequests prometheus.Histogram
	commitEvents   prometheus.Histogram
	commitWrite    prometheus.Histogram
	commitFailures prometheus.Counter

	// damagedReads counts calls answered DATA_LOSS: reads that met a
	// record whose checksum or layout is wrong.
	damagedReads prometheus.Counter
	// doorRefusals counts Produce and ProduceStream calls refused at the
	// door (admission.go): no interceptor sees them.
	doorRefusals prometheus.Counter
	// writesUp is 1 while the store takes writes, 0 while its write path
	// is down (a full disk, or a failed write until restart).
	writesUp prometheus.Gauge

	// Fan-out rounds (consume_rounds.go).
	fanoutRounds    prometheus.Histogram // each round's duration
	fanoutFollowers prometheus.Gauge     // followers in rounds now
	fanoutStalled   prometheus.Counter   // taken out of a round by a stalled Send

	stats   *storeStats
	cluster *clusterStats // goethe_cluster_*, from the bound Log's RaftStatus
}

// MetricsOptions configures NewMetrics.
type MetricsOptions struct {
	// Engine, if not empty, is the value of the constant label "engine" on
	// the store's families (goethe_store_*): the storage engine the store
	// runs on.
	Engine string
}

// Metric namespace and label names.
const (
	metricsNamespace = "goethe"
	labelType        = "grpc_type"
	labelMethod      = "grpc_method"
	labelCode        = "grpc_code"
	labelEngine      = "engine"
)

// Histogram buckets. gRPC handling times span a unary call on loopback
// (tens of µs) to a following Consume stream (minutes, beyond the last
// bucket); an engine write with sync takes from ~50µs (no sync) to tens of
// ms on a slow disk. Group sizes grow by powers of two up to the store's
// defaults (store.DefaultMaxGroupEvents).
var (
	handlingBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60}
	writeBuckets    = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
	requestBuckets  = prometheus.ExponentialBuckets(1, 2, 12) // 1 … 2048
	eventBuckets    = prometheus.ExponentialBuckets(1, 4, 10) // 1 … 262144
)

// NewMetrics returns a server's metrics, registered in a new registry
// together with the Go runtime and process collectors and
// goethe_build_info (the running binary's version, commit and Go version,
// as labels of a gauge that is always 1).
func NewMetrics(opts MetricsOptions) *Metrics {
	var storeLabels prometheus.Labels
	if opts.Engine != "" {
		storeLabels = prometheus.Labels{labelEngine: opts.Engine}
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: "grpc_server", Name: "handled_total",
			Help: "gRPC calls handled by the server, by type, method and status code.",
		}, []string{labelType, labelMethod, labelCode}),
		handling: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: "grpc_server", Name: "handling_seconds",
			Help:    "Time the server took to handle gRPC calls (a stream's whole life), by type, method and status code.",
			Buckets: handlingBuckets,
		}, []string{labelType, labelMethod, labelCode}),
		consumeOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Subsystem: "consume", Name: "open_streams",
			Help: "Consume streams now open, following ones included.",
		}),
		consumeSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: "consume", Name: "sent_events_total",
			Help: "Events sent by Consume streams.",
		}),
		commitRequests: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: "store", Name: "commit_requests",
			Help:        "Requests (Appends and cursor commits) per group commit.",
			Buckets:     requestBuckets,
			ConstLabels: storeLabels,
		}),
		commitEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: "store", Name: "commit_events",
			Help:        "Events per group commit.",
			Buckets:     eventBuckets,
			ConstLabels: storeLabels,
		}),
		commitWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: "store", Name: "commit_write_seconds",
			Help:        "Time of each group commit's engine batch write, its sync included.",
			Buckets:     writeBuckets,
			ConstLabels: storeLabels,
		}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: "store", Name: "commit_failures_total",
			Help:        "Group commits whose engine batch write failed.",
			ConstLabels: storeLabels,
		}),
		damagedReads: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: "store", Name: "damaged_reads_total",
			Help:        "Calls answered DATA_LOSS: reads that met a record damaged on disk (checksum mismatch, bad layout). Any increase needs an operator: run goethe check on the stopped folder.",
			ConstLabels: storeLabels,
		}),
		doorRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: "admission", Name: "door_refusals_total",
			Help: "Produce and ProduceStream calls refused RESOURCE_EXHAUSTED (MEMORY_BUDGET) before any of their bytes was read, while the in-flight budget was exhausted. They are not in goethe_grpc_server_handled_total.",
		}),
		writesUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Subsystem: "store", Name: "writes_up",
			Help:        "1 while the store takes writes; 0 while its write path is down (full disk: resumes by itself once space is freed; a failed write: until restart).",
			ConstLabels: storeLabels,
		}),
		fanoutRounds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: "fanout", Name: "round_seconds",
			Help:    "Time of each fan-out round: one goroutine sending a topic's new events to its followers at the end (its count is the number of rounds).",
			Buckets: writeBuckets,
		}),
		fanoutFollowers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Subsystem: "fanout", Name: "round_followers",
			Help: "Followers now served by fan-out rounds (the others send for themselves: bounded streams, followers catching up).",
		}),
		fanoutStalled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: "fanout", Name: "stalled_total",
			Help: "Followers taken out of a fan-out round because a Send to them did not return within the send lease (their client did not read); each goes on by itself, bounded by --slow-consumer-timeout.",
		}),
		stats:   newStoreStats(storeLabels),
		cluster: newClusterStats(),
	}
	m.writesUp.Set(1)
	build := buildinfo.Read()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Name: "build_info",
		Help:        "Always 1; its labels say which build of goethe runs: the module version, the VCS commit (empty when the build recorded none) and the Go version.",
		ConstLabels: prometheus.Labels{"version": build.Version, "commit": build.Commit, "go_version": build.Go},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(
		buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.handled, m.handling, m.consumeOpen, m.consumeSent,
		m.commitRequests, m.commitEvents, m.commitWrite, m.commitFailures,
		m.damagedReads, m.doorRefusals, m.writesUp,
		m.fanoutRounds, m.fanoutFollowers, m.fanoutStalled,
		m.stats, m.cluster,
	)
	return m
}

// observeDamagedRead counts one call answered DATA_LOSS; nil-safe.
func (m *Metrics) observeDamagedRead() {
	if m != nil {
		m.damagedReads.Inc()
	}
}

// observeDoorRefusal counts one call refused at the door; nil-safe.
func (m *Metrics) observeDoorRefusal() {
	if m != nil {
		m.doorRefusals.Inc()
	}
}

// observeRound records one fan-out round's duration; nil-safe.
func (m *Metrics) observeRound(d time.Duration) {
	if m != nil {
		m.fanoutRounds.Observe(d.Seconds())
	}
}

// observeRoundFollowers adds delta to the followers in rounds; nil-safe.
func (m *Metrics) observeRoundFollowers(delta int) {
	if m != nil {
		m.fanoutFollowers.Add(float64(delta))
	}
}

// observeStalled counts one follower taken out of a round by a stalled
// Send; nil-safe.
func (m *Metrics) observeStalled() {
	if m != nil {
		m.fanoutStalled.Inc()
	}
}

// observeWritesUp sets goethe_store_writes_up; nil-safe.
func (m *Metrics) observeWritesUp(up bool) {
	if m == nil {
		return
	}
	if up {
		m.writesUp.Set(1)
	} else {
		m.writesUp.Set(0)
	}
}

// Registry is the registry the metrics are in, for tests and for adding
// collectors of one's own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats, for
// /metrics. It counts its own scrapes (promhttp_metric_handler_*). A
// collector that fails is reported in the scrape and the rest is served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:      m.reg,
		ErrorHandling: promhttp.ContinueOnError,
	}))
}

// ObserveCommit implements store.CommitObserver: one observation per group
// commit in the goethe_store_commit_* families. It never blocks.
func (m *Metrics) ObserveCommit(requests, events, _ int, write time.Duration, err error) {
	m.commitRequests.Observe(float64(requests))
	m.commitEvents.Observe(float64(events))
	m.commitWrite.Observe(write.Seconds())
	if err != nil {
		m.commitFailures.Inc()
	}
}

var _ store.CommitObserver = (*Metrics)(nil)

// bind makes the store families report log's counters, the Log of a new
// Server, when it has them (CommitStats); otherwise they report nothing. A
// Metrics used by several Servers in turn reports the latest one's Log
// (whose counters start from zero, which Prometheus reads as a reset).
func (m *Metrics) bind(log Log) {
	cs, _ := log.(CommitStats)
	m.stats.src.Store(&statsSource{cs})
	rs, _ := log.(RaftStatus)
	m.cluster.src.Store(&raftSource{rs})
}

// methodMetrics are one method's series for status OK.
type methodMetrics struct {
	typ      string
	handled  prometheus.Counter
	handling prometheus.Observer
}

// initMethods creates the OK series of every method registered on gs, so
// that each shows (at zero) from the first scrape, and caches them. It is
// called by New once the services are registered.
func (m *Metrics) initMethods(gs *grpc.Server) {
	methods := map[string]*methodMetrics{}
	for svc, info := range gs.GetServiceInfo() {
		for _, mi := range info.Methods {
			full := "/" + svc + "/" + mi.Name
			typ := grpcType(mi.IsClientStream, mi.IsServerStream)
			ok := codes.OK.String()
			methods[full] = &methodMetrics{
				typ:      typ,
				handled:  m.handled.WithLabelValues(typ, full, ok),
				handling: m.handling.WithLabelValues(typ, full, ok),
			}
		}
	}
	m.methods.Store(&methods)
}

// observe records one handled call of method.
func (m *Metrics) observe(typ, method string, err error, start time.Time) {
	d := time.Since(start).Seconds()
	code := status.Code(err)
	if methods := m.methods.Load(); code == codes.OK && methods != nil {
		if mm := (*methods)[method]; mm != nil {
			mm.handled.Inc()
			mm.handling.Observe(d)
			return
		}
	}
	m.handled.WithLabelValues(typ, method, code.String()).Inc()
	m.handling.WithLabelValues(typ, method, code.String()).Observe(d)
}

// unaryInterceptor counts and times every unary call.
func (m *Metrics) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(grpcType(false, false), info.FullMethod, err, start)
	return resp, err
}

// streamInterceptor counts and times every streaming call, keeps the open
// Consume streams gauge, and counts the events Consume streams send.
func (m *Metrics) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	if info.FullMethod == goethev1.Goethe_Consume_FullMethodName {
		m.consumeOpen.Inc()
		defer m.consumeOpen.Dec()
		ss = &consumeStream{ServerStream: ss, sent: m.consumeSent}
	}
	err := handler(srv, ss)
	m.observe(grpcType(info.IsClientStream, info.IsServerStream), info.FullMethod, err, start)
	return err
}

// grpcType is the grpc_type label value of a method, as
// go-grpc-middleware's prometheus provider names it.
func grpcType(clientStream, serverStream bool) string {
	switch {
	case clientStream && serverStream:
		return "bidi_stream"
	case clientStream:
		return "client_stream"
	case serverStream:
		return "server_stream"
	}
	return "unary"
}

// consumeStream counts the events of every ConsumeResponse sent.
type consumeStream struct {
	grpc.ServerStream
	sent prometheus.Counter
}

// SendMsg sends msg and, once it is sent, counts its events.
func (s *consumeStream) SendMsg(msg any) error {
	err := s.ServerStream.SendMsg(msg)
	if r, ok := msg.(*goethev1.ConsumeResponse); ok && err == nil && len(r.Events) > 0 {
		s.sent.Add(float64(len(r.Events)))
	}
	return err
}

// storeStats is a collector of a Log's cumulative commit counters
// (CommitStats), read when scraped. It reports nothing until bound, or
// when the bound Log has no counters.
type storeStats struct {
	src atomic.Pointer[statsSource]

	commits, requests, events, bytes, writeSeconds, maxRequests, forgotten, reclaimed *prometheus.Desc
}

// statsSource holds the bound Log's CommitStats, nil when it has none.
type statsSource struct{ CommitStats }

func newStoreStats(labels prometheus.Labels) *storeStats {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, "store", name), help, nil, labels)
	}
	return &storeStats{
		commits:      desc("commits_total", "Group commits: engine batch writes, failed ones included."),
		requests:     desc("requests_total", "Requests (Appends and cursor commits) in group commits; divided by commits, the mean group size."),
		events:       desc("appended_events_total", "Events in group commits."),
		bytes:        desc("appended_bytes_total", "Key and value bytes written by group commits: events, with their keys, topic metadata and cursors."),
		writeSeconds: desc("write_seconds_total", "Time spent in engine batch writes, their syncs included."),
		maxRequests:  desc("commit_requests_max", "Most requests in one group commit since the store opened."),
		forgotten: desc("dedupe_forgotten_keys_total", "Dedupe keys a topic forgot before its window ended, "+
			"because it held the most keys a topic remembers (store.DefaultMaxDedupeKeys): a retry of such an event is stored again."),
		reclaimed: desc("reclaimed_events_total", "Event records of deleted topics removed in the background."),
	}
}

// Describe implements prometheus.Collector.
func (c *storeStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.commits, c.requests, c.events, c.bytes, c.writeSeconds, c.maxRequests, c.forgotten, c.reclaimed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *storeStats) Collect(ch chan<- prometheus.Metric) {
	src := c.src.Load()
	if src == nil || src.CommitStats == nil {
		return
	}
	s := src.Stats()
	ch <- prometheus.MustNewConstMetric(c.commits, prometheus.CounterValue, float64(s.Commits))
	ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(s.Requests))
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(s.Events))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(c.writeSeconds, prometheus.CounterValue, s.WriteTime.Seconds())
	ch <- prometheus.MustNewConstMetric(c.maxRequests, prometheus.GaugeValue, float64(s.MaxRequests))
	ch <- prometheus.MustNewConstMetric(c.forgotten, prometheus.CounterValue, float64(s.DedupeForgotten))
	ch <- prometheus.MustNewConstMetric(c.reclaimed, prometheus.CounterValue, float64(s.Reclaimed))
}

// RaftStatus is an ability a Log may have beside Log: its Raft member's
// view, read when metrics are scraped (the goethe_cluster_* families).
// *cluster.Log has it.
type RaftStatus interface {
	Status() cluster.Status
}

var _ RaftStatus = (*cluster.Log)(nil)

// clusterStats is a collector of the bound Log's RaftStatus; it reports
// nothing for a Log without one (a single node).
type clusterStats struct {
	src atomic.Pointer[raftSource]

	leader, term, commitIndex, appliedIndex, leaderChanges, snapshotsRestored *prometheus.Desc
}

// raftSource holds the bound Log's RaftStatus, nil when it has none.
type raftSource struct{ RaftStatus }

func newClusterStats() *clusterStats {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, "cluster", name), help, nil, nil)
	}
	return &clusterStats{
		leader:            desc("leader", "1 while this member is the Raft leader, else 0."),
		term:              desc("term", "The Raft term this member is in."),
		commitIndex:       desc("commit_index", "The last Raft log index this member knows committed."),
		appliedIndex:      desc("applied_index", "The last Raft log index whose effects this member's store holds; commit_index minus it is the apply lag."),
		leaderChanges:     desc("leader_changes_total", "Changes of the leader this member knew of (a loss counts, a new leader counts)."),
		snapshotsRestored: desc("snapshots_restored_total", "Raft snapshots installed into this member's store."),
	}
}

// Describe implements prometheus.Collector.
func (c *clusterStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.leader, c.term, c.commitIndex, c.appliedIndex, c.leaderChanges, c.snapshotsRestored} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *clusterStats) Collect(ch chan<- prometheus.Metric) {
	src := c.src.Load()
	if src == nil || src.RaftStatus == nil {
		return
	}
	s := src.Status()
	leader := 0.0
	if s.State == "Leader" {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, leader)
	ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(s.Term))
	ch <- prometheus.MustNewConstMetric(c.commitIndex, prometheus.GaugeValue, float64(s.CommitIndex))
	ch <- prometheus.MustNewConstMetric(c.appliedIndex, prometheus.GaugeValue, float64(s.AppliedIndex))
	ch <- prometheus.MustNewConstMetric(c.leaderChanges, prometheus.CounterValue, float64(s.LeaderChanges))
	ch <- prometheus.MustNewConstMetric(c.snapshotsRestored, prometheus.CounterValue, float64(s.SnapshotsRestored))
}
