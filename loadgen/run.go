package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Run outcomes other than success. Run wraps them with what it counted.
var (
	// ErrIncomplete: consumers did not receive every event they should
	// have before the wait timeout (or, in read-back, before the end of
	// their topics). The Result says how many are missing.
	ErrIncomplete = errors.New("loadgen: consumers did not receive every event")
	// ErrTooManyErrors: more Produce calls failed than Config.MaxErrors
	// allows, and the run stopped early.
	ErrTooManyErrors = errors.New("loadgen: too many failed Produce calls")
	// ErrNotPipelined: Config.Pipelined is set and a producer Target is not
	// a PipelineTarget. Nothing was produced.
	ErrNotPipelined = errors.New("loadgen: the target cannot send pipelined single-event requests")
)

// The values of Result.Mode.
const (
	modeProduce  = "produce"
	modeReadBack = "read-back"
)

// Polling intervals of the waits on consumers (never of a hot path).
const (
	probeEvery = 10 * time.Millisecond
	drainEvery = 2 * time.Millisecond
)

// maxErrorSamples bounds Result.ErrorSamples.
const maxErrorSamples = 5

// Run runs the workload cfg describes against the system open connects to,
// drawing a progress bar on progress (nil or io.Discard: none), and returns
// what it measured.
//
// A produce run goes in this order:
//
//  1. It opens every Target: Producers × Inflight for producing, Consumers
//     for consuming. A failure to open one ends the run, and so does a
//     producer Target that is not a PipelineTarget when Config.Pipelined
//     is set (ErrNotPipelined).
//  2. Each consumer calls Consume(FromEnd, follow) on its topic. Run then
//     appends probe events (timestamp 0) to each consumed topic, every
//     10 ms, until every consumer has received one: from then on each
//     consumer is known to receive every later event of its topic. A
//     consumer that has not within Config.WaitTimeout fails the run.
//  3. Producers start together (Result.Started) and stop at their share of
//     Config.Events or at Config.Duration. Each worker records the latency
//     of its own calls in its own histogram, so the hot path takes no lock;
//     the histograms are merged at the end.
//  4. Run waits, up to Config.WaitTimeout, until each consumer has received
//     as many events as were acknowledged on its topic, then stops them.
//
// Result.ClientCPU is this process's CPU time (getrusage) from step 3's
// start to the end of step 4: the producers', the consumers' and their
// client libraries', per acknowledged event. A read-back measures from the
// first read to the last, per event read. Anything else the process runs
// meanwhile counts too.
//
// The Result is complete whenever Run returns, even with an error, which
// is then one of: an error wrapping ErrInvalidConfig (nothing ran), a
// failure to open a Target or to probe, ErrNotPipelined, ErrTooManyErrors, a consumer's
// failure, ErrIncomplete, or ctx's error when ctx ended first. Run closes
// every Target it opened before it returns.
func Run(ctx context.Context, open Opener, cfg Config, progress io.Writer) (Result, error) {
	res := Result{Config: cfg, Label: cfg.Label, Mode: modeProduce}
	if cfg.ReadBack {
		res.Mode = modeReadBack
	}
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	r := &run{cfg: cfg, progress: progress}
	defer r.closeTargets()
	var err error
	if cfg.ReadBack {
		err = r.readBack(ctx, open)
	} else {
		err = r.produce(ctx, open)
	}
	r.result(&res)
	switch {
	case ctx.Err() != nil:
		return res, ctx.Err()
	case err != nil:
		return res, err
	}
	for i, c := range r.consumers {
		if c.err != nil {
			return res, fmt.Errorf("loadgen: consumer %d (topic %s): %w", i, c.topic, c.err)
		}
	}
	if s := res.Consume; s.Missing > 0 {
		if cfg.ReadBack {
			return res, fmt.Errorf("%w: read %d of %d events; the topics %s-* hold fewer (produce them first with the same topic prefix and topics)",
				ErrIncomplete, s.Events, s.Expected, cfg.TopicPrefix)
		}
		return res, fmt.Errorf("%w: %d of %d events missing %s after producing ended", ErrIncomplete, s.Missing, s.Expected, cfg.WaitTimeout)
	}
	return res, nil
}

// run is the state of one Run.
type run struct {
	cfg      Config
	progress io.Writer

	workers   []*worker
	consumers []*consumer
	t0        time.Time
	// CPU readings at the measured phase's start and end.
	cpu0, cpu1 cpuMark

	// Shared by the workers.
	acked    atomic.Int64 // events acknowledged, for the progress bar
	failed   atomic.Int64 // failed calls
	stopOnce sync.Once
	stopErr  error // ErrTooManyErrors, once stopped
	stop     context.CancelFunc

	mu      sync.Mutex
	samples []string // the first error messages
}

// producer is what the Inflight workers of one producer share.
type producer struct {
	index int
	quota int64        // events to send, when Config.Events is set
	calls atomic.Int64 // calls claimed, which numbers them
}

// worker is one producer slot: one Target, one call in flight.
type worker struct {
	prod   *producer
	target Target
	pipe   PipelineTarget // target, when Config.Pipelined
	topic  string
	pl     *payloads
	hist   *hdrhistogram.Histogram
	timer  *time.Timer

	// Owned by the worker's goroutine until it ends.
	events, calls int64
	lastEnd       time.Time
}

// consumer is one consuming Target.
type consumer struct {
	target   Target
	topic    string
	topicIdx int
	readBack bool
	want     int64 // read-back: events to read
	hist     *hdrhistogram.Histogram

	received   atomic.Int64 // events counted, probes excepted
	lastRecv   atomic.Int64 // Unix nanoseconds of the last one
	subscribed atomic.Bool  // a probe has arrived
	done       chan struct{}

	// Owned by the consumer's goroutine until done closes.
	n, bytes int64
	err      error
}

func (r *run) sample(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) < maxErrorSamples {
		r.samples = append(r.samples, err.Error())
	}
}

func (r *run) closeTargets() {
	for _, w := range r.workers {
		_ = w.target.Close()
	}
	for _, c := range r.consumers {
		_ = c.target.Close()
	}
}

// openConsumers opens the consumers' Targets, consumer i on topic i mod
// Topics.
func (r *run) openConsumers(ctx context.Context, open Opener) error {
	for i := range r.cfg.Consumers {
		t, err := open(ctx)
		if err != nil {
			return fmt.Errorf("loadgen: open consumer %d: %w", i, err)
		}
		k := i % r.cfg.Topics
		r.consumers = append(r.consumers, &consumer{
			target: t, topic: r.cfg.Topic(k), topicIdx: k, readBack: r.cfg.ReadBack,
			hist: newHistogram(), done: make(chan struct{}),
		})
	}
	return nil
}

func (r *run) produce(ctx context.Context, open Opener) error {
	cfg := r.cfg
	noise := newNoise(cfg.Size)
	for p := range cfg.Producers {
		prod := &producer{index: p, quota: share(cfg.Events, cfg.Producers, p)}
		for s := range cfg.Inflight {
			t, err := open(ctx)
			if err != nil {
				return fmt.Errorf("loadgen: open producer %d (slot %d): %w", p, s, err)
			}
			timer := time.NewTimer(time.Hour)
			timer.Stop()
			w := &worker{
				prod: prod, target: t, topic: cfg.Topic(p % cfg.Topics), hist: newHistogram(), timer: timer,
				pl: newPayloads(noise, cfg.Batch, cfg.Size, uint64(p), uint64(s)),
			}
			r.workers = append(r.workers, w) // closed by Run, also when it fails below
			if cfg.Pipelined {
				pt, ok := t.(PipelineTarget)
				if !ok {
					return fmt.Errorf("%w: producer %d's target is a %T", ErrNotPipelined, p, t)
				}
				w.pipe = pt
			}
		}
	}
	if err := r.openConsumers(ctx, open); err != nil {
		return err
	}

	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	for _, c := range r.consumers {
		go c.run(cctx, FromEnd, true)
	}
	defer r.waitConsumers(stopConsumers)
	if err := r.awaitSubscribed(ctx, noise); err != nil {
		return err
	}

	pctx, stop := context.WithCancel(ctx)
	defer stop()
	r.stop = stop
	r.cpu0 = markCPU()
	r.t0 = r.cpu0.wall
	var bar *progress
	if cfg.Events > 0 {
		bar = startProgress(r.progress, cfg.Events, "producing", "events", func() (int64, string) {
			return r.acked.Load(), ""
		})
	} else {
		desc := func() string {
			return fmt.Sprintf("producing for %s: %s events", cfg.Duration, thousands(float64(r.acked.Load()), 0))
		}
		bar = startProgress(r.progress, cfg.Duration.Milliseconds(), desc(), "", func() (int64, string) {
			return time.Since(r.t0).Milliseconds(), desc()
		})
	}
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { w.run(pctx, r) })
	}
	wg.Wait()
	r.cpu1 = markCPU()
	bar.finish(cfg.Duration > 0 && pctx.Err() == nil)
	if r.stopErr != nil || ctx.Err() != nil {
		return r.stopErr
	}
	err := r.drain(ctx)
	if len(r.consumers) > 0 {
		r.cpu1 = markCPU()
	}
	return err
}

// awaitSubscribed appends probes to every consumed topic until each
// consumer has received one, or fails after WaitTimeout.
func (r *run) awaitSubscribed(ctx context.Context, noise []byte) error {
	if len(r.consumers) == 0 {
		return nil
	}
	probe := newPayloads(noise, 1, r.cfg.Size, 0, 0).fill(1, 0)
	deadline := time.Now().Add(r.cfg.WaitTimeout)
	for {
		pending := make(map[int]bool) // topic index → has an unsubscribed consumer
		for i, c := range r.consumers {
			if c.subscribed.Load() {
				continue
			}
			select {
			case <-c.done:
				if c.err != nil {
					return fmt.Errorf("loadgen: consumer %d (topic %s): %w", i, c.topic, c.err)
				}
				return fmt.Errorf("loadgen: consumer %d (topic %s) ended before it received anything", i, c.topic)
			default:
			}
			pending[c.topicIdx] = true
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadgen: %d consumed topics have a consumer that did not receive a probe event within %s", len(pending), r.cfg.WaitTimeout)
		}
		for k := range pending {
			// Producer k writes topic k: its first slot is idle now.
			w := r.workers[k*r.cfg.Inflight]
			pctx, cancel := context.WithDeadline(ctx, deadline)
			err := w.target.Produce(pctx, w.topic, probe)
			cancel()
			if err != nil {
				return fmt.Errorf("loadgen: produce a probe event to topic %s: %w", w.topic, err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(probeEvery):
		}
	}
}

// run produces until the run's events or duration are exhausted, ctx
// ends, or too many calls have failed.
func (w *worker) run(ctx context.Context, r *run) {
	cfg := r.cfg
	// With a Rate, producer p's call i is due at t0 + (i×N + p)×B/Rate:
	// each producer offers Rate/N, and together they offer an even stream.
	var nsPerCall float64
	if cfg.Rate > 0 {
		nsPerCall = float64(cfg.Batch) / cfg.Rate * 1e9
	}
	for ctx.Err() == nil {
		i := w.prod.calls.Add(1) - 1
		n := cfg.Batch
		if cfg.Events > 0 {
			first := i * int64(cfg.Batch)
			if first >= w.prod.quota {
				return
			}
			n = int(min(int64(n), w.prod.quota-first))
		}
		var start time.Time
		if cfg.Rate > 0 {
			slot := i*int64(cfg.Producers) + int64(w.prod.index)
			start = r.t0.Add(time.Duration(float64(slot) * nsPerCall))
			if cfg.Duration > 0 && start.Sub(r.t0) >= cfg.Duration {
				return
			}
			if !sleepUntil(ctx, w.timer, start) {
				return
			}
		} else {
			start = time.Now()
			if cfg.Duration > 0 && start.Sub(r.t0) >= cfg.Duration {
				return
			}
		}
		var err error
		if w.pipe != nil {
			err = w.pipe.ProducePipelined(ctx, w.topic, w.pl.fill(n, start.UnixNano()))
		} else {
			err = w.target.Produce(ctx, w.topic, w.pl.fill(n, start.UnixNano()))
		}
		end := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return // stopped: the call's fate is unknown, and not counted
			}
			r.fail(err)
			continue
		}
		recordNanos(w.hist, end.Sub(start).Nanoseconds())
		w.events += int64(n)
		w.calls++
		w.lastEnd = end
		r.acked.Add(int64(n))
	}
}

// fail counts a failed Produce call and stops the run when there are more
// than MaxErrors.
func (r *run) fail(err error) {
	n := r.failed.Add(1)
	r.sample(err)
	if n > int64(r.cfg.MaxErrors) {
		r.stopOnce.Do(func() {
			r.mu.Lock()
			first := r.samples[0]
			r.mu.Unlock()
			r.stopErr = fmt.Errorf("%w: more than %d failed, the first: %s", ErrTooManyErrors, r.cfg.MaxErrors, first)
			r.stop()
		})
	}
}

// share is part i of n of total split evenly, the first ones taking the
// remainder.
func share(total int64, n, i int) int64 {
	q := total / int64(n)
	if int64(i) < total%int64(n) {
		q++
	}
	return q
}

// sleepUntil waits for t on timer, and reports false if ctx ended first.
func sleepUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		timer.Stop()
		return false
	}
}

// run consumes until ctx ends, the topic ends (without follow) or, in
// read-back, want events were counted.
func (c *consumer) run(ctx context.Context, from Start, follow bool) {
	defer close(c.done)
	err := c.target.Consume(ctx, c.topic, from, follow, c.onEvent)
	if c.readBack {
		c.lastRecv.Store(time.Now().UnixNano())
	}
	if err != nil && ctx.Err() == nil {
		c.err = err
	}
}

func (c *consumer) onEvent(p []byte) bool {
	ts, ok := Timestamp(p)
	if !ok {
		return true // not a loadgen event
	}
	if ts == 0 {
		c.subscribed.Store(true)
		return true
	}
	c.n++
	c.bytes += int64(len(p))
	c.received.Store(c.n)
	if c.readBack {
		return c.n < c.want
	}
	now := time.Now().UnixNano()
	recordNanos(c.hist, now-ts)
	c.lastRecv.Store(now)
	return true
}

// expected is what consumer c should receive in a produce run: every event
// acknowledged on its topic.
func (r *run) expected(perTopic []int64, c *consumer) int64 { return perTopic[c.topicIdx] }

// perTopic counts the acknowledged events of each topic. Workers must have
// ended.
func (r *run) perTopic() []int64 {
	n := make([]int64, r.cfg.Topics)
	for i, w := range r.workers {
		n[(i/r.cfg.Inflight)%r.cfg.Topics] += w.events
	}
	return n
}

// drain waits until every consumer has received what was produced to its
// topic, or WaitTimeout has passed.
func (r *run) drain(ctx context.Context) error {
	if len(r.consumers) == 0 {
		return nil
	}
	perTopic := r.perTopic()
	var total int64
	for _, c := range r.consumers {
		total += r.expected(perTopic, c)
	}
	received := func() int64 {
		var n int64
		for _, c := range r.consumers {
			n += c.received.Load()
		}
		return n
	}
	drainStart := time.Now()
	deadline := drainStart.Add(r.cfg.WaitTimeout)
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	var bar *progress
	barShown := false
	defer func() { bar.finish(false) }()
	for {
		waiting := false
		for _, c := range r.consumers {
			select {
			case <-c.done:
				continue
			default:
			}
			if c.received.Load() < r.expected(perTopic, c) {
				waiting = true
			}
		}
		if !waiting || time.Now().After(deadline) {
			return nil
		}
		if !barShown && time.Since(drainStart) > progressEvery {
			// Only when consumers lag behind noticeably.
			barShown = true
			desc := func(n int64) string {
				return fmt.Sprintf("consuming: %s of %s events", thousands(float64(n), 0), thousands(float64(total), 0))
			}
			bar = startProgress(r.progress, total, desc(received()), "", func() (int64, string) {
				n := received()
				return n, desc(n)
			})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// waitConsumers stops the consumers and waits for them to end.
func (r *run) waitConsumers(stop context.CancelFunc) {
	stop()
	for _, c := range r.consumers {
		<-c.done
	}
}

func (r *run) readBack(ctx context.Context, open Opener) error {
	cfg := r.cfg
	if err := r.openConsumers(ctx, open); err != nil {
		return err
	}
	for i, c := range r.consumers {
		c.want = share(cfg.Events, len(r.consumers), i)
	}
	r.cpu0 = markCPU()
	r.t0 = r.cpu0.wall
	bar := startProgress(r.progress, cfg.Events, "reading back", "events", func() (int64, string) {
		var n int64
		for _, c := range r.consumers {
			n += c.received.Load()
		}
		return n, ""
	})
	for _, c := range r.consumers {
		if c.want == 0 {
			close(c.done)
			continue
		}
		go c.run(ctx, FromBeginning, false)
	}
	for _, c := range r.consumers {
		<-c.done
	}
	r.cpu1 = markCPU()
	bar.finish(false)
	return nil
}

// result fills res from the ended run. Every goroutine has ended.
func (r *run) result(res *Result) {
	cfg := r.cfg
	res.Started = r.t0.UTC().Round(0)
	if r.t0.IsZero() {
		res.Started = time.Time{}
	}
	var end time.Time

	p := &res.Produce
	if !cfg.ReadBack {
		p.OfferedRate = cfg.Rate
		h := newHistogram()
		for _, w := range r.workers {
			h.Merge(w.hist)
			p.Events += w.events
			p.Calls += w.calls
			if w.lastEnd.After(end) {
				end = w.lastEnd
			}
		}
		p.Bytes = p.Events * int64(cfg.Size)
		p.Errors = r.failed.Load()
		if !end.IsZero() {
			p.Seconds = end.Sub(r.t0).Seconds()
		}
		p.EventsPerSec, p.MBPerSec = rates(p.Events, p.Bytes, p.Seconds)
		p.CallLatency = latencyOf(h)
	}

	s := &res.Consume
	s.Consumers = len(r.consumers)
	if s.Consumers > 0 {
		perTopic := r.perTopic()
		h := newHistogram()
		var last int64
		for i, c := range r.consumers {
			h.Merge(c.hist)
			s.Events += c.n
			s.Bytes += c.bytes
			want := c.want
			if !cfg.ReadBack {
				want = r.expected(perTopic, c)
			}
			s.Expected += want
			s.Missing += max(0, want-c.n)
			last = max(last, c.lastRecv.Load())
			if c.err != nil {
				s.Errors++
				r.sample(fmt.Errorf("consumer %d (topic %s): %w", i, c.topic, c.err))
			}
		}
		if last > 0 && !r.t0.IsZero() {
			s.Seconds = time.Unix(0, last).Sub(r.t0).Seconds()
			if t := time.Unix(0, last); t.After(end) {
				end = t
			}
		}
		s.EventsPerSec, s.MBPerSec = rates(s.Events, s.Bytes, s.Seconds)
		s.EndToEnd = latencyOf(h)
	}
	if !end.IsZero() {
		res.Seconds = end.Sub(r.t0).Seconds()
	}
	res.Errors = p.Errors + s.Errors
	res.ErrorSamples = r.samples
	events := p.Events
	if cfg.ReadBack {
		events = s.Events
	}
	res.ClientCPU = cpuBetween(r.cpu0, r.cpu1, events)
}
