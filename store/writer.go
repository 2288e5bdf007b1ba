package store

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// CommitMode says who commits a group. Both keep one commit at a time and
// let the next group form while the current one is written and synced.
type CommitMode uint8

const (
	// CommitLeader (the default): a blocking appender (Append, SetCursor)
	// that finds no commit in progress commits its group itself, on its
	// own goroutine, as LevelDB's write queue does: a lone appender makes
	// no goroutine hop. AppendAsync never leads (see there).
	// Requests that arrive meanwhile join the next group, which the
	// committer's goroutine hands to the store's writer goroutine so that
	// the leader's own caller waits for one commit only.
	CommitLeader CommitMode = iota
	// CommitWriter: every group is committed by the store's writer
	// goroutine; an appender always hands its request over. Kept for
	// measurement (results/ compares the two).
	CommitWriter
)

// String names the mode: "leader" or "writer".
func (m CommitMode) String() string {
	if m == CommitWriter {
		return "writer"
	}
	return "leader"
}

// request is one write waiting for its group: a command and how to tell
// its caller the outcome. Requests are pooled.
type request struct {
	cmd   command
	bytes int
	// done, when set, is called with the outcome (AppendAsync); otherwise
	// the outcome is stored and ready signalled (a blocking call).
	done  func(AppendResult, error)
	ready chan struct{} // buffered: signalling never blocks
	out   outcome
}

var requestPool = sync.Pool{New: func() any { return &request{ready: make(chan struct{}, 1)} }}

func newRequest() *request { return requestPool.Get().(*request) }

func (r *request) release() {
	r.cmd = command{}
	r.done, r.out, r.bytes = nil, outcome{}, 0
	requestPool.Put(r)
}

// finish delivers r's outcome. An asynchronous request is released here;
// a blocking one by its caller once it has read the outcome.
func (r *request) finish(o outcome) {
	if done := r.done; done != nil {
		r.release()
		done(o.res, o.err)
		return
	}
	r.out = o
	r.ready <- struct{}{}
}

// committer is the write path's state: the queue where groups form, and
// what only the current committer touches.
type committer struct {
	mu     sync.Mutex
	queue  []*request // requests waiting for the next group, in arrival order
	busy   bool       // a committer (leader or writer) is running
	closed bool
	idle   sync.Cond // signalled when busy turns false
	kick   chan struct{}

	// Owned by the current committer (whoever set busy).
	group       []*request
	cmds        []command
	applied     applied
	nextTopicID uint64
	failed      error // set by the first failed engine write
}

// Append stores events at the end of topic, creating the topic if it does
// not exist, atomically: all of them or none. With an expectation set, the
// events are stored only if the topic's last seq equals it when the group
// commits; otherwise the error is a *ConflictError. On success the events
// have ids FirstID…FirstID+n-1 and seqs FirstSeq…FirstSeq+n-1 and, unless
// Options.UnsafeNoSync, are on disk. Events with a DedupeKey the topic
// stored within its window are not stored again (see dedupe.go): the
// result lists them in Duplicates, the others get the consecutive ids, and
// an Append whose events are all duplicates succeeds without checking its
// expectation (the retry of one that succeeded). ctx is checked before the request is
// queued; once queued, its outcome is decided within one commit and Append
// waits for it, so a caller always learns what happened to its events.
// events are not retained after Append returns.
func (s *Store) Append(ctx context.Context, topicName string, events []Event, expect Expectation) (AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return AppendResult{}, err
	}
	r := newRequest()
	if err := s.prepareAppend(r, topicName, events, expect); err != nil {
		r.release()
		return AppendResult{}, err
	}
	o := s.wait(r)
	return o.res, o.err
}

// AppendAsync is Append without waiting. It returns once the request is
// queued and never commits on the caller's goroutine, so a caller that
// feeds many requests (a stream's receive loop) keeps feeding while a group
// commits. done is called exactly once with the outcome: before AppendAsync
// returns for a request refused at once (a bad name, no events, a closed
// store), otherwise from the goroutine that commits the request's group,
// after the group's batch is written and its events are visible to
// readers. done must not block or call back into the store's write path:
// every request of the group waits for it. Requests are committed in the
// order their Append or AppendAsync calls queued them, so calls made one
// after another from one goroutine are committed in that order. events
// must not be modified until done is called and are not retained after.
// The store does not bound the requests waiting: callers bound their own
// (the server bounds each stream's).
func (s *Store) AppendAsync(topicName string, events []Event, expect Expectation, done func(AppendResult, error)) {
	r := newRequest()
	if err := s.prepareAppend(r, topicName, events, expect); err != nil {
		r.release()
		done(AppendResult{}, err)
		return
	}
	r.done = done
	s.submit(r, false)
}

func (s *Store) prepareAppend(r *request, topicName string, events []Event, expect Expectation) error {
	if err := ValidateName("topic", topicName); err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: an append needs at least one event", ErrInvalid)
	}
	if err := validateDedupeKeys(events); err != nil {
		return err
	}
	r.cmd = command{kind: cmdAppend, topic: topicName, events: events, expect: expect}
	for i := range events {
		r.bytes += eventValueSize(&events[i]) + eventKeyLen
	}
	return nil
}

// SetCursor records that consumer has processed topic up to and including
// event id. It is committed like an Append, so it is ordered after every
// Append acknowledged before it and is durable like them. The topic must
// exist.
func (s *Store) SetCursor(ctx context.Context, topicName, consumer string, id uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateName("topic", topicName); err != nil {
		return err
	}
	if err := ValidateName("consumer", consumer); err != nil {
		return err
	}
	r := newRequest()
	r.cmd = command{kind: cmdSetCursor, topic: topicName, consumer: consumer, cursorID: id, cursorSeq: s.CursorSeq(topicName, id)}
	r.bytes = len(consumer) + 32
	return s.wait(r).err
}

// CursorSeq returns the seq of topic's event with id exactly, or 0 when
// there is none (a cursor set at a time, or past the end): the seq a
// cursor at id is stored with, so that a consumer resuming from it after
// events were removed learns how many it missed.
func (s *Store) CursorSeq(topicName string, id uint64) uint64 {
	p, err := s.Read(topicName, id, 1)
	if err != nil || len(p.Events) == 0 || p.Events[0].ID != id {
		return 0
	}
	return p.Events[0].Seq
}

// wait submits a blocking request and returns its outcome.
func (s *Store) wait(r *request) outcome {
	s.submit(r, true)
	<-r.ready
	o := r.out
	r.release()
	return o
}

// submit queues r. If no commit is in progress and the caller may lead (it
// is going to wait anyway), it commits the group r is in and hands whatever
// queued meanwhile to the writer; otherwise the writer is woken.
func (s *Store) submit(r *request, lead bool) {
	c := &s.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		r.finish(outcome{err: ErrClosed})
		return
	}
	c.queue = append(c.queue, r)
	if c.busy {
		c.mu.Unlock()
		return
	}
	c.busy = true
	c.mu.Unlock()
	if !lead || s.opts.CommitMode == CommitWriter {
		c.kick <- struct{}{}
		return
	}
	if s.commitNext() {
		c.kick <- struct{}{} // more queued: the writer goes on
	}
}

// run is the writer goroutine: it commits groups for as long as requests
// keep queueing once a committer has handed over to it.
func (s *Store) run() {
	defer close(s.done)
	c := &s.c
	for {
		select {
		case <-c.kick:
		case <-s.quit:
			return
		}
		for s.commitNext() {
		}
	}
}

// commitNext commits one group taken from the head of the queue, and then
// reports whether more requests are waiting. When none are, it clears busy
// before returning false, so the next appender leads.
func (s *Store) commitNext() (more bool) {
	c := &s.c
	s.maybeResume()
	c.mu.Lock()
	n, events, bytes := 0, 0, 0
	for n < len(c.queue) && (n == 0 || events < s.opts.MaxGroupEvents && bytes < s.opts.MaxGroupBytes) {
		r := c.queue[n]
		events += len(r.cmd.events)
		bytes += r.bytes
		n++
	}
	c.group = append(c.group[:0], c.queue[:n]...)
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	c.mu.Unlock()

	if n > 0 {
		s.commit(c.group, events)
		clear(c.group)
		if n > 1 && !s.opts.UnsafeNoSync {
			// The appenders this commit completed are runnable but have
			// not come back yet. Yielding once lets them queue before the
			// committer decides whether to go on: otherwise it would stop,
			// the first to return would lead a group of one, and the
			// others would form the next, halving the average group.
			// Microseconds against a sync.
			runtime.Gosched()
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) > 0 {
		return true
	}
	c.busy = false
	c.idle.Broadcast()
	return false
}

// commit applies one group at one clock reading, writes its batch with one
// sync, publishes the new state, and completes every request.
func (s *Store) commit(group []*request, events int) {
	c := &s.c
	if err := s.gate(); err != nil {
		// Failed, down for lack of space, or refused by the free-space
		// guard: the engine is not touched.
		for _, r := range group {
			r.finish(outcome{err: err})
		}
		return
	}
	c.cmds = c.cmds[:0]
	for _, r := range group {
		c.cmds = append(c.cmds, r.cmd)
	}
	a := &c.applied
	apply(s.topics, c.nextTopicID, c.cmds, s.opts.Clock(), a)
	defer clear(c.cmds) // after fillTails, which reads the events

	if a.batch.Len() > 0 {
		if err := s.writeGroup(a, len(group), events, !s.opts.UnsafeNoSync); err != nil {
			for _, r := range group {
				r.finish(outcome{err: err})
			}
			return
		}
	}
	c.nextTopicID = a.nextTopicID
	s.fillTails(c.cmds, a) // before publish: woken followers find the events in memory
	s.publish(a)
	for i, r := range group {
		r.finish(a.outcomes[i])
	}
}

// publish makes a written group's topic state current and wakes readers.
// A deleted topic leaves the topics map before the group's new topics of
// the same name enter it, and its waiters are woken after it is marked
// deleted (they return ErrTopicDeleted).
func (s *Store) publish(a *applied) {
	s.stats.forgotten.Add(a.forgotten)
	var mapChanged, deleted bool
	for _, ch := range a.changes {
		switch {
		case ch.deleted:
			mapChanged = mapChanged || ch.t != nil
			deleted = true
		case !ch.dirty:
		case ch.t != nil:
			ch.t.meta = ch.meta
			m := ch.meta
			ch.t.pub.Store(&m)
			commitDedupe(ch.t, ch)
		default:
			mapChanged = true
		}
	}
	if mapChanged {
		s.mu.Lock()
		for _, ch := range a.changes {
			if ch.deleted && ch.t != nil && s.topics[ch.meta.name] == ch.t {
				delete(s.topics, ch.meta.name)
			}
		}
		for _, ch := range a.changes {
			if ch.dirty && !ch.deleted && ch.t == nil {
				t := newTopic(ch.meta)
				commitDedupe(t, ch)
				s.topics[ch.meta.name] = t
			}
		}
		s.mu.Unlock()
	}
	for _, ch := range a.changes {
		switch {
		case ch.deleted && ch.t != nil:
			ch.t.deleted.Store(true)
			s.notify(ch.t)
			s.wake(ch.meta.name)
		case ch.dirty && !ch.deleted:
			s.wake(ch.meta.name)
		}
	}
	if deleted {
		s.kickReclaim()
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
	Reclaimed   uint64        // event records of deleted topics removed in the background
	// DedupeForgotten counts dedupe keys forgotten before their window
	// ended because their topic held Options.MaxDedupeKeys newer ones.
	DedupeForgotten uint64
}

type statsCounters struct {
	commits, requests, events, bytes, nanos, maxReqs atomic.Uint64
	reclaimed                                        atomic.Uint64
	forgotten                                        atomic.Uint64
}

func (c *statsCounters) record(reqs, events, bytes int, d time.Duration) {
	c.commits.Add(1)
	c.requests.Add(uint64(reqs))
	c.events.Add(uint64(events))
	c.bytes.Add(uint64(bytes))
	c.nanos.Add(uint64(d))
	if uint64(reqs) > c.maxReqs.Load() {
		c.maxReqs.Store(uint64(reqs)) // only the committer stores
	}
}

// Stats returns the writer's counters; safe to call at any time.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{Commits: c.commits.Load(), Requests: c.requests.Load(), Events: c.events.Load(),
		Bytes: c.bytes.Load(), WriteTime: time.Duration(c.nanos.Load()), MaxRequests: c.maxReqs.Load(),
		Reclaimed: c.reclaimed.Load(), DedupeForgotten: c.forgotten.Load()}
}
