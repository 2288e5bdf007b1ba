package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goethe-log/goethe/engine"
)

// Full disk
//
// A group whose engine write fails with engine.ErrNoSpace, or that meets
// the free-space guard (Options.MinFreeBytes), fails with an error wrapping
// ErrNoSpace, and the write path goes down: every later write fails fast
// with ErrNoSpace without reaching the engine. Reads, Wait and Info go on.
// While it is down the committer tries to resume at most once per
// Options.ProbeInterval: when a write arrives and the interval has passed,
// and from a timer (so that the state recovers with no writes arriving;
// nothing polls faster than the interval). To resume it
//
//  1. checks the free-space guard with a fresh measurement, and that
//     Options.FreeBytes, if set, reports at least Options.ResumeFreeBytes,
//  2. reopens the engine through Options.Reopen, when set and an engine
//     write failed (for an adapter that cannot take writes again in place
//     after ENOSPC; a write path that only the guard stopped needs none),
//  3. makes the probe: a small synced write, of the format record with the
//     value it already holds (a key every folder has, so `goethe check`
//     sees nothing new),
//  4. re-reads from the engine the state of every topic the failed write
//     touched (all topics after a reopen), the topic counter and
//     AppliedIndex (a replica's failed apply may have landed), with the
//     checks Open makes: a failed write may have reached the engine (a
//     failed sync), so the state in memory may be behind the disk. Seqs
//     then continue from what is on disk (dense, never reused) and ids stay
//     strictly increasing.
//
// Then writes are taken again. A probe or re-read that fails for another
// reason than space makes the failure sticky (ErrFailed), as any other
// failed write does.

// Defaults of the full-disk handling, filled in by DefaultOptions.
const (
	// DefaultProbeInterval is the least time between two attempts to
	// resume a write path that is down for lack of space.
	DefaultProbeInterval = time.Second
	// DefaultResumeFreeBytes is the least free space, as Options.FreeBytes
	// measures it, at which a write path that is down for lack of space
	// tries to resume.
	DefaultResumeFreeBytes = 1 << 20
	// DefaultFreeBytesMaxAge is how long a free-space measurement of the
	// guard is reused before Options.FreeBytes is called again.
	DefaultFreeBytesMaxAge = 100 * time.Millisecond
)

// ErrNoSpace: a write failed because the volume is full, or because its free
// space is below Options.MinFreeBytes. The failed group's outcome is
// unknown when the engine's write itself failed (its events may be stored
// and become readable once writes resume; retry with an expectation to
// avoid a duplicate); a group refused by the guard or while the write path
// is down wrote nothing. Writes fail with it until space is free again;
// the store then resumes by itself, without a restart (see WriteErr).
var ErrNoSpace = errors.New("store: no space left for writes")

// space is the full-disk state of the write path. Fields marked committer
// are touched only by the current committer (see committer).
type space struct {
	down      error               // committer: non-nil while writes fail fast with it
	lastProbe time.Time           // committer: the last attempt to resume
	suspects  map[string]struct{} // committer: topics a failed write may have changed
	failedIO  bool                // committer: an engine write failed (not only the guard refused)
	free      uint64              // committer: the cached measurement
	freeAt    time.Time           // committer: when it was made (zero: none)

	timerMu sync.Mutex
	timer   *time.Timer // fires probeTick while the write path is down

	state   atomic.Pointer[error] // WriteErr's value; nil pointer: writes go
	notifyM sync.Mutex
	changed chan struct{} // closed and replaced at each change of state
}

// WriteErr reports the state of the write path: nil while writes are taken,
// an error wrapping ErrNoSpace while they fail fast for lack of space (the
// store resumes by itself once space is free), or an error wrapping
// ErrFailed once a write failed for another reason (writes then fail until
// the store is reopened). Reads go on in every state. It is cheap and safe
// to call at any time.
func (s *Store) WriteErr() error {
	if p := s.sp.state.Load(); p != nil {
		return *p
	}
	return nil
}

// WriteErrChanged returns a channel that is closed at the next change of
// WriteErr's value (from nil to an error, from one kind of error to
// another, or back to nil). A watcher reads WriteErr, then waits on the
// channel it got before reading, and loops: no change is missed.
func (s *Store) WriteErrChanged() <-chan struct{} {
	sp := &s.sp
	sp.notifyM.Lock()
	defer sp.notifyM.Unlock()
	if sp.changed == nil {
		sp.changed = make(chan struct{})
	}
	return sp.changed
}

// setWriteErr publishes the write path's state and wakes watchers.
func (s *Store) setWriteErr(err error) {
	sp := &s.sp
	sp.notifyM.Lock()
	defer sp.notifyM.Unlock()
	if err == nil {
		sp.state.Store(nil)
	} else {
		sp.state.Store(&err)
	}
	if sp.changed != nil {
		close(sp.changed)
		sp.changed = nil
	}
}

// fail makes err (wrapping ErrFailed) the committer's sticky failure.
func (s *Store) fail(err error) {
	s.c.failed = err
	s.sp.down = nil
	s.stopProbe()
	s.setWriteErr(err)
}

// goDown takes the write path down for lack of space with err (wrapping
// ErrNoSpace) and, when a failed engine write may have stored a's batch,
// remembers the topics it touched. The committer calls it.
func (s *Store) goDown(err error, a *applied) {
	sp := &s.sp
	if a != nil {
		sp.failedIO = true
		if sp.suspects == nil {
			sp.suspects = make(map[string]struct{})
		}
		for _, ch := range a.changes {
			if ch.dirty || ch.deleted {
				sp.suspects[ch.meta.name] = struct{}{}
			}
		}
	}
	wasDown := sp.down != nil
	sp.down = err
	sp.lastProbe = time.Now()
	s.armProbe()
	if !wasDown {
		s.setWriteErr(err)
	}
}

// noSpace wraps an engine write's error, which wraps engine.ErrNoSpace, in
// ErrNoSpace.
func noSpace(err error) error { return fmt.Errorf("%w: %w", ErrNoSpace, err) }

// guard reports, with an error wrapping ErrNoSpace, a volume whose free space
// is below Options.MinFreeBytes. The measurement is reused for up to
// Options.FreeBytesMaxAge unless fresh is set. A failed measurement lets
// writes go: the guard is an early warning, the engine's own ENOSPC is the
// last word. The committer calls it.
func (s *Store) guard(fresh bool) error {
	o := &s.opts
	if o.MinFreeBytes == 0 || o.FreeBytes == nil {
		return nil
	}
	sp := &s.sp
	now := time.Now()
	if fresh || sp.freeAt.IsZero() || now.Sub(sp.freeAt) >= o.FreeBytesMaxAge {
		free, err := o.FreeBytes()
		if err != nil {
			sp.freeAt = time.Time{}
			return nil
		}
		sp.free, sp.freeAt = free, now
	}
	if sp.free < o.MinFreeBytes {
		return fmt.Errorf("%w: %d bytes free on the data volume, below the reserve of %d (MinFreeBytes)", ErrNoSpace, sp.free, o.MinFreeBytes)
	}
	return nil
}

// gate is the committer's check before a group is applied: it returns the
// error the whole group fails with, without touching the engine, while the
// write path is down or failed, or when the free-space guard refuses.
func (s *Store) gate() error {
	c := &s.c
	if c.failed != nil {
		return c.failed
	}
	if s.sp.down != nil {
		return s.sp.down
	}
	if err := s.guard(false); err != nil {
		s.goDown(err, nil)
		return err
	}
	return nil
}

// maybeResume tries to resume a write path that is down, if the last try
// is at least Options.ProbeInterval old. The committer calls it before it
// takes a group.
func (s *Store) maybeResume() {
	sp := &s.sp
	if sp.down == nil || s.c.failed != nil {
		return
	}
	now := time.Now()
	if now.Sub(sp.lastProbe) < s.opts.ProbeInterval {
		return
	}
	sp.lastProbe = now
	err := s.resume()
	switch {
	case err == nil:
		sp.down = nil
		s.stopProbe()
		s.setWriteErr(nil)
	case errors.Is(err, ErrNoSpace):
		sp.down = err
		s.armProbe()
	default:
		s.fail(fmt.Errorf("%w: resume after a full disk: %w", ErrFailed, err))
	}
}

// resume checks the guard, reopens the engine if the store does so, makes
// the probe write and re-reads the state a failed write may have changed
// (see "Full disk" above). An error wrapping ErrNoSpace means: still no
// space, try again later.
func (s *Store) resume() error {
	if err := s.guard(true); err != nil {
		return err
	}
	if f := s.opts.FreeBytes; f != nil {
		// Not while the volume is still full: a reopen would close the
		// engine that serves reads and fail to open it again.
		if free, err := f(); err == nil && free < s.opts.ResumeFreeBytes {
			return fmt.Errorf("%w: %d bytes free on the data volume, writes resume at %d (ResumeFreeBytes)", ErrNoSpace, free, s.opts.ResumeFreeBytes)
		}
	}
	reopened := false
	if sw, ok := s.eng.(*swapEngine); ok && s.sp.failedIO {
		if err := sw.reopen(s.opts.Reopen); err != nil {
			// The folder may simply still be full; an engine that cannot
			// open for another reason is tried again too, and says why in
			// WriteErr. Reads fail with ErrClosed until a reopen succeeds.
			return fmt.Errorf("%w: reopen the engine: %w", ErrNoSpace, err)
		}
		reopened = true
	}
	var b engine.Batch
	b.Put(formatKey, s.formatValue())
	if err := s.eng.Write(&b, true); err != nil {
		if errors.Is(err, engine.ErrNoSpace) {
			return noSpace(fmt.Errorf("store: probe write: %w", err))
		}
		return fmt.Errorf("store: probe write: %w", err)
	}
	if err := s.reload(reopened); err != nil {
		return err
	}
	clear(s.sp.suspects)
	s.sp.failedIO = false
	return nil
}

// formatValue is the format record as this store found or wrote it at Open.
func (s *Store) formatValue() []byte {
	if s.legacy {
		return []byte{FormatVersion, formatV1}
	}
	return []byte{FormatVersion}
}

// reload re-reads the topic counter and the topics a failed write may have
// changed (every topic when all is set) from the engine, checks each as
// Open does (checkTopicEnd), publishes the state found and wakes the
// topics' readers. The committer calls it.
func (s *Store) reload(all bool) error {
	names := make([]string, 0, len(s.sp.suspects))
	for name := range s.sp.suspects {
		names = append(names, name)
	}
	if all {
		s.mu.RLock()
		for name := range s.topics {
			if _, ok := s.sp.suspects[name]; !ok {
				names = append(names, name)
			}
		}
		s.mu.RUnlock()
	}
	v, err := s.eng.Get(topicIDKey)
	switch {
	case errors.Is(err, engine.ErrNotFound):
	case err != nil:
		return fmt.Errorf("store: read topic counter: %w", err)
	case len(v) != 8:
		return fmt.Errorf("%w: topic counter", ErrCorrupted)
	default:
		// Never below what this store handed out: an id is not reused.
		s.c.nextTopicID = max(s.c.nextTopicID, beUint64(v))
	}
	for _, name := range names {
		if err := s.reloadTopic(name); err != nil {
			return err
		}
	}
	// A replica's failed apply may have landed too: AppliedIndex follows
	// the engine, so that the caller's retry of those entries skips them
	// rather than apply them twice.
	index, err := s.readAppliedIndex()
	if err != nil {
		return err
	}
	switch have := s.appliedIndex.Load(); {
	case index > have:
		s.setApplied(index)
	case index < have:
		// The engine lost applies it had taken (unsynced, and dropped
		// when it reopened): they are in the Raft log, which replays
		// them from AppliedIndex at the next start, not before.
		return fmt.Errorf("%w: the engine holds applied index %d, behind the %d it acknowledged before the volume filled; restart the node to apply the entries after %d again from the Raft log",
			ErrFailed, index, have, index)
	}
	return nil
}

// reloadTopic re-reads one topic's metadata by name, checks it against its
// events and publishes it, adding the topic if a failed write created it
// after all.
func (s *Store) reloadTopic(name string) error {
	v, err := s.eng.Get(catalogKey(name))
	if errors.Is(err, engine.ErrNotFound) {
		// The write that would have created it did not land, or one that
		// deleted it did.
		s.forgetTopic(name, 0)
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: reload topic %q: %w", name, err)
	}
	if len(v) != 8 {
		return fmt.Errorf("%w: catalog entry of topic %q", ErrCorrupted, name)
	}
	tid := beUint64(v)
	mv, err := s.eng.Get(metaKey(tid))
	if err != nil {
		return fmt.Errorf("store: reload topic %q: metadata: %w", name, err)
	}
	m, err := decodeMeta(tid, mv)
	if err != nil {
		return err
	}
	if m.name != name {
		return fmt.Errorf("%w: topic %q: its metadata (id %d) names %q", ErrCorrupted, name, tid, m.name)
	}
	if err := s.checkTopicEnd(&m); err != nil {
		return err
	}
	if err := s.completeMeta(&m); err != nil {
		return err
	}
	if tid >= s.c.nextTopicID {
		s.c.nextTopicID = tid + 1
	}
	s.forgetTopic(name, tid) // deleted and created again by the failed write
	s.mu.Lock()
	t := s.topics[name]
	created := t == nil
	if created {
		t = newTopic(m)
		s.topics[name] = t
	}
	s.mu.Unlock()
	if !created {
		t.tail.drop() // the ring may end before events the failed write landed
		t.meta = m
		pub := m
		t.pub.Store(&pub)
	}
	if err := s.loadDedupe(t); err != nil { // the failed write may have landed keys too
		return err
	}
	s.wake(name)
	return nil
}

// forgetTopic removes the topic name from memory unless it has id keep,
// and ends its waiters with ErrTopicDeleted: a failed write deleted it
// after all. The committer calls it.
func (s *Store) forgetTopic(name string, keep uint64) {
	s.mu.Lock()
	t := s.topics[name]
	if t != nil && t.id != keep {
		delete(s.topics, name)
	} else {
		t = nil
	}
	s.mu.Unlock()
	if t != nil {
		t.tail.drop()
		t.deleted.Store(true)
		s.notify(t)
		s.kickReclaim()
	}
}

// checkSpaceAtOpen takes the write path down from the start when the
// volume is already below the free-space guard's reserve, so that WriteErr
// (and health) say so before the first write is refused. Open calls it
// before the writer starts.
func (s *Store) checkSpaceAtOpen() {
	if err := s.guard(true); err != nil {
		s.goDown(err, nil)
	}
}

// armProbe (re)starts the timer that makes the committer try to resume
// after Options.ProbeInterval.
func (s *Store) armProbe() {
	sp := &s.sp
	sp.timerMu.Lock()
	defer sp.timerMu.Unlock()
	if sp.timer == nil {
		sp.timer = time.AfterFunc(s.opts.ProbeInterval, s.probeTick)
		return
	}
	sp.timer.Reset(s.opts.ProbeInterval)
}

func (s *Store) stopProbe() {
	sp := &s.sp
	sp.timerMu.Lock()
	defer sp.timerMu.Unlock()
	if sp.timer != nil {
		sp.timer.Stop()
	}
}

// probeTick runs on the timer's goroutine: it hands the writer goroutine a
// turn as committer, which tries to resume (commitNext calls maybeResume).
// If a committer is at work it re-arms instead, so that a try is never lost.
func (s *Store) probeTick() {
	c := &s.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.busy {
		c.mu.Unlock()
		s.armProbe()
		return
	}
	c.busy = true
	c.mu.Unlock()
	c.kick <- struct{}{}
}

// swapEngine is the store's engine when Options.Reopen is set: it lets the
// committer replace the engine while readers keep using the store. Calls
// hold a read lock; a reopen holds the write lock, so reads wait for it
// rather than meet a closed engine.
type swapEngine struct {
	mu sync.RWMutex
	e  engine.Engine
}

var _ engine.Engine = (*swapEngine)(nil)

func (w *swapEngine) Write(b *engine.Batch, sync bool) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.e.Write(b, sync)
}

func (w *swapEngine) Get(key []byte) ([]byte, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.e.Get(key)
}

func (w *swapEngine) Scan(start, end []byte, limit, maxBytes int) ([]engine.KV, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.e.Scan(start, end, limit, maxBytes)
}

func (w *swapEngine) Close() error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.e.Close()
}

// reopen closes the engine (its error is dropped: the engine failed a
// write already, and what it synced survives a close by contract) and opens
// a new one with open. If open fails, the closed engine stays, answering
// every call with engine.ErrClosed, until a later reopen succeeds.
func (w *swapEngine) reopen(open func() (engine.Engine, error)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.e.Close()
	e, err := open()
	if err != nil {
		return err
	}
	w.e = e
	return nil
}

// errNoSnapshotter: the engine inside a swapEngine cannot take snapshots.
var errNoSnapshotter = errors.New("store: engine has no Snapshotter")

// Snapshot forwards to the current engine's engine.Snapshotter. A view of
// an engine that a resume replaces is closed with it.
func (w *swapEngine) Snapshot() (engine.Snapshot, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	sn, ok := w.e.(engine.Snapshotter)
	if !ok {
		return nil, errNoSnapshotter
	}
	return sn.Snapshot()
}
