package store

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/goethe-log/goethe/engine"
)

// Limits of Check, the defaults of CheckOptions.
const (
	// DefaultCheckPageEvents and DefaultCheckPageBytes bound one engine
	// Scan page of Check: its memory is about one page, whatever the size
	// of the folder.
	DefaultCheckPageEvents = 4096
	DefaultCheckPageBytes  = 4 << 20
	// DefaultCheckMaxFindings bounds the problems, and separately the
	// warnings, a CheckReport lists; more are counted, not kept, so that a
	// badly damaged folder cannot make the report grow without bound.
	DefaultCheckMaxFindings = 1000
)

// CheckOptions configures Check. Zero fields take the defaults above.
type CheckOptions struct {
	PageEvents  int // entries per engine Scan page
	PageBytes   int // bytes per engine Scan page
	MaxFindings int // problems (and warnings) kept in the report
	// AllowEmpty makes an engine that holds nothing at all a clean folder
	// (a folder where no store was ever opened) instead of a problem.
	AllowEmpty bool
}

func (o *CheckOptions) fill() {
	if o.PageEvents <= 0 {
		o.PageEvents = DefaultCheckPageEvents
	}
	if o.PageBytes <= 0 {
		o.PageBytes = DefaultCheckPageBytes
	}
	if o.MaxFindings <= 0 {
		o.MaxFindings = DefaultCheckMaxFindings
	}
}

// CheckReport is what Check found. Problems are damage: the folder is not
// what a Goethe store writes, and serving from it may lose or change data.
// Warnings are records Check does not know (written by a newer build, or by
// hand); they do not make the folder unclean.
type CheckReport struct {
	Format          int           `json:"format"`           // the format version recorded, 0 if none
	Legacy          bool          `json:"legacy"`           // the folder may hold events of format 1 (no checksum)
	Topics          []TopicCheck  `json:"topics"`           // in topic id order
	Events          uint64        `json:"events"`           // readable events, all topics
	Bytes           uint64        `json:"bytes"`            // key and value bytes of every event record
	Cursors         int           `json:"cursors"`          // cursor records
	Configs         int           `json:"configs"`          // topic config records
	Reclaiming      uint64        `json:"reclaiming"`       // event records of deleted topics not yet removed
	Problems        []Finding     `json:"problems"`         // at most MaxFindings
	ProblemCount    int           `json:"problem_count"`    // every problem, kept or not
	Warnings        []Finding     `json:"warnings"`         // at most MaxFindings
	WarningCount    int           `json:"warning_count"`    // every warning, kept or not
	Duration        time.Duration `json:"duration_ns"`      // time Check took
	DurationSeconds float64       `json:"duration_seconds"` // the same, in seconds
}

// Clean reports whether Check found no problem (warnings aside).
func (r *CheckReport) Clean() bool { return r.ProblemCount == 0 }

// TopicCheck is one topic as Check read it: what its events are, next to
// what its metadata records.
type TopicCheck struct {
	Name     string `json:"name"`
	ID       uint64 `json:"id"`
	Events   uint64 `json:"events"` // readable events
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	FirstID  uint64 `json:"first_id"`
	LastID   uint64 `json:"last_id"`
	Bytes    uint64 `json:"bytes"` // key and value bytes of its event records
	// Recorded is the topic's metadata: where it says the topic starts and
	// ends.
	RecordedFirstSeq uint64 `json:"recorded_first_seq"`
	RecordedLastSeq  uint64 `json:"recorded_last_seq"`
	RecordedLastID   uint64 `json:"recorded_last_id"`
}

// Finding is one problem or warning: what is wrong, where, and what the
// operator can do about it.
type Finding struct {
	Topic string `json:"topic,omitempty"` // the topic it concerns, if any
	Seq   uint64 `json:"seq,omitempty"`   // the seq it concerns (or would have), if any
	Key   string `json:"key,omitempty"`   // the engine key, in hex, if one record
	What  string `json:"what"`
	Fix   string `json:"fix"`
}

// What the operator can do, by kind of damage.
const (
	fixRestore   = "restore the data folder from a backup; serving it as it is may lose or change events"
	fixCursor    = "commit the consumer's cursor again (goethectl cursor set), or restore the folder from a backup"
	fixDedupe    = "none needed: Open loads what decodes; a retry of an event whose record is lost may store it again"
	fixUnknown   = "none needed if a newer goethe build or a tool wrote it; otherwise inspect it, this build ignores it"
	fixLegacyFmt = "none: the next goethe start raises the format record to version 2"
)

// checker holds Check's state: per topic a few numbers, never events.
type checker struct {
	e      engine.Engine
	opts   CheckOptions
	r      *CheckReport
	legacy bool
	metas  map[uint64]topicMeta // metadata by topic id
	checks map[uint64]*TopicCheck
	// reclaims holds the ids of deleted topics whose events are still to
	// be removed: their event records are expected, not orphans.
	reclaims map[uint64]bool
}

// Check verifies the whole log kept in e and reports what it found. It is
// read-only: it writes nothing to e (opening e may itself have replayed
// the engine's journal, as every open does). It reads e page by page with
// Scan (see CheckOptions), keeping in memory a few numbers per topic and
// at most MaxFindings problems and warnings, so its memory does not grow
// with the number of events. It verifies:
//
//   - the format record is one this build reads;
//   - the catalog: every name valid, mapping to a unique topic id below the
//     topic counter, with metadata that names it back, and no metadata
//     without a catalog entry;
//   - every event of every topic: its key has the layout, its value decodes
//     and its CRC-32C matches, ids strictly increase, seqs are dense from
//     the first seq the metadata records, and the last readable event is
//     the one the metadata records last (id and seq), with nothing after
//     it; events under no known topic are problems;
//   - every cursor: its topic exists and its value decodes; a cursor past
//     the topic's last event is a warning, not a problem, because a client
//     may set one (a time in the future, or after the last event);
//   - every dedupe record decodes and belongs to a known topic (warnings:
//     a lost dedupe record only lets a retry store its event again);
//   - keys under prefixes this build does not write are warnings.
//
// The error is non-nil only when the check could not be done (an engine
// read failed for another reason than damage, or e is closed); damage the
// engine reports (engine.ErrCorrupted) is a problem in the report.
func Check(e engine.Engine, opts CheckOptions) (*CheckReport, error) {
	opts.fill()
	start := time.Now()
	c := &checker{e: e, opts: opts, r: &CheckReport{},
		metas: map[uint64]topicMeta{}, checks: map[uint64]*TopicCheck{}}
	err := c.run()
	c.r.Duration = time.Since(start)
	c.r.DurationSeconds = c.r.Duration.Seconds()
	if err != nil {
		return nil, err
	}
	return c.r, nil
}

func (c *checker) problem(f Finding) {
	c.r.ProblemCount++
	if len(c.r.Problems) < c.opts.MaxFindings {
		c.r.Problems = append(c.r.Problems, f)
	}
}

func (c *checker) warning(f Finding) {
	c.r.WarningCount++
	if len(c.r.Warnings) < c.opts.MaxFindings {
		c.r.Warnings = append(c.r.Warnings, f)
	}
}

// engineErr turns damage an engine reports into a problem (true), and
// returns any other error.
func (c *checker) engineErr(where string, err error) (bool, error) {
	if errors.Is(err, engine.ErrCorrupted) {
		c.problem(Finding{What: fmt.Sprintf("the engine reports damaged data while reading %s: %v", where, err), Fix: fixRestore})
		return true, nil
	}
	return false, fmt.Errorf("store: check %s: %w", where, err)
}

// scan calls f on every entry of [start, end), page by page. It stops
// early, without error, when the engine reports damage (a problem).
func (c *checker) scan(where string, start, end []byte, f func(kv engine.KV)) error {
	return c.scanResume(where, start, end, f, nil)
}

// scanResume is scan, but on damage the engine reports while reading from
// at, it goes on from resume's answer (nil: it stops); resume reports the
// problem.
func (c *checker) scanResume(where string, start, end []byte, f func(kv engine.KV), resume func(at []byte, err error) []byte) error {
	for {
		kvs, err := c.e.Scan(start, end, c.opts.PageEvents, c.opts.PageBytes)
		if err != nil {
			if resume != nil && errors.Is(err, engine.ErrCorrupted) {
				if start = resume(start, err); start != nil {
					continue
				}
				return nil
			}
			_, err := c.engineErr(where, err)
			return err
		}
		size := 0
		for _, kv := range kvs {
			size += len(kv.Key) + len(kv.Value)
			f(kv)
		}
		if len(kvs) == 0 || (len(kvs) < c.opts.PageEvents && size < c.opts.PageBytes) {
			return nil // a page that is not full is the last one
		}
		start = append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
	}
}

func (c *checker) run() error {
	ok, err := c.checkFormat()
	if err != nil || !ok {
		return err
	}
	if err := c.checkCatalog(); err != nil {
		return err
	}
	if err := c.checkLifecycle(); err != nil {
		return err
	}
	if err := c.checkEvents(); err != nil {
		return err
	}
	if err := c.checkCursors(); err != nil {
		return err
	}
	if err := c.checkDedupe(); err != nil {
		return err
	}
	return c.checkUnknown()
}

// checkFormat reads the format record; false means the rest cannot be
// checked (no record, or a version this build does not read).
func (c *checker) checkFormat() (bool, error) {
	v, err := c.e.Get(formatKey)
	if errors.Is(err, engine.ErrNotFound) {
		some, err := c.e.Scan(nil, nil, 1, 0)
		if err != nil {
			_, err := c.engineErr("the data folder", err)
			return false, err
		}
		if len(some) == 0 {
			if !c.opts.AllowEmpty {
				c.problem(Finding{What: "the engine holds no data at all, but the data folder should hold a Goethe log " +
					"(its files may be missing or damaged)", Fix: "restore the data folder from a backup, or move it aside to start empty"})
			}
			return false, nil
		}
		c.problem(Finding{What: "the data folder holds data but no format record", Fix: fixRestore})
		return false, nil
	}
	if err != nil {
		_, err := c.engineErr("the format record", err) // nil when it is damage, a problem
		return false, err
	}
	legacy, _, ok := readFormat(v)
	if !ok {
		c.problem(Finding{Key: fmt.Sprintf("%x", formatKey), What: fmt.Sprintf("the format record is %x, a version this build does not read (it reads %d to %d)", v, formatV1, FormatVersion),
			Fix: "check the folder with the goethe build that wrote it, or restore it from a backup"})
		return false, nil
	}
	c.legacy = legacy
	if len(v) == 1 && v[0] == formatV1 {
		c.warning(Finding{Key: fmt.Sprintf("%x", formatKey), What: "the data folder has format version 1 (events without checksums)", Fix: fixLegacyFmt})
	}
	c.r.Format = int(v[0])
	c.r.Legacy = c.legacy
	return true, nil
}

// checkCatalog reads the topic counter, the catalog and the metadata, and
// checks that they agree.
func (c *checker) checkCatalog() error {
	next := uint64(0) // 0: no counter
	v, err := c.e.Get(topicIDKey)
	switch {
	case errors.Is(err, engine.ErrNotFound):
	case err != nil:
		if damaged, err := c.engineErr("the topic counter", err); !damaged {
			return err
		}
	case len(v) != 8:
		c.problem(Finding{Key: fmt.Sprintf("%x", topicIDKey), What: fmt.Sprintf("the topic counter is %d bytes, not 8", len(v)), Fix: fixRestore})
	default:
		next = beUint64(v)
	}
	byID := map[uint64]string{}
	err = c.scan("the catalog", []byte{prefixCatalog}, []byte{prefixCatalog + 1}, func(kv engine.KV) {
		name := string(kv.Key[1:])
		key := fmt.Sprintf("%x", kv.Key)
		if err := ValidateName("topic", name); err != nil {
			c.problem(Finding{Topic: name, Key: key, What: fmt.Sprintf("catalog entry with an invalid topic name: %v", err), Fix: fixRestore})
		}
		if len(kv.Value) != 8 {
			c.problem(Finding{Topic: name, Key: key, What: fmt.Sprintf("catalog entry of %d bytes, not an 8-byte topic id", len(kv.Value)), Fix: fixRestore})
			return
		}
		id := beUint64(kv.Value)
		if other, dup := byID[id]; dup {
			c.problem(Finding{Topic: name, Key: key, What: fmt.Sprintf("topic id %d is also the id of topic %q", id, other), Fix: fixRestore})
			return
		}
		if id == 0 || id > MaxTopicID || (next != 0 && id >= next) {
			c.problem(Finding{Topic: name, Key: key, What: fmt.Sprintf("topic id %d is not one the topic counter (next id %d) has given out", id, next), Fix: fixRestore})
		}
		byID[id] = name
	})
	if err != nil {
		return err
	}
	if len(byID) > 0 && next == 0 {
		c.problem(Finding{Key: fmt.Sprintf("%x", topicIDKey), What: "the topic counter is missing although topics exist", Fix: fixRestore})
	}
	err = c.scan("the topic metadata", []byte{prefixMeta}, []byte{prefixMeta + 1}, func(kv engine.KV) {
		key := fmt.Sprintf("%x", kv.Key)
		if len(kv.Key) != 9 {
			c.problem(Finding{Key: key, What: "metadata record with a malformed key", Fix: fixRestore})
			return
		}
		id := beUint64(kv.Key[1:])
		m, err := decodeMeta(id, kv.Value)
		if err != nil {
			c.problem(Finding{Topic: byID[id], Key: key, What: fmt.Sprintf("metadata of topic id %d does not decode: %v", id, err), Fix: fixRestore})
			return
		}
		switch name, ok := byID[id]; {
		case !ok:
			c.problem(Finding{Topic: m.name, Key: key, What: fmt.Sprintf("metadata of topic id %d (named %q) has no catalog entry", id, m.name), Fix: fixRestore})
		case name != m.name:
			c.problem(Finding{Topic: name, Key: key, What: fmt.Sprintf("metadata of topic id %d names %q, the catalog %q", id, m.name, name), Fix: fixRestore})
		}
		emptied := m.firstID == 0 && m.firstSeq == m.lastSeq+1 // trimmed to nothing
		if m.lastSeq > 0 && !emptied && (m.firstSeq == 0 || m.firstSeq > m.lastSeq || m.firstID > m.lastID) {
			c.problem(Finding{Topic: m.name, Key: key, What: fmt.Sprintf("metadata of topic id %d is inconsistent: seqs %d to %d, ids %d to %d",
				id, m.firstSeq, m.lastSeq, m.firstID, m.lastID), Fix: fixRestore})
		}
		c.metas[id] = m
	})
	if err != nil {
		return err
	}
	for id, name := range byID {
		if _, ok := c.metas[id]; !ok {
			c.problem(Finding{Topic: name, What: fmt.Sprintf("topic %q (id %d) is in the catalog but has no metadata", name, id), Fix: fixRestore})
		}
	}
	return nil
}

// topicWalk is the state of the walk through one topic id's events.
type topicWalk struct {
	id      uint64
	meta    *topicMeta // nil: no metadata for this id
	tc      *TopicCheck
	prevSeq uint64 // the seq the last event had, or would have had if damaged
	prevID  uint64
	started bool
	cut     bool   // the engine reported damage: the rest of the topic was not read
	orphans uint64 // events under an id with no metadata
	lastKey []byte
}

// checkEvents walks every event record in key order, in one pass over the
// event key range, so that events under no known topic are found too.
func (c *checker) checkEvents() error {
	var w *topicWalk
	// Damage the engine reports ends the topic being read, not the check:
	// the walk goes on with the next topic id.
	resume := func(at []byte, err error) []byte {
		id := uint64(0)
		if len(at) >= 8 {
			id = beUint64(at)
		}
		if w == nil || w.id != id {
			c.endTopic(w)
			w = c.startTopic(id)
		}
		w.cut = true
		if w.meta != nil {
			c.problem(Finding{Topic: w.meta.name, Seq: w.prevSeq + 1,
				What: fmt.Sprintf("topic %q: the engine reports damaged data reading on after seq %d, so the rest of the topic cannot be read: %v",
					w.meta.name, w.prevSeq, err), Fix: fixRestore})
		} else {
			c.problem(Finding{What: fmt.Sprintf("the engine reports damaged data reading event records of topic id %d: %v", id, err), Fix: fixRestore})
		}
		if id >= MaxTopicID {
			return nil
		}
		return topicEnd(id)
	}
	err := c.scanResume("the events", nil, []byte{prefixSystem}, func(kv engine.KV) {
		if len(kv.Key) < 8 {
			c.problem(Finding{Key: fmt.Sprintf("%x", kv.Key), What: "an event record with a key shorter than a topic id", Fix: fixRestore})
			return
		}
		id := beUint64(kv.Key)
		if w == nil || w.id != id {
			c.endTopic(w)
			w = c.startTopic(id)
		}
		c.event(w, kv)
	}, resume)
	if err != nil {
		return err
	}
	c.endTopic(w)
	// Topics without a single event record.
	for id := range c.metas {
		if _, seen := c.checks[id]; !seen {
			c.endTopic(c.startTopic(id))
		}
	}
	c.r.Topics = make([]TopicCheck, 0, len(c.checks))
	for _, tc := range c.checks {
		c.r.Topics = append(c.r.Topics, *tc)
	}
	sort.Slice(c.r.Topics, func(i, j int) bool { return c.r.Topics[i].ID < c.r.Topics[j].ID })
	return nil
}

func (c *checker) startTopic(id uint64) *topicWalk {
	w := &topicWalk{id: id}
	if m, ok := c.metas[id]; ok {
		w.meta = &m
		w.tc = &TopicCheck{Name: m.name, ID: id, RecordedFirstSeq: m.firstSeq, RecordedLastSeq: m.lastSeq, RecordedLastID: m.lastID}
		c.checks[id] = w.tc
		if m.firstSeq > 0 {
			w.prevSeq = m.firstSeq - 1 // the first event must have the first seq recorded
		}
	}
	return w
}

// event checks one event record of w's topic.
func (c *checker) event(w *topicWalk, kv engine.KV) {
	if w.meta == nil {
		w.orphans++
		if w.lastKey == nil {
			w.lastKey = bytes.Clone(kv.Key)
		}
		return
	}
	name := w.meta.name
	w.tc.Bytes += uint64(len(kv.Key) + len(kv.Value))
	c.r.Bytes += uint64(len(kv.Key) + len(kv.Value))
	want := w.prevSeq + 1
	var e Event
	if err := decodeEvent(kv.Key, kv.Value, c.legacy, &e); err != nil {
		c.problem(Finding{Topic: name, Seq: want, Key: hexKey(kv.Key),
			What: fmt.Sprintf("topic %q: the event after seq %d (expected seq %d) does not read back: %v", name, w.prevSeq, want, err), Fix: fixRestore})
		w.prevSeq = want // assume it held the next seq, so as not to report a gap as well
		return
	}
	if w.started && e.ID <= w.prevID {
		c.problem(Finding{Topic: name, Seq: e.Seq, Key: hexKey(kv.Key),
			What: fmt.Sprintf("topic %q: event id %d does not increase (the one before is %d)", name, e.ID, w.prevID), Fix: fixRestore})
	}
	switch {
	case e.Seq == want:
	case !w.started:
		c.problem(Finding{Topic: name, Seq: want, Key: hexKey(kv.Key),
			What: fmt.Sprintf("topic %q: the first event has seq %d, but the metadata records the topic starting at seq %d", name, e.Seq, want), Fix: fixRestore})
	case e.Seq > want:
		c.problem(Finding{Topic: name, Seq: want, Key: hexKey(kv.Key),
			What: fmt.Sprintf("topic %q: seqs %d to %d are missing (the event after seq %d has seq %d)", name, want, e.Seq-1, w.prevSeq, e.Seq), Fix: fixRestore})
	default:
		c.problem(Finding{Topic: name, Seq: e.Seq, Key: hexKey(kv.Key),
			What: fmt.Sprintf("topic %q: seq %d repeats or goes back (the event before has seq %d)", name, e.Seq, w.prevSeq), Fix: fixRestore})
	}
	if !w.started {
		w.tc.FirstSeq, w.tc.FirstID = e.Seq, e.ID
	}
	w.started = true
	w.prevSeq, w.prevID = e.Seq, e.ID
	w.tc.Events++
	w.tc.LastSeq, w.tc.LastID = e.Seq, e.ID
	c.r.Events++
}

// endTopic checks a topic's end against its metadata.
func (c *checker) endTopic(w *topicWalk) {
	if w == nil {
		return
	}
	if w.meta == nil {
		if w.orphans > 0 && c.reclaims[w.id] {
			c.r.Reclaiming += w.orphans // a deleted topic's, removed in the background
			return
		}
		if w.orphans > 0 {
			c.problem(Finding{Key: fmt.Sprintf("%x", w.lastKey),
				What: fmt.Sprintf("%d event records under topic id %d, which has no metadata (no such topic)", w.orphans, w.id), Fix: fixRestore})
		}
		return
	}
	if w.cut {
		return // the damage is reported; the topic's end cannot be checked
	}
	m, tc := w.meta, w.tc
	switch {
	case m.lastSeq == 0 && tc.Events > 0:
		c.problem(Finding{Topic: m.name, Seq: tc.FirstSeq,
			What: fmt.Sprintf("topic %q: its metadata records no events, but %d are stored", m.name, tc.Events), Fix: fixRestore})
	case m.lastSeq == 0:
	case tc.Events == 0 && w.prevSeq < m.lastSeq:
		c.problem(Finding{Topic: m.name, Seq: m.lastSeq,
			What: fmt.Sprintf("topic %q: its metadata records seqs %d to %d, but no event is stored", m.name, m.firstSeq, m.lastSeq), Fix: fixRestore})
	case w.prevSeq < m.lastSeq:
		c.problem(Finding{Topic: m.name, Seq: w.prevSeq + 1,
			What: fmt.Sprintf("topic %q: its metadata records last seq %d (event id %d), but the last stored event has seq %d (id %d): seqs %d to %d are missing",
				m.name, m.lastSeq, m.lastID, tc.LastSeq, tc.LastID, w.prevSeq+1, m.lastSeq), Fix: fixRestore})
	case tc.Events > 0 && (tc.LastSeq != m.lastSeq || tc.LastID != m.lastID):
		c.problem(Finding{Topic: m.name, Seq: tc.LastSeq,
			What: fmt.Sprintf("topic %q: its metadata records last seq %d at event id %d, but the last stored event has seq %d at id %d",
				m.name, m.lastSeq, m.lastID, tc.LastSeq, tc.LastID), Fix: fixRestore})
	}
	if !m.noBytes && tc.Bytes != m.bytes {
		c.problem(Finding{Topic: m.name,
			What: fmt.Sprintf("topic %q: its metadata records %d bytes of events, but its event records hold %d", m.name, m.bytes, tc.Bytes), Fix: fixRestore})
	}
	// A first seq other than the recorded one was reported by event; an
	// id other than the recorded one with the right seq was not.
	if m.lastSeq > 0 && tc.Events > 0 && tc.FirstSeq == m.firstSeq && tc.FirstID != m.firstID {
		c.problem(Finding{Topic: m.name, Seq: tc.FirstSeq,
			What: fmt.Sprintf("topic %q: its metadata records the first event at id %d, but it is at id %d", m.name, m.firstID, tc.FirstID), Fix: fixRestore})
	}
}

// checkDedupe checks the dedupe records (see dedupe.go): each decodes and
// names an event id of a known topic. Damage here is a warning: Open
// loads them, and a record lost only lets a retried event be stored again.
func (c *checker) checkDedupe() error {
	return c.scan("the dedupe records", []byte{prefixDedupe}, []byte{prefixDedupe + 1}, func(kv engine.KV) {
		tid, r, err := decodeDedupe(kv.Key, kv.Value)
		if err != nil {
			c.warning(Finding{Key: hexKey(kv.Key), What: fmt.Sprintf("a dedupe record does not decode: %v", err), Fix: fixDedupe})
			return
		}
		m, ok := c.metas[tid]
		if !ok {
			c.warning(Finding{Key: hexKey(kv.Key), What: fmt.Sprintf("a dedupe record of topic id %d, which does not exist", tid), Fix: fixDedupe})
			return
		}
		if r.id > m.lastID {
			c.warning(Finding{Topic: m.name, Key: hexKey(kv.Key),
				What: fmt.Sprintf("topic %q: a dedupe record names event id %d, past the topic's last event (id %d)", m.name, r.id, m.lastID), Fix: fixDedupe})
		}
	})
}

// checkCursors checks every cursor against the topics.
func (c *checker) checkCursors() error {
	return c.scan("the cursors", []byte{prefixCursor}, []byte{prefixCursor + 1}, func(kv engine.KV) {
		c.r.Cursors++
		key := fmt.Sprintf("%x", kv.Key)
		if len(kv.Key) < 10 {
			c.problem(Finding{Key: key, What: "a cursor record with a malformed key", Fix: fixCursor})
			return
		}
		id, consumer := beUint64(kv.Key[1:]), string(kv.Key[9:])
		m, ok := c.metas[id]
		if !ok {
			c.problem(Finding{Key: key, What: fmt.Sprintf("the cursor of consumer %q is on topic id %d, which does not exist", consumer, id), Fix: fixCursor})
			return
		}
		if err := ValidateName("consumer", consumer); err != nil {
			c.problem(Finding{Topic: m.name, Key: key, What: fmt.Sprintf("topic %q: a cursor with an invalid consumer name: %v", m.name, err), Fix: fixCursor})
		}
		cur, _, err := decodeCursor(kv.Value)
		if err != nil {
			c.problem(Finding{Topic: m.name, Key: key, What: fmt.Sprintf("topic %q: the cursor of consumer %q does not decode: %v", m.name, consumer, err), Fix: fixCursor})
			return
		}
		if last := m.lastID; cur > last {
			// CommitCursor takes any id: "from this time on" is a
			// legitimate cursor, so this is only worth a look.
			c.warning(Finding{Topic: m.name, Key: key,
				What: fmt.Sprintf("topic %q: the cursor of consumer %q is at event id %d, past the topic's last event (id %d): "+
					"a client set it past the end (a time in the future, or after the last event), or events it read are lost", m.name, consumer, cur, last), Fix: fixCursor})
		}
	})
}

// checkUnknown warns of keys under prefixes this build does not write, one
// warning per prefix byte.
func (c *checker) checkUnknown() error {
	ranges := [][2][]byte{
		{append(bytes.Clone(formatKey), 0), []byte{prefixFormat + 1}}, // after the format record
		{[]byte{prefixCounter}, []byte{prefixCounter + 1}},
		{[]byte{prefixCounter + 1}, []byte{prefixReplica}},
		{[]byte{prefixDedupe + 1}, nil}, // the replica, config, reclaim and dedupe records are this build's
	}
	for _, rg := range ranges {
		var prefix byte
		var n int
		var first []byte
		flush := func() {
			if n > 0 {
				c.warning(Finding{Key: fmt.Sprintf("%x", first), What: fmt.Sprintf("%d records under prefix %#x, which this build does not write", n, prefix), Fix: fixUnknown})
			}
			n, first = 0, nil
		}
		err := c.scan("unknown records", rg[0], rg[1], func(kv engine.KV) {
			if bytes.Equal(kv.Key, topicIDKey) {
				return
			}
			if n > 0 && kv.Key[0] != prefix {
				flush()
			}
			if n == 0 {
				prefix, first = kv.Key[0], bytes.Clone(kv.Key)
			}
			n++
		})
		if err != nil {
			return err
		}
		flush()
	}
	return nil
}

// hexKey is a key as a report shows it; called only for a finding, so that
// the walk over healthy events allocates nothing per event.
func hexKey(k []byte) string { return fmt.Sprintf("%x", k) }

// checkLifecycle checks the topic config records (each decodes and belongs
// to a topic) and the reclaim records of deleted topics (each names a topic
// id the counter gave out that no topic has any more).
func (c *checker) checkLifecycle() error {
	err := c.scan("the topic configs", []byte{prefixConfig}, []byte{prefixConfig + 1}, func(kv engine.KV) {
		c.r.Configs++
		key := hexKey(kv.Key)
		if len(kv.Key) != 9 {
			c.problem(Finding{Key: key, What: "a topic config record with a malformed key", Fix: fixRestore})
			return
		}
		id := beUint64(kv.Key[1:])
		m, ok := c.metas[id]
		if !ok {
			c.problem(Finding{Key: key, What: fmt.Sprintf("a config record for topic id %d, which does not exist", id), Fix: fixRestore})
			return
		}
		if _, err := decodeConfig(kv.Value); err != nil {
			c.problem(Finding{Topic: m.name, Key: key, What: fmt.Sprintf("topic %q: its config record does not decode: %v", m.name, err), Fix: fixRestore})
		}
	})
	if err != nil {
		return err
	}
	c.reclaims = map[uint64]bool{}
	return c.scan("the reclaim records", []byte{prefixReclaim}, []byte{prefixReclaim + 1}, func(kv engine.KV) {
		key := hexKey(kv.Key)
		if len(kv.Key) != 9 || len(kv.Value) != 1 || kv.Value[0] != valueVersion {
			c.problem(Finding{Key: key, What: "a reclaim record of a deleted topic that does not decode", Fix: fixRestore})
			return
		}
		id := beUint64(kv.Key[1:])
		if m, ok := c.metas[id]; ok {
			c.problem(Finding{Topic: m.name, Key: key, What: fmt.Sprintf("topic %q (id %d) is marked deleted but still has metadata", m.name, id), Fix: fixRestore})
			return
		}
		c.reclaims[id] = true
	})
}
