// Package store is Goethe's log: named topics of immutable events on top of
// any engine.Engine.
//
// # Guarantees
//
//   - Order: within a topic, events are stored and read in the order their
//     Appends were committed. Each event gets an id, the nanoseconds since the
//     Unix epoch at which the writer committed it, made strictly increasing
//     within the topic (id = max(now, last id + 1)), and a dense 1-based seq.
//     The ids of one Append are consecutive.
//   - Atomicity: an Append is all or nothing; with an Expectation it is
//     written only if the topic's last seq matches.
//   - Durability: by default (the zero Options) an Append returns nil only
//     once its events and the topic's metadata are fsync'd in one engine
//     batch. With Options.UnsafeNoSync, a crash may lose the last acknowledged commits,
//     never reorder events or keep part of an Append: on goleveldb and bbolt
//     only a machine crash can, on pebble (which buffers its log in memory
//     without sync) a process crash too.
//   - Recovery: reopening a store, also after a crash, resumes every topic at
//     its last committed id and seq; ids keep increasing if the clock went
//     backwards.
//   - Full disk: a write that fails for lack of space fails with ErrNoSpace
//     and stops writes (they fail fast) while reads go on; the store
//     resumes by itself once space is free, re-reading what the failed
//     write may have stored, so seqs stay dense and ids increasing (see
//     space.go and WriteErr).
//
// # Write path: apply, then commit
//
// Writes queue as requests; one group commits at a time, and the next forms
// while it is written and synced. An appender that finds no commit in
// progress commits the group itself (see CommitMode): it reads the clock
// once, runs the pure apply step (apply: ids, seqs, expectations, the
// engine batch, each request's outcome; no I/O), writes the batch with one
// sync, publishes the new topic state, completes every request of the group
// and wakes the readers waiting at the end of the topics it wrote. Nothing
// of a group becomes visible unless its batch was written. Because apply
// takes its timestamp from the caller, a replicated log can apply a
// leader's commands on every replica with the leader's reading.
//
// # Topic lifecycle
//
// A topic has a config (SetTopicConfig: retention by age, count and bytes,
// and a dedupe window), with server-wide defaults in Options.Retention.
// Retention and Trim remove a prefix of a topic's events in bounded steps
// through the same pure apply step as appends (see lifecycle.go), so seqs
// stay dense and the first seq moves up; a reader below the first event
// reads from it. DeleteTopic frees the name at once and its events are
// reclaimed in the background. The maintenance goroutine enforces
// retention every Options.RetentionInterval and reclaims deleted topics;
// Close stops it.
//
// # Replication
//
// A replicated store (package cluster) takes no Append or SetCursor of its
// own: every write comes from the Raft log through ApplyCommitted, which
// runs apply with each entry's leader time and records the Raft index it
// applied (AppliedIndex) in the same engine batch. Snapshot and Restore
// copy a whole store between replicas through the engine's optional
// engine.Snapshotter. Single-node mode does not touch any of this.
package store

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/goethe-log/goethe/engine"
)

// Limits on names, as documented constants.
const (
	// MinNameLen and MaxNameLen bound topic and consumer names, in bytes.
	MinNameLen = 1
	MaxNameLen = 255
)

// Defaults filled in by DefaultOptions.
const (
	DefaultMaxGroupEvents = 1 << 16 // events merged into one engine batch
	DefaultMaxGroupBytes  = 32 << 20
	DefaultPageEvents     = 1000
	DefaultPageBytes      = 4 << 20
	// MaxTopicsPage bounds one page of Topics.
	MaxTopicsPage = 1000
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: the topic or cursor does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: an Append's expectation did not hold. The error is a
	// *ConflictError carrying the topic's actual last seq.
	ErrConflict = errors.New("store: expectation failed")
	// ErrInvalidName: a topic or consumer name breaks a naming rule; the
	// message says which.
	ErrInvalidName = errors.New("store: invalid name")
	// ErrInvalid: a malformed request, such as an Append of no events.
	ErrInvalid = errors.New("store: invalid request")
	// ErrClosed: the store is closed or closing.
	ErrClosed = errors.New("store: closed")
	// ErrFormat: the data folder holds a layout this build cannot read.
	ErrFormat = errors.New("store: unsupported data format")
	// ErrFailed: an engine write failed for another reason than a full
	// volume (that is ErrNoSpace, from which the store resumes by itself).
	// Every request of that group fails with it (wrapping the engine's
	// error), and so does every later write until the store is reopened,
	// because the outcome of that write is unknown. Reads go on.
	ErrFailed = errors.New("store: write failed, store needs restart")
	// ErrCorrupted: a record read from the engine does not decode as the
	// layout says it must; the message names the record. The read fails,
	// nothing is changed.
	ErrCorrupted = errors.New("store: corrupted record")
	// ErrTopicLimit: every topic id is in use.
	ErrTopicLimit = errors.New("store: topic id space exhausted")
)

// ConflictError is returned by Append when an expectation fails.
type ConflictError struct {
	Topic    string
	Expected uint64 // the last seq the caller expected
	Actual   uint64 // the topic's last seq (0 when it is empty or absent)
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("store: topic %q: expected last seq %d, actual %d", e.Topic, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Event is one stored event. On Append only Headers, Payload and DedupeKey
// are read; reads fill every field. Events returned by Read, their Payload
// and their Headers may be shared with other readers: the caller may keep
// them but must not modify them (see Read).
type Event struct {
	ID      uint64 // ns since the Unix epoch at commit, unique in its topic
	Seq     uint64 // 1-based position in the topic, dense
	Headers map[string]string
	Payload []byte
	// DedupeKey, when not empty, makes the append of this event
	// idempotent within the topic's dedupe window (see dedupe.go): at
	// most MaxDedupeKeyLen bytes of UTF-8. It is stored with the event
	// and read back with it.
	DedupeKey string
}

// Time is the event's receive time, read from its id.
func (e *Event) Time() time.Time { return time.Unix(0, int64(e.ID)) }

// Expectation is an optimistic-concurrency condition on an Append.
type Expectation struct {
	set     bool
	lastSeq uint64
}

// ExpectAny is no condition.
var ExpectAny = Expectation{}

// ExpectLastSeq requires the topic's last seq to be n when the Append
// commits; 0 means the topic must be empty or absent.
func ExpectLastSeq(n uint64) Expectation { return Expectation{set: true, lastSeq: n} }

// IsSet reports whether the expectation is a condition.
func (x Expectation) IsSet() bool { return x.set }

// LastSeq is the expected last seq, meaningful when IsSet.
func (x Expectation) LastSeq() uint64 { return x.lastSeq }

// AppendResult says where an Append's events landed: ids FirstID,
// FirstID+1, … and seqs FirstSeq, FirstSeq+1, …, Count of each. Without
// Duplicates, Count is the number of events appended; with them, the
// events not listed in Duplicates, in order, got those ids and seqs, and
// when every event was a duplicate FirstID, FirstSeq and Count are 0.
type AppendResult struct {
	FirstID  uint64
	FirstSeq uint64
	Count    int
	// Duplicates lists, in order, the events not stored because their
	// dedupe key was stored within the topic's window (see dedupe.go).
	Duplicates []Duplicate
	// Index is set by a replicated log: the index of the log entry that
	// applied the append (see ApplyCommitted). The Store leaves it 0.
	Index uint64
}

// Options configures a Store. The zero Options is durable; zero fields take
// the defaults of DefaultOptions.
type Options struct {
	// UnsafeNoSync acknowledges commits before they are durable (no fsync).
	// It is faster and can lose acknowledged events in a crash (see the
	// package documentation for which crash, per engine).
	UnsafeNoSync bool
	// CommitMode says who commits a group; the zero value, CommitLeader,
	// is the measured default.
	CommitMode CommitMode
	// MustExist makes Open refuse, with ErrCorrupted, an engine that holds
	// no Goethe log instead of starting one in it: for a folder known to
	// hold a log (cmd/goethe knows from its marker), where an engine that
	// opens empty has lost its files.
	MustExist bool
	// MaxGroupEvents and MaxGroupBytes bound one group commit; a single
	// larger Append still commits alone.
	MaxGroupEvents int
	MaxGroupBytes  int
	// PageEvents and PageBytes bound a Read page unless the caller asks
	// for fewer events.
	PageEvents int
	PageBytes  int
	// Observer, if not nil, is told of every group commit (see
	// CommitObserver).
	Observer CommitObserver
	// Clock returns nanoseconds since the Unix epoch; tests set it.
	Clock func() int64
	// DedupeWindow is how long a topic remembers the dedupe key of an
	// event it stored (see dedupe.go): 0 takes DefaultDedupeWindow, a
	// negative window turns dedupe off (keys are still stored with their
	// events). A replicated store applies the window its leader put in
	// each append (Command.DedupeWindow) instead.
	DedupeWindow time.Duration
	// MaxDedupeKeys bounds the keys one topic remembers; past it the
	// oldest are forgotten early. 0 takes DefaultMaxDedupeKeys.
	MaxDedupeKeys int
	// TailEvents and TailBytes bound, per topic, the ring of last events
	// kept in memory for the readers that follow the topic's end (see
	// tail.go); TailIdle is how long a ring is kept once nobody reads at
	// the topic's end. A ring holds at most about twice TailBytes, only
	// topics read at their end within TailIdle have one, and a negative
	// TailEvents keeps none (every Read goes to the engine).
	TailEvents int
	TailBytes  int
	TailIdle   time.Duration

	// Full disk (see space.go). MinFreeBytes > 0 with FreeBytes set is the
	// free-space guard: a group that would be written while FreeBytes
	// reports fewer free bytes on the data volume fails with ErrNoSpace,
	// and the write path is down until there are MinFreeBytes again. A
	// measurement is reused for FreeBytesMaxAge, so the guard costs no
	// system call per commit; writes in that window may go past the
	// reserve. 0 turns the guard off.
	MinFreeBytes    uint64
	FreeBytes       func() (uint64, error)
	FreeBytesMaxAge time.Duration
	// ProbeInterval is the least time between two attempts to resume a
	// write path that is down for lack of space.
	ProbeInterval time.Duration
	// ResumeFreeBytes: with FreeBytes set, a write path that is down for
	// lack of space tries to resume only once this many bytes are free
	// (and MinFreeBytes, when that is larger). It keeps a store with
	// Reopen from closing the engine that serves reads while the volume is
	// still full. Without FreeBytes every try goes ahead. 0 takes
	// DefaultResumeFreeBytes.
	ResumeFreeBytes uint64
	// SyncApplied makes ApplyCommitted fsync its writes. A replicated
	// store on bbolt needs it (see ApplyCommitted); on goleveldb and pebble
	// the replicated log already holds what the sync would protect.
	SyncApplied bool
	// Reopen, if set, opens the store's engine again on the same folder.
	// The store then resumes after a full disk by closing its engine and
	// reopening it, for an adapter that cannot take writes again in place
	// (its doc comment says); reads wait during the reopen. The Store keeps
	// its identity: holders go on using it. Once Reopen is set the Store's
	// engine may be replaced, so a caller must not keep using the engine it
	// passed to Open.
	Reopen func() (engine.Engine, error)

	// Retention holds the server-wide defaults of the topics' configs: a
	// field a topic's config does not set takes its value here (its Set is
	// ignored; a 0 limit is none). The zero value keeps every event. Its
	// DedupeWindow is not read: Open sets it from DedupeWindow, the one
	// place the server-wide window is set.
	Retention TopicConfig
	// RetentionInterval is how often the maintenance goroutine enforces
	// retention; 0 takes DefaultRetentionInterval.
	RetentionInterval time.Duration
	// RetentionByLog: the store does not enforce retention itself, because
	// the log that replicates it does (cluster.Log proposes the trims on
	// its leader, and every replica applies them). The maintenance
	// goroutine still reclaims deleted topics.
	RetentionByLog bool
}

// DefaultOptions returns the defaults, durable.
func DefaultOptions() Options {
	return Options{
		MaxGroupEvents: DefaultMaxGroupEvents,
		MaxGroupBytes:  DefaultMaxGroupBytes,
		PageEvents:     DefaultPageEvents,
		PageBytes:      DefaultPageBytes,
		Clock:          func() int64 { return time.Now().UnixNano() },
		DedupeWindow:   DefaultDedupeWindow,
		MaxDedupeKeys:  DefaultMaxDedupeKeys,
		TailEvents:     DefaultTailEvents,
		TailBytes:      DefaultTailBytes,
		TailIdle:       DefaultTailIdle,

		FreeBytesMaxAge: DefaultFreeBytesMaxAge,
		ProbeInterval:   DefaultProbeInterval,
		ResumeFreeBytes: DefaultResumeFreeBytes,

		RetentionInterval: DefaultRetentionInterval,
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	if o.MaxGroupEvents <= 0 {
		o.MaxGroupEvents = d.MaxGroupEvents
	}
	if o.MaxGroupBytes <= 0 {
		o.MaxGroupBytes = d.MaxGroupBytes
	}
	if o.PageEvents <= 0 {
		o.PageEvents = d.PageEvents
	}
	if o.PageBytes <= 0 {
		o.PageBytes = d.PageBytes
	}
	if o.Clock == nil {
		o.Clock = d.Clock
	}
	if o.DedupeWindow == 0 {
		o.DedupeWindow = d.DedupeWindow
	}
	// The default a topic's effective config shows: the store's window.
	o.Retention.DedupeWindow = max(o.DedupeWindow, 0)
	if o.MaxDedupeKeys <= 0 {
		o.MaxDedupeKeys = d.MaxDedupeKeys
	}
	if o.TailEvents == 0 {
		o.TailEvents = d.TailEvents
	}
	if o.TailBytes <= 0 {
		o.TailBytes = d.TailBytes
	}
	if o.TailIdle <= 0 {
		o.TailIdle = d.TailIdle
	}
	if o.FreeBytesMaxAge <= 0 {
		o.FreeBytesMaxAge = d.FreeBytesMaxAge
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = d.ProbeInterval
	}
	if o.ResumeFreeBytes == 0 {
		o.ResumeFreeBytes = d.ResumeFreeBytes
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = d.RetentionInterval
	}
}

// Store is the log. Its methods are safe for concurrent use.
type Store struct {
	eng  engine.Engine
	opts Options

	c    committer
	quit chan struct{} // closed by Close once the last commit is done
	done chan struct{} // closed when the writer goroutine has ended

	maintDone   chan struct{} // closed when the maintenance goroutine has ended
	reclaimKick chan struct{} // wakes it after a delete

	// topics holds every committed topic, loaded at Open. The committer
	// adds to it under mu; readers look up under mu's read lock, the
	// committer without it (it is the only writer).
	mu     sync.RWMutex
	topics map[string]*topic

	waitMu  sync.Mutex
	waiters map[string]*waitEntry
	waker   waker // wakes large sets of followers off the commit path

	stats statsCounters
	sp    space // full disk: see space.go

	// appliedIndex is the Raft index of the last entry ApplyCommitted or
	// Restore wrote; the committer stores it, anyone loads it.
	appliedIndex atomic.Uint64
	appliedCh    atomic.Pointer[chan struct{}] // closed and replaced when it moves

	// restoreMu keeps readers off the engine's content while Restore
	// replaces it (Restore holds it exclusively, readers shared; see
	// enterRead); restoreBroken, once set, is what those readers get after
	// a Restore broke off half way and left a partly replaced store.
	restoreMu     sync.RWMutex
	restoreBroken atomic.Pointer[error]

	// legacy: the folder was upgraded from format 1 and may hold events
	// without a checksum.
	legacy bool
}

// topic is the in-memory state of a committed topic. id and name never
// change; meta is the committer's alone, pub is a copy of it published
// for readers after each commit.
type topic struct {
	id      uint64
	name    string
	created int64
	meta    topicMeta                 // the committer's only
	pub     atomic.Pointer[topicMeta] // as of the last published commit
	tail    tail                      // last events for followers, and their wake-up
	deleted atomic.Bool               // set, before its waiters are woken, when the topic is deleted
	dd      dedupeState               // remembered dedupe keys: the committer's only
}

// Open opens the log kept in e, initialising an empty engine and refusing
// one written in an unknown format. The Store owns e from then on: Close
// closes it.
func Open(e engine.Engine, opts Options) (*Store, error) {
	opts.fill()
	if opts.Reopen != nil {
		e = &swapEngine{e: e}
	}
	s := &Store{
		eng:     e,
		opts:    opts,
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		topics:  make(map[string]*topic),
		waiters: make(map[string]*waitEntry),

		maintDone:   make(chan struct{}),
		reclaimKick: make(chan struct{}, 1),
	}
	if err := s.checkFormat(); err != nil {
		return nil, err
	}
	if err := s.finishInterruptedRestore(); err != nil {
		return nil, err
	}
	if err := s.loadAppliedIndex(); err != nil {
		return nil, err
	}
	applied := make(chan struct{})
	s.appliedCh.Store(&applied)
	s.c.idle.L = &s.c.mu
	if opts.DedupeWindow > 0 {
		s.c.applied.window = int64(opts.DedupeWindow)
	}
	s.c.applied.maxKeys = opts.MaxDedupeKeys
	s.c.kick = make(chan struct{}, 1)
	v, err := e.Get(topicIDKey)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		s.c.nextTopicID = 1
	case err != nil:
		return nil, fmt.Errorf("store: read topic counter: %w", err)
	case len(v) != 8:
		return nil, fmt.Errorf("%w: topic counter", ErrCorrupted)
	default:
		s.c.nextTopicID = beUint64(v)
	}
	if err := s.loadTopics(); err != nil {
		return nil, err
	}
	s.checkSpaceAtOpen()
	go s.run()
	go s.maintain()
	return s, nil
}

// loadTopics reads every topic's metadata into memory: the apply step
// needs the whole committed state, and lookups then need no I/O.
func (s *Store) loadTopics() error {
	return s.scanMetas(s.c.nextTopicID, func(m topicMeta) error {
		t := newTopic(m)
		s.topics[m.name] = t
		return s.loadDedupe(t)
	})
}

// scanMetas reads every topic's metadata, checks it against the topic
// counter next and the topic's last event, and hands it to fn.
func (s *Store) scanMetas(next uint64, fn func(topicMeta) error) error {
	start, end := []byte{prefixMeta}, []byte{prefixMeta + 1}
	for {
		kvs, err := s.eng.Scan(start, end, 4096, 0)
		if err != nil {
			return fmt.Errorf("store: load topics: %w", err)
		}
		for _, kv := range kvs {
			if len(kv.Key) != 9 {
				return fmt.Errorf("%w: metadata key %x", ErrCorrupted, kv.Key)
			}
			m, err := decodeMeta(beUint64(kv.Key[1:]), kv.Value)
			if err != nil {
				return err
			}
			if m.id >= next {
				return fmt.Errorf("%w: topic %q has id %d, at or past the topic counter %d", ErrCorrupted, m.name, m.id, next)
			}
			if err := s.checkTopicEnd(&m); err != nil {
				return err
			}
			if err := s.completeMeta(&m); err != nil {
				return err
			}
			if err := fn(m); err != nil {
				return err
			}
		}
		if len(kvs) < 4096 {
			return nil
		}
		start = append(kvs[len(kvs)-1].Key, 0)
	}
}

// readFormat reads a format record: whether the folder may hold events of
// version 1 (legacy), whether the record is this build's (current; else
// Open raises it), and whether this build reads it at all (ok).
func readFormat(v []byte) (legacy, current, ok bool) {
	switch {
	case len(v) == 1 && v[0] == FormatVersion:
		return false, true, true
	case len(v) == 2 && v[0] == FormatVersion && v[1] == formatV1:
		return true, true, true
	case len(v) == 1 && v[0] == formatV2:
		return false, false, true
	case len(v) == 2 && v[0] == formatV2 && v[1] == formatV1, len(v) == 1 && v[0] == formatV1:
		return true, false, true
	}
	return false, false, false
}

func (s *Store) checkFormat() error {
	v, err := s.eng.Get(formatKey)
	if err == nil {
		legacy, current, ok := readFormat(v)
		if !ok {
			return fmt.Errorf("%w: the data folder has format version %d, this build reads versions %d to %d", ErrFormat, v, formatV1, FormatVersion)
		}
		s.legacy = legacy
		if !current {
			// New records follow: raise the record first, so that an older
			// build refuses the folder.
			var b engine.Batch
			b.Put(formatKey, s.formatValue())
			if err := s.eng.Write(&b, true); err != nil {
				return fmt.Errorf("store: raise format version: %w", err)
			}
		}
		return nil
	}
	if !errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("store: read format version: %w", err)
	}
	if s.opts.MustExist {
		return fmt.Errorf("%w: the data folder should hold a Goethe log, but its engine opened with no format record "+
			"(its files may be missing or damaged): restore them from a backup, or move the folder aside to start empty", ErrCorrupted)
	}
	any, err := s.eng.Scan(nil, nil, 1, 0)
	if err != nil {
		return fmt.Errorf("store: inspect data folder: %w", err)
	}
	if len(any) > 0 {
		return fmt.Errorf("%w: the data folder holds data but no Goethe format record", ErrFormat)
	}
	var b engine.Batch
	b.Put(formatKey, []byte{FormatVersion})
	if err := s.eng.Write(&b, true); err != nil {
		return fmt.Errorf("store: write format version: %w", err)
	}
	return nil
}

// Close stops accepting writes (they fail with ErrClosed), commits the ones
// already queued and completes them, stops the writer, wakes every waiting
// reader with ErrClosed and closes the engine. It is idempotent.
func (s *Store) Close() error {
	c := &s.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-s.done
		return nil
	}
	c.closed = true
	for c.busy {
		c.idle.Wait()
	}
	c.mu.Unlock()
	close(s.quit)
	<-s.done
	<-s.maintDone
	if err := s.eng.Close(); err != nil {
		return fmt.Errorf("store: close engine: %w", err)
	}
	return nil
}

// checkTopicEnd checks a topic's metadata against its events as they are
// on disk: the last event it records is there, readable, with the recorded
// last seq, and no event follows it. The metadata is written in the same
// batch as the events, so a mismatch means the engine lost or damaged
// data; serving on would reuse seqs or hide events.
func (s *Store) checkTopicEnd(m *topicMeta) error {
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%w: topic %q (id %d) records last seq %d at event id %d, but %s: the data folder is damaged; "+
			"restore it from a backup, or move it aside to start empty", ErrCorrupted, m.name, m.id, m.lastSeq, m.lastID, fmt.Sprintf(format, args...))
	}
	if m.lastSeq == 0 {
		return nil
	}
	if m.empty() {
		// Emptied by a trim: no event may be left.
		any, err := s.eng.Scan(eventKey(m.id, 0), topicEnd(m.id), 1, 0)
		if err != nil {
			return fmt.Errorf("store: check topic %q: %w", m.name, err)
		}
		if len(any) > 0 {
			return damaged("it records no events left, and an event with key %x is stored", any[0].Key)
		}
		return nil
	}
	key := eventKey(m.id, m.lastID)
	v, err := s.eng.Get(key)
	if errors.Is(err, engine.ErrNotFound) {
		return damaged("that event is missing")
	}
	if err != nil {
		return fmt.Errorf("store: check topic %q: %w", m.name, err)
	}
	var e Event
	if err := decodeEvent(key, v, s.legacy, &e); err != nil {
		return damaged("that event does not read back (%v)", err)
	}
	if e.Seq != m.lastSeq {
		return damaged("that event has seq %d", e.Seq)
	}
	if m.lastID < math.MaxUint64 {
		after, err := s.eng.Scan(eventKey(m.id, m.lastID+1), topicEnd(m.id), 1, 0)
		if err != nil {
			return fmt.Errorf("store: check topic %q: %w", m.name, err)
		}
		if len(after) > 0 {
			return damaged("an event with key %x follows it", after[0].Key)
		}
	}
	return nil
}

// ValidateName reports whether name is a valid topic or consumer name:
// MinNameLen to MaxNameLen bytes of valid UTF-8 without control characters.
// The error wraps ErrInvalidName and says which rule was broken.
func ValidateName(kind, name string) error {
	switch {
	case len(name) < MinNameLen:
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, kind)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %s name is %d bytes, the limit is %d", ErrInvalidName, kind, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %s name is not valid UTF-8", ErrInvalidName, kind)
	}
	for i, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s name has control character %U at byte %d", ErrInvalidName, kind, r, i)
		}
	}
	return nil
}

// lookup returns a committed topic by name.
func (s *Store) lookup(name string) (*topic, error) {
	s.mu.RLock()
	t := s.topics[name]
	s.mu.RUnlock()
	if t == nil {
		return nil, fmt.Errorf("%w: topic %q", ErrNotFound, name)
	}
	return t, nil
}

// engineErr maps an engine error, turning a closed engine into ErrClosed.
func (s *Store) engineErr(op string, err error) error {
	if errors.Is(err, engine.ErrClosed) {
		return fmt.Errorf("%w: %s", ErrClosed, op)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

func beUint64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func newTopic(m topicMeta) *topic {
	t := &topic{id: m.id, name: m.name, created: m.created, meta: m}
	t.pub.Store(&m)
	return t
}
