package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/goethe-log/goethe/engine"
)

type requestKind uint8

const (
	reqAppend requestKind = iota
	reqCursor
)

// request is one Append or cursor write waiting for the writer.
type request struct {
	kind   requestKind
	topic  string
	events []Event
	expect Expectation
	bytes  int

	consumer string // reqCursor
	cursorID uint64

	result AppendResult
	err    error
	done   chan struct{}
}

// Append stores events at the end of topic, creating the topic if it does
// not exist, atomically: all of them or none. With an expectation set, the
// events are stored only if the topic's last seq equals it; otherwise the
// error is a *ConflictError. On success the events have ids FirstID…
// FirstID+n-1 and seqs FirstSeq…FirstSeq+n-1; with Options.Sync they are on
// disk. // not have been committed. Append does not retain events after it returns.
func (s *Store) Append(ctx context.Context, topicName string, events []Event, expect Expectation) (AppendResult, error) {
	if err := ValidateName("topic", topicName); err != nil {
		return AppendResult{}, err
	}
	if len(events) == 0 {
		return AppendResult{}, fmt.Errorf("%w: an append needs at least one event", ErrInvalid)
	}
	r := &request{kind: reqAppend, topic: topicName, events: events, expect: expect, done: make(chan struct{})}
	for i := range events {
		r.bytes += len(events[i].Payload) + 32
		for k, v := range events[i].Headers {
			r.bytes += len(k) + len(v) + 4
		}
	}
	if err := s.submit(ctx, r); err != nil {
		return AppendResult{}, err
	}
	return r.result, r.err
}

// SetCursor records that consumer has processed topic up to and including
// event id. It goes through the writer, so it is ordered after every Append
// acknowledged before it and is durable like them. The topic must exist.
func (s *Store) SetCursor(ctx context.Context, topicName, consumer string, id uint64) error {
	if err := ValidateName("topic", topicName); err != nil {
		return err
	}
	if err := ValidateName("consumer", consumer); err != nil {
		return err
	}
	r := &request{kind: reqCursor, topic: topicName, consumer: consumer, cursorID: id, done: make(chan struct{})}
	if err := s.submit(ctx, r); err != nil {
		return err
	}
	return r.err
}

func (s *Store) submit(ctx context.Context, r *request) error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	s.closeMu.RUnlock()
	// Once queued, the writer decides the outcome within one commit; waiting
	// for it means the caller always learns it, and never has its events
	// read after Append returned.
	<-r.done
	return nil
}

// run is the writer goroutine.
func (s *Store) run() {
	defer close(s.done)
	g := &group{pending: make(map[string]*pendingTopic)}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		var first *request
		select {
		case first = <-s.reqs:
		case <-s.quit:
			// Close has stopped new submissions: commit what is queued.
			for {
				select {
				case r := <-s.reqs:
					g.add(r)
					s.fill(g)
					s.commit(g)
				default:
					return
				}
			}
		}
		g.add(first)
		if s.opts.Sync && s.lastGroupReqs > 1 {
			// The appenders acknowledged by the last commit are runnable but
			// have not resubmitted yet; yielding once lets them join this
			// group instead of the next one, which roughly doubles the group
			// with N concurrent one-event appenders. It costs microseconds
			// against a millisecond fsync.
			runtime.Gosched()
		}
		s.fill(g)
		s.linger(g, linger)
		s.lastGroupReqs = len(g.reqs)
		s.commit(g)
	}
}

// fill takes waiting requests into g without blocking, up to the group limits.
func (s *Store) fill(g *group) {
	for g.events < s.opts.MaxGroupEvents && g.bytes < s.opts.MaxGroupBytes {
		select {
		case r := <-s.reqs:
			g.add(r)
		default:
			return
		}
	}
}

// linger waits, in sync mode, for the appenders of the last group to come
// back, as PostgreSQL's commit_delay does. With N concurrent appenders the
// writer otherwise settles into two alternating groups of about N/2: while
// one group syncs the others queue, and the acknowledged ones come back too
// late to join the next. The writer therefore aims for the last group plus
// what queued during its write, and waits for that many requests, but no
// longer than Options.MaxLinger or half the last write's duration. A lone
// appender never waits; the wait is small against the sync it shares.
func (s *Store) linger(g *group, t *time.Timer) {
	target := s.lastGroupReqs + s.queuedAtWrite
	if !s.opts.Sync || s.opts.MaxLinger <= 0 || len(g.reqs) >= target || g.events >= s.opts.MaxGroupEvents {
		return
	}
	d := min(s.opts.MaxLinger, s.lastWrite/2)
	if d <= 0 {
		return
	}
	t.Reset(d)
	defer t.Stop()
	for len(g.reqs) < target && g.events < s.opts.MaxGroupEvents && g.bytes < s.opts.MaxGroupBytes {
		select {
		case r := <-s.reqs:
			g.add(r)
		case <-t.C:
			return
		case <-s.quit:
			return
		}
	}
}

// group is one group commit in preparation. Its buffers are reused.
type group struct {
	reqs    []*request
	events  int
	bytes   int
	batch   engine.Batch
	buf     []byte
	pending map[string]*pendingTopic
	order   []*pendingTopic
}

// pendingTopic is a topic's state as of the requests accepted so far in the
// group; it becomes committed state only if the batch is written.
type pendingTopic struct {
	t     *topic // nil for a topic this group creates
	meta  topicMeta
	dirty bool
}

func (g *group) add(r *request) {
	g.reqs = append(g.reqs, r)
	g.events += len(r.events)
	g.bytes += r.bytes
}

func (g *group) reset() {
	clear(g.reqs)
	g.reqs = g.reqs[:0]
	g.events, g.bytes = 0, 0
	g.batch.Reset()
	g.buf = g.buf[:0]
	clear(g.pending)
	clear(g.order)
	g.order = g.order[:0]
}

// alloc returns n bytes of the group's buffer. Earlier slices stay valid
// when the buffer grows: they keep the old array.
func (g *group) alloc(n int) []byte {
	if cap(g.buf)-len(g.buf) < n {
		size := 2*cap(g.buf) + n
		if size < 64<<10 {
			size = 64 << 10
		}
		g.buf = make([]byte, 0, size)
	}
	start := len(g.buf)
	g.buf = g.buf[:start+n]
	return g.buf[start : start : start+n]
}

// commit applies a group: assigns ids, checks expectations, writes one
// batch, publishes the new state and acknowledges every request.
func (s *Store) commit(g *group) {
	defer g.reset()
	if s.failed != nil {
		for _, r := range g.reqs {
			r.err = fmt.Errorf("%w: %v", ErrFailed, s.failed)
			close(r.done)
		}
		return
	}
	now := s.opts.Clock()
	createdTopics := false
	for _, r := range g.reqs {
		p, err := s.pendingTopic(g, r.topic, r.kind == reqAppend, now)
		if err != nil {
			r.err = err
			continue
		}
		switch r.kind {
		case reqAppend:
			if r.expect.set && r.expect.lastSeq != p.meta.lastSeq {
				r.err = &ConflictError{Topic: r.topic, Expected: r.expect.lastSeq, Actual: p.meta.lastSeq}
				continue
			}
			s.assign(g, p, r, now)
		case reqCursor:
			if p.t == nil && !p.dirty {
				// Only failed appends of this group named the topic: it
				// does not exist.
				r.err = fmt.Errorf("%w: topic %q", ErrNotFound, r.topic)
				continue
			}
			g.batch.Put(cursorKey(p.meta.id, r.consumer), encodeCursor(r.cursorID, now))
		}
	}
	for _, p := range g.order {
		if !p.dirty {
			continue // a topic created only by failed requests is not written
		}
		g.batch.Put(metaKey(p.meta.id), p.meta.encode(g.alloc(64+len(p.meta.name))))
		if p.t == nil {
			g.batch.Put(catalogKey(p.meta.name), eventKey(p.meta.id, 0)[:8])
			createdTopics = true
		}
	}
	if createdTopics {
		g.batch.Put(topicIDKey, eventKey(s.nextTopicID, 0)[:8])
	}
	if g.batch.Len() > 0 {
		start := time.Now()
		err := s.eng.Write(&g.batch, s.opts.Sync)
		s.lastWrite = time.Since(start)
		s.queuedAtWrite = len(s.reqs)
		s.stats.record(len(g.reqs), g.events, g.batch.Size(), s.lastWrite)
		if o := s.opts.Observer; o != nil {
			o.ObserveCommit(len(g.reqs), g.events, g.batch.Size(), s.lastWrite, err)
		}
		if err != nil {
			err = s.engineErr("write batch", err)
			if !errors.Is(err, ErrClosed) {
				s.failed = err
			}
			for _, r := range g.reqs {
				if r.err == nil {
					r.err = err
				}
			}
			s.rollbackTopicIDs(g)
			for _, r := range g.reqs {
				close(r.done)
			}
			return
		}
	}
	s.publish(g)
	for _, r := range g.reqs {
		close(r.done)
	}
}

// pendingTopic returns the group's view of a topic, loading it or (for an
// append) creating it.
func (s *Store) pendingTopic(g *group, name string, create bool, now int64) (*pendingTopic, error) {
	if p := g.pending[name]; p != nil {
		return p, nil
	}
	t, err := s.lookup(name)
	var p *pendingTopic
	switch {
	case err == nil:
		p = &pendingTopic{t: t, meta: t.meta}
	case errors.Is(err, ErrNotFound) && create:
		if s.nextTopicID > MaxTopicID {
			return nil, ErrTopicLimit
		}
		p = &pendingTopic{meta: topicMeta{id: s.nextTopicID, name: name, created: now}}
		s.nextTopicID++
	default:
		return nil, err
	}
	g.pending[name] = p
	g.order = append(g.order, p)
	return p, nil
}

// assign gives r's events their ids and seqs and adds them to the batch.
func (s *Store) assign(g *group, p *pendingTopic, r *request, now int64) {
	m := &p.meta
	id := uint64(now)
	if id <= m.lastID {
		id = m.lastID + 1
	}
	r.result = AppendResult{FirstID: id, FirstSeq: m.lastSeq + 1, Count: len(r.events)}
	for i := range r.events {
		e := &r.events[i]
		m.lastSeq++
		k := putEventKey(g.alloc(eventKeyLen), m.id, id)
		v := appendEventValue(g.alloc(16+len(e.Payload)), m.lastSeq, e.Headers, e.Payload)
		g.batch.Put(k, v)
		if m.firstID == 0 {
			m.firstID, m.firstSeq = id, m.lastSeq
		}
		m.lastID = id
		id++
	}
	p.dirty = true
}

// rollbackTopicIDs returns the ids of topics the failed group would have
// created.
func (s *Store) rollbackTopicIDs(g *group) {
	for _, p := range g.order {
		if p.t == nil && p.meta.id < s.nextTopicID {
			s.nextTopicID = p.meta.id
		}
	}
}

// publish makes a written group's topic state visible and wakes readers.
func (s *Store) publish(g *group) {
	var created []*topic
	for _, p := range g.order {
		if p.t != nil {
			p.t.meta = p.meta
			p.t.lastID.Store(p.meta.lastID)
			continue
		}
		if p.dirty {
			created = append(created, newTopic(p.meta))
		}
	}
	if len(created) > 0 {
		s.mu.Lock()
		for _, t := range created {
			if old := s.topics[t.name]; old != nil {
				// A reader found the catalog entry between the write and now.
				old.meta = t.meta
				old.lastID.Store(t.meta.lastID)
				continue
			}
			s.topics[t.name] = t
		}
		s.mu.Unlock()
	}
	for _, p := range g.order {
		if p.dirty {
			s.wake(p.meta.name)
		}
	}
}

// Stats are cumulative counters of the writer since Open, for metrics and
// benchmarks. They count engine writes attempted, failed ones included.
type Stats struct {
	Commits     uint64        // engine batches written
	Requests    uint64        // Append and cursor requests in them
	Events      uint64        // events in them
	Bytes       uint64        // key and value bytes in them
	WriteTime   time.Duration // total time in engine writes (and their syncs)
	MaxRequests uint64        // largest number of requests in one commit
}

type statsCounters struct {
	commits, requests, events, bytes, nanos, maxReqs atomic.Uint64
}

func (c *statsCounters) record(reqs, events, bytes int, d time.Duration) {
	c.commits.Add(1)
	c.requests.Add(uint64(reqs))
	c.events.Add(uint64(events))
	c.bytes.Add(uint64(bytes))
	c.nanos.Add(uint64(d))
	if uint64(reqs) > c.maxReqs.Load() {
		c.maxReqs.Store(uint64(reqs)) // only the writer stores
	}
}

// Stats returns the writer's counters; safe to call at any time.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{Commits: c.commits.Load(), Requests: c.requests.Load(), Events: c.events.Load(),
		Bytes: c.bytes.Load(), WriteTime: time.Duration(c.nanos.Load()), MaxRequests: c.maxReqs.Load()}
}
