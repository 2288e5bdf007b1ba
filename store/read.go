package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/goethe-log/goethe/engine"
)

// Start positions for Read. A position is an event id (ns since the epoch):
// a Read returns the events whose ids are at or after it, so a position that
// is not an event's id, or any point in time, lands on the nearest event at
// or after it.
const FromBeginning uint64 = 0

// After is the position just after event id: reading from it skips id.
// After(math.MaxUint64) wraps to FromBeginning; no event can follow that id,
// and callers that accept ids from users check for it.
func After(id uint64) uint64 { return id + 1 }

// At is the position of time t: the first event received at or after t.
// Times before the epoch are position 0; times past what a uint64 of
// nanoseconds holds (the year 2554) are the last position. Computed from
// seconds, not time.UnixNano, which overflows after 2262-04-11 and would
// turn a far-future time into a replay of the whole topic.
func At(t time.Time) uint64 {
	sec, nsec := t.Unix(), uint64(t.Nanosecond())
	switch {
	case sec < 0:
		return 0
	case uint64(sec) > (math.MaxUint64-nsec)/uint64(time.Second):
		return math.MaxUint64
	}
	return uint64(sec)*uint64(time.Second) + nsec
}

// Page is one Read's result. Next is the position to continue from: after
// the page's last event; for an empty page, after the topic's last event
// when the topic's events up to it were removed (trimmed), otherwise the
// requested position.
type Page struct {
	Events []Event
	Next   uint64
	// TopicID is the id of the topic read (TopicInfo.ID): a reader that
	// sees it change reads another topic of the same name, the one it read
	// having been deleted (see WaitTopic).
	TopicID uint64
}

// Read returns up to limit events of topic from position from, in order,
// bounded also by Options.PageEvents and Options.PageBytes (a page holds at
// least one event when one exists). limit <= 0 means Options.PageEvents. An
// empty page means the reader is at the end of the topic. The topic must
// exist: ErrNotFound otherwise. Read returns only events of completed
// commits: none of a commit in progress or of one whose engine write failed.
// It holds no engine resource after it returns.
//
// A page's events may be shared with other readers and with the store: a
// page read at the end of a followed topic is a slice of the events the
// committer just wrote (see tail.go), decoded once for every reader. They
// are immutable: the caller may keep the page as long as it likes and
// append to page.Events (its capacity is capped, so an append copies), but
// must never modify an event, its Payload bytes or its Headers map (copy
// them to change them).
//
// A position below the topic's first event (its events before were
// removed by retention or a trim) reads from the first event: the reader
// compares seqs to learn how many it missed.
func (s *Store) Read(topicName string, from uint64, limit int) (Page, error) {
	if err := s.enterRead(); err != nil {
		return Page{Next: from}, err
	}
	defer s.restoreMu.RUnlock()
	t, err := s.lookup(topicName)
	if err != nil {
		return Page{Next: from}, err
	}
	if limit <= 0 || limit > s.opts.PageEvents {
		limit = s.opts.PageEvents
	}
	// Only published events are read: a write in progress, or one that
	// failed after reaching the engine, is not part of the log.
	m := t.pub.Load()
	last := m.lastID
	if last == 0 || from > last {
		t.tail.markFollowed()
		return Page{Next: from, TopicID: t.id}, nil
	}
	if m.empty() {
		// Emptied by a trim: nothing is left up to the last event.
		t.tail.markFollowed()
		return Page{Next: after(from, last), TopicID: t.id}, nil
	}
	from = max(from, m.firstID)
	if p, ok := t.tail.read(from, last, limit, s.opts.PageBytes); ok {
		t.tail.markFollowed()
		p.TopicID = t.id
		return p, nil
	}
	return s.readEngine(t, from, last, limit)
}

// enterRead admits a reader of the store's content: it waits while a
// Restore replaces the engine's content, so that no reader sees a partly
// replaced store (events missing under a published end would read as
// removed and be skipped), and it fails once a Restore broke off half way.
// On nil the caller must call s.restoreMu.RUnlock when done.
func (s *Store) enterRead() error {
	s.restoreMu.RLock()
	if p := s.restoreBroken.Load(); p != nil {
		s.restoreMu.RUnlock()
		return *p
	}
	return nil
}

// after is the position after last for a reader at from, from itself if
// no position follows last.
func after(from, last uint64) uint64 {
	if last == math.MaxUint64 {
		return from
	}
	return max(from, last+1)
}

// readEngine is Read from the engine: the events of t at or after from, up
// to last, decoded into memory of the page's own.
func (s *Store) readEngine(t *topic, from, last uint64, limit int) (Page, error) {
	end := topicEnd(t.id)
	if last < math.MaxUint64 {
		end = eventKey(t.id, last+1)
	}
	kvs, err := s.eng.Scan(eventKey(t.id, from), end, limit, s.opts.PageBytes)
	if err != nil {
		return Page{Next: from, TopicID: t.id}, s.engineErr("scan events", err)
	}
	p := Page{Events: make([]Event, len(kvs)), Next: from, TopicID: t.id}
	for i, kv := range kvs {
		if err := decodeEvent(kv.Key, kv.Value, s.legacy, &p.Events[i]); err != nil {
			return Page{Next: from}, err
		}
	}
	if n := len(p.Events); n > 0 {
		p.Next = p.Events[n-1].ID + 1
	} else {
		// No event is left up to last: a trim removed them meanwhile.
		p.Next = after(from, last)
	}
	return p, nil
}

// waitEntry is a broadcast channel for readers at the end of one topic; the
// writer closes it after a commit to the topic. Entries are reference
// counted so that waiting on names that never get written costs nothing once
// the waiters leave.
type waitEntry struct {
	ch   chan struct{}
	refs int
}

// Wait blocks until topic holds an event at or after position from, ctx
// ends, or the store closes. It returns nil in the first case (a Read from
// the same position then returns at least one event), ctx.Err() or ErrClosed
// otherwise. The topic need not exist yet: Wait also returns when it is
// created. The writer wakes waiters on commit; nothing polls. However many
// readers wait on a topic, a commit wakes them at the same cost to the
// writer (see tail.go).
func (s *Store) Wait(ctx context.Context, topicName string, from uint64) error {
	for {
		if t, err := s.lookup(topicName); err == nil {
			return s.waitTopic(ctx, t, from)
		}
		// The topic does not exist yet: wait for its creation by name.
		s.waitMu.Lock()
		w := s.waiters[topicName]
		if w == nil {
			w = &waitEntry{ch: make(chan struct{})}
			s.waiters[topicName] = w
		}
		w.refs++
		ch := w.ch
		s.waitMu.Unlock()

		// Check after registering: a creation that this check misses
		// wakes ch.
		var err error
		if _, lerr := s.lookup(topicName); lerr != nil {
			select {
			case <-ch:
			case <-ctx.Done():
				err = ctx.Err()
			case <-s.quit:
				err = ErrClosed
			}
		}
		s.waitMu.Lock()
		if w.refs--; w.refs == 0 && s.waiters[topicName] == w {
			delete(s.waiters, topicName)
		}
		s.waitMu.Unlock()
		if err != nil {
			return err
		}
	}
}

// wake releases every reader waiting on topic: those waiting for its
// creation and those waiting at its end.
func (s *Store) wake(topicName string) {
	s.waitMu.Lock()
	if w := s.waiters[topicName]; w != nil {
		close(w.ch)
		delete(s.waiters, topicName)
	}
	s.waitMu.Unlock()
	if t, err := s.lookup(topicName); err == nil {
		s.notify(t)
	}
}

// TopicInfo describes a topic as of its last commit. FirstID and FirstSeq
// name the first event still stored, LastID and LastSeq the last one ever
// stored; all four are 0 while the topic never held an event. A topic
// emptied by retention or a trim keeps LastID and LastSeq, with FirstID 0
// and FirstSeq LastSeq+1.
type TopicInfo struct {
	Name     string
	ID       uint64 // internal topic id, the prefix of its keys
	Created  time.Time
	FirstID  uint64 // 0 when the topic holds no event
	FirstSeq uint64
	LastID   uint64
	LastSeq  uint64
	Count    uint64 // events stored
	// Bytes is the stored size of those events: keys and values as the
	// engine is given them (before its compression).
	Bytes uint64
	// Config is the topic's config as set (SetTopicConfig); Effective is
	// what applies: Config with Options.Retention filling the fields it
	// does not set (every field set).
	Config    TopicConfig
	Effective TopicConfig
}

// Info describes topic, or returns ErrNotFound.
func (s *Store) Info(topicName string) (TopicInfo, error) {
	if err := s.enterRead(); err != nil {
		return TopicInfo{}, err
	}
	defer s.restoreMu.RUnlock()
	t, err := s.lookup(topicName)
	if err != nil {
		return TopicInfo{}, err
	}
	return s.info(t), nil
}

// info describes t as of its last published commit.
func (s *Store) info(t *topic) TopicInfo {
	m := t.pub.Load()
	ti := TopicInfo{Name: m.name, ID: m.id, Created: time.Unix(0, m.created), FirstID: m.firstID,
		FirstSeq: m.firstSeq, LastID: m.lastID, LastSeq: m.lastSeq, Bytes: m.bytes,
		Config: m.cfg, Effective: m.cfg.effective(s.opts.Retention)}
	if m.lastSeq > 0 && !m.empty() {
		ti.Count = m.lastSeq - m.firstSeq + 1
	}
	return ti
}

// Topics lists up to limit topics whose names sort after the name after
// ("" starts from the first), in byte order of their names, and returns the
// name to pass as after for the next page ("" when there is none).
func (s *Store) Topics(after string, limit int) ([]TopicInfo, string, error) {
	if limit <= 0 || limit > MaxTopicsPage {
		limit = MaxTopicsPage
	}
	if err := s.enterRead(); err != nil {
		return nil, "", err
	}
	defer s.restoreMu.RUnlock()
	start := catalogKey(after)
	if after != "" {
		start = append(start, 0) // exclusive of after itself
	}
	kvs, err := s.eng.Scan(start, []byte{prefixCatalog + 1}, limit+1, 0)
	if err != nil {
		return nil, "", s.engineErr("scan catalog", err)
	}
	more := len(kvs) > limit
	if more {
		kvs = kvs[:limit]
	}
	out := make([]TopicInfo, 0, len(kvs))
	for _, kv := range kvs {
		t, err := s.lookup(string(kv.Key[1:]))
		if err != nil {
			continue // written by a commit that failed: not part of the log
		}
		out = append(out, s.info(t))
	}
	next := ""
	if more {
		next = string(kvs[len(kvs)-1].Key[1:])
	}
	return out, next, nil
}

// Cursor is a consumer's stored position in a topic.
type Cursor struct {
	ID      uint64    // the last event the consumer processed
	Updated time.Time // when the cursor was last set
	// Seq is the seq of the event at ID when the cursor was set, 0 when
	// no event had that id (a cursor set at a time) or the cursor was set
	// by a build that did not record it.
	Seq uint64
}

// GetCursor returns consumer's cursor in topic, or ErrNotFound when the
// topic or the cursor does not exist.
func (s *Store) GetCursor(topicName, consumer string) (Cursor, error) {
	if err := ValidateName("topic", topicName); err != nil {
		return Cursor{}, err
	}
	if err := ValidateName("consumer", consumer); err != nil {
		return Cursor{}, err
	}
	if err := s.enterRead(); err != nil {
		return Cursor{}, err
	}
	defer s.restoreMu.RUnlock()
	t, err := s.lookup(topicName)
	if err != nil {
		return Cursor{}, err
	}
	v, err := s.eng.Get(cursorKey(t.id, consumer))
	if errors.Is(err, engine.ErrNotFound) {
		return Cursor{}, fmt.Errorf("%w: no cursor for consumer %q on topic %q", ErrNotFound, consumer, topicName)
	}
	if err != nil {
		return Cursor{}, s.engineErr("read cursor", err)
	}
	id, updated, seq, err := decodeCursorSeq(v)
	if err != nil {
		return Cursor{}, err
	}
	return Cursor{ID: id, Updated: time.Unix(0, updated), Seq: seq}, nil
}
