package store

import (
	"fmt"
	"math"

	"github.com/goethe-log/goethe/engine"
)

// commandKind says what a command does.
type commandKind uint8

const (
	cmdAppend      commandKind = iota + 1 // append events, optionally expecting a last seq
	cmdSetCursor                          // set a consumer's cursor in an existing topic
	cmdSetConfig                          // change a topic's config, creating it empty if needed
	cmdTrim                               // remove a prefix of a topic's events
	cmdDeleteTopic                        // delete a topic with its config and cursors
)

// command is one write, as the apply step sees it: what a caller asked for,
// with nothing of the store's state in it. Under replication a command is
// what a log entry carries.
type command struct {
	kind   commandKind
	topic  string
	events []Event     // cmdAppend
	expect Expectation // cmdAppend
	// window (cmdAppend), when not 0, is the leader's dedupe window in ns
	// for topics without one of their own, overriding the store's:
	// negative is off (see Command.DedupeWindow).
	window   int64
	consumer string // cmdSetCursor
	cursorID uint64 // cmdSetCursor
	// cursorSeq is the seq of the event at cursorID, when the caller
	// found it (0: unknown); stored with the cursor.
	cursorSeq uint64
	config    TopicConfig  // cmdSetConfig: the fields to set
	clear     ConfigFields // cmdSetConfig: the fields to drop
	trim      TrimStep     // cmdTrim
	topicID   uint64       // cmdDeleteTopic: the id of the topic to delete
	// at, when not 0, is this command's timestamp, overriding the one
	// apply is given: a replica applies a batch of log entries, each with
	// its leader's reading, in one group.
	at int64
}

// outcome is one command's result.
type outcome struct {
	res AppendResult // cmdAppend
	err error
}

// change is a topic's state as of the commands applied so far in a group;
// it becomes committed state only once the group's batch is written.
type change struct {
	t       *topic // nil for a topic the group creates
	meta    topicMeta
	dirty   bool         // the topic gets written: events appended, trimmed, or created
	config  bool         // the topic's config record gets written
	deleted bool         // the topic is deleted by this group
	trimmed bool         // events were removed from the topic's start
	dd      dedupeChange // its remembered dedupe keys (see dedupe.go)
}

// applied is the apply step's output and its reusable scratch space: the
// engine batch, one outcome per command, and the topic state the batch
// leads to. Its buffers are reused from group to group; the batch and the
// metadata reference them until reset.
type applied struct {
	batch       engine.Batch
	outcomes    []outcome
	changes     []*change // in the order the group first touched them
	byName      map[string]*change
	nextTopicID uint64 // the topic counter after the batch
	created     bool   // the batch creates topics (and writes the counter)
	arena       []byte
	spare       []change // change structs, reused
	// deletedNames holds the names of committed topics that the group
	// deleted: a later command of the group naming one starts a new topic.
	deletedNames map[string]bool

	// Dedupe settings, set by the store once (see dedupe.go): the window
	// in ns (0: off) and the keys a topic remembers at most.
	window  int64
	maxKeys int
	// forgotten counts the keys this group forgot early, past maxKeys.
	forgotten uint64
	localKeys map[string]int // scratch of appendDeduped
}

func (a *applied) reset() {
	a.batch.Reset()
	clear(a.outcomes)
	a.outcomes = a.outcomes[:0]
	clear(a.changes)
	a.changes = a.changes[:0]
	clear(a.byName)
	a.created = false
	a.arena = a.arena[:0]
	clear(a.spare)
	a.spare = a.spare[:0]
	clear(a.deletedNames)
	a.forgotten = 0
}

// apply is the write path's pure step. From the committed topics (read,
// never changed), the next free topic id, a list of commands and a
// timestamp (ns since the epoch) it computes into a: the engine batch that
// carries out every command that can be carried out, each command's
// outcome, and the topic state after the batch. It reads no clock, does no
// I/O and starts nothing: the same inputs give the same batch byte for byte,
// which is what lets a replicated log apply a leader's commands with the
// leader's timestamp on every replica.
//
// Rules, in command order:
//   - An append creates its topic if needed; its events get ids
//     max(now, last id + 1), +1, … and the next dense seqs. With an
//     expectation that does not hold it fails alone (*ConflictError), and
//     later commands see the topic as if it had not been tried.
//   - A cursor set needs the topic to exist, committed or created by an
//     earlier append of the same group; its value records now.
//   - A config set creates its topic (empty) if needed and merges the
//     fields it sets and clears into the topic's config record.
//   - A trim (see TrimStep) removes the prefix its step describes, with one
//     range delete, if the topic is still the one the step was planned on
//     (same id, same first seq, same last seq when it empties the topic);
//     otherwise it fails with ErrStaleTrim and changes nothing.
//   - A delete removes the topic's catalog entry, metadata, config and
//     cursors and records its id for reclaim (its events are removed in the
//     background); the topic must exist with the id given. A later command
//     of the group that names it starts a new topic, with a new id.
//   - A topic touched only by failed commands is not written; a topic id
//     is taken only by a topic that is.
//
// topics must hold every committed topic: a name missing from it is a new
// topic.
func apply(topics map[string]*topic, nextTopicID uint64, cmds []command, now int64, a *applied) {
	a.reset()
	if a.byName == nil {
		a.byName = make(map[string]*change)
		a.localKeys = make(map[string]int)
	}
	if a.maxKeys <= 0 {
		a.maxKeys = DefaultMaxDedupeKeys
	}
	if cap(a.spare) < len(cmds) {
		a.spare = make([]change, 0, len(cmds))
	}
	a.nextTopicID = nextTopicID
	for i := range cmds {
		t := now
		if cmds[i].at != 0 {
			t = cmds[i].at
		}
		a.outcomes = append(a.outcomes, a.one(topics, &cmds[i], t))
	}
	for _, c := range a.changes {
		if c.deleted || !c.dirty {
			continue // deleted, or touched only by failed commands
		}
		if c.t == nil {
			a.batch.Put(catalogKey(c.meta.name), putUint64(a.alloc(8), c.meta.id))
		}
		a.dedupeWrite(c)
		a.batch.Put(metaKey(c.meta.id), c.meta.encode(a.alloc(58+len(c.meta.name))))
		if c.config {
			a.batch.Put(configKey(c.meta.id), encodeConfig(a.alloc(48), &c.meta.cfg))
		}
	}
	if a.created {
		a.batch.Put(topicIDKey, putUint64(a.alloc(8), a.nextTopicID))
	}
}

// one applies one command.
func (a *applied) one(topics map[string]*topic, cmd *command, now int64) outcome {
	c := a.byName[cmd.topic]
	if c == nil {
		t := topics[cmd.topic]
		if a.deletedNames[cmd.topic] {
			t = nil // deleted earlier in the group: the name is free
		}
		switch {
		case t != nil:
			c = a.newChange(t, t.meta)
		case cmd.kind == cmdSetCursor, cmd.kind == cmdTrim, cmd.kind == cmdDeleteTopic:
			return outcome{err: fmt.Errorf("%w: topic %q", ErrNotFound, cmd.topic)}
		default:
			c = a.newChange(nil, topicMeta{name: cmd.topic, created: now})
		}
	}
	exists := c.t != nil || c.dirty // committed, or created by this group
	switch cmd.kind {
	case cmdAppend:
		window := a.dedupeWindow(c, cmd)
		if window > 0 && hasDedupeKeys(cmd.events) {
			res, err := a.appendDeduped(c, cmd, now, window)
			return outcome{res: res, err: err}
		}
		if cmd.expect.set && cmd.expect.lastSeq != c.meta.lastSeq {
			return outcome{err: &ConflictError{Topic: cmd.topic, Expected: cmd.expect.lastSeq, Actual: c.meta.lastSeq}}
		}
		if err := a.create(c); err != nil {
			return outcome{err: err}
		}
		if c.t != nil && len(c.t.dd.live()) > c.dd.drop || len(c.dd.add) > c.dd.addDrop {
			cutoff := int64(math.MaxInt64) // dedupe off: forget every key
			if window > 0 {
				cutoff = now - window
			}
			a.dedupeExpire(c, cutoff)
		}
		return outcome{res: a.appendEvents(c, cmd.events, now)}
	case cmdSetCursor:
		if !exists {
			// Only failed appends of this group named the topic.
			return outcome{err: fmt.Errorf("%w: topic %q", ErrNotFound, cmd.topic)}
		}
		a.batch.Put(cursorKey(c.meta.id, cmd.consumer), encodeCursor(cmd.cursorID, now, cmd.cursorSeq))
		return outcome{}
	case cmdSetConfig:
		if err := cmd.config.Validate(); err != nil {
			return outcome{err: err}
		}
		if err := a.create(c); err != nil {
			return outcome{err: err}
		}
		c.meta.cfg = c.meta.cfg.merge(cmd.config, cmd.clear&AllConfigFields)
		c.dirty, c.config = true, true
		return outcome{}
	case cmdTrim:
		if !exists {
			return outcome{err: fmt.Errorf("%w: topic %q", ErrNotFound, cmd.topic)}
		}
		return a.trim(c, &cmd.trim)
	case cmdDeleteTopic:
		if !exists || c.meta.id != cmd.topicID {
			return outcome{err: fmt.Errorf("%w: topic %q (id %d)", ErrNotFound, cmd.topic, cmd.topicID)}
		}
		a.deleteTopic(c)
		return outcome{}
	}
	return outcome{err: fmt.Errorf("%w: unknown command %d", ErrInvalid, cmd.kind)}
}

// create gives c, a topic the group creates, its id at the first command
// that succeeds on it; for an existing topic it does nothing.
func (a *applied) create(c *change) error {
	if c.t != nil || c.dirty {
		return nil
	}
	if a.nextTopicID > MaxTopicID {
		return ErrTopicLimit
	}
	c.meta.id = a.nextTopicID
	a.nextTopicID++
	a.created = true
	c.dirty = true
	return nil
}

// trim carries out a trim step on c, or fails with ErrStaleTrim when c is
// no longer the topic state the step was planned on.
func (a *applied) trim(c *change, st *TrimStep) outcome {
	m := &c.meta
	stale := func(what string) outcome {
		return outcome{err: fmt.Errorf("%w: topic %q: %s", ErrStaleTrim, m.name, what)}
	}
	switch {
	case m.id != st.TopicID:
		return stale(fmt.Sprintf("topic id %d, the step was planned on id %d", m.id, st.TopicID))
	case m.empty() || m.firstSeq != st.FirstSeq:
		return stale(fmt.Sprintf("first seq %d, the step was planned at %d", m.firstSeq, st.FirstSeq))
	case st.NewFirstSeq <= m.firstSeq || st.NewFirstSeq > m.lastSeq+1 || st.Bytes > m.bytes:
		return outcome{err: fmt.Errorf("%w: trim step of topic %q to seq %d does not fit seqs %d to %d", ErrInvalid, m.name, st.NewFirstSeq, m.firstSeq, m.lastSeq)}
	}
	start := putEventKey(a.alloc(eventKeyLen), m.id, m.firstID)
	var end []byte
	if st.NewFirstID == 0 {
		// Everything: only if nothing was appended since the step was
		// planned.
		if st.NewFirstSeq != m.lastSeq+1 {
			return stale(fmt.Sprintf("last seq %d, the step emptying the topic was planned at %d", m.lastSeq, st.NewFirstSeq-1))
		}
		if m.lastID == ^uint64(0) {
			end = topicEnd(m.id)
		} else {
			end = putEventKey(a.alloc(eventKeyLen), m.id, m.lastID+1)
		}
	} else {
		if st.NewFirstID <= m.firstID || st.NewFirstID > m.lastID || st.NewFirstSeq > m.lastSeq {
			return outcome{err: fmt.Errorf("%w: trim step of topic %q to id %d does not fit ids %d to %d", ErrInvalid, m.name, st.NewFirstID, m.firstID, m.lastID)}
		}
		end = putEventKey(a.alloc(eventKeyLen), m.id, st.NewFirstID)
	}
	a.batch.DeleteRange(start, end)
	removed := st.NewFirstSeq - m.firstSeq
	m.firstID, m.firstSeq = st.NewFirstID, st.NewFirstSeq
	m.bytes -= st.Bytes
	c.dirty, c.trimmed = true, true
	return outcome{res: AppendResult{Count: int(removed)}}
}

// deleteTopic removes c's records and marks its id for reclaim.
func (a *applied) deleteTopic(c *change) {
	id := c.meta.id
	a.batch.Delete(catalogKey(c.meta.name))
	a.batch.Delete(metaKey(id))
	a.batch.Delete(configKey(id))
	a.batch.DeleteRange(cursorsStart(id), cursorsEnd(id))
	// Its dedupe records: at most Options.MaxDedupeKeys, so one bounded
	// range (goleveldb expands it into that many deletes at most).
	a.batch.DeleteRange(dedupeKey(a.alloc(17), id, 0), dedupeTopicEnd(id))
	a.batch.Put(reclaimKey(id), []byte{valueVersion})
	c.deleted = true
	delete(a.byName, c.meta.name)
	if c.t != nil {
		if a.deletedNames == nil {
			a.deletedNames = make(map[string]bool)
		}
		a.deletedNames[c.meta.name] = true
	}
}

func hasDedupeKeys(events []Event) bool {
	for i := range events {
		if events[i].DedupeKey != "" {
			return true
		}
	}
	return false
}

func (a *applied) newChange(t *topic, m topicMeta) *change {
	a.spare = append(a.spare, change{t: t, meta: m})
	c := &a.spare[len(a.spare)-1]
	a.changes = append(a.changes, c)
	a.byName[m.name] = c
	return c
}

// appendEvents gives events their ids and seqs in c and adds them to the
// batch.
func (a *applied) appendEvents(c *change, events []Event, now int64) AppendResult {
	var res AppendResult
	for i := range events {
		id, seq := a.putEvent(c, &events[i], now)
		if i == 0 {
			res = AppendResult{FirstID: id, FirstSeq: seq, Count: len(events)}
		}
	}
	c.dirty = true
	return res
}

// putEvent gives e the next id and seq of c, adds it to the batch and
// returns them.
func (a *applied) putEvent(c *change, e *Event, now int64) (id, seq uint64) {
	m := &c.meta
	id = uint64(now)
	if id <= m.lastID {
		id = m.lastID + 1
	}
	m.lastSeq++
	k := putEventKey(a.alloc(eventKeyLen), m.id, id)
	var v []byte
	if e.DedupeKey != "" {
		v = appendEventValueKey(a.alloc(eventValueSize(e)), k, m.lastSeq, e.DedupeKey, e.Headers, e.Payload)
	} else {
		v = appendEventValue(a.alloc(eventValueSize(e)), k, m.lastSeq, e.Headers, e.Payload)
	}
	a.batch.Put(k, v)
	m.bytes += uint64(len(k) + len(v))
	if m.firstID == 0 {
		m.firstID, m.firstSeq = id, m.lastSeq
	}
	m.lastID = id
	return id, m.lastSeq
}

// alloc returns n bytes of capacity from the arena as an empty slice.
// Earlier slices stay valid when the arena grows: they keep the old array.
func (a *applied) alloc(n int) []byte {
	if cap(a.arena)-len(a.arena) < n {
		a.arena = make([]byte, 0, max(2*cap(a.arena)+n, 64<<10))
	}
	start := len(a.arena)
	a.arena = a.arena[:start+n]
	return a.arena[start : start : start+n]
}

// eventValueSize bounds the encoded size of e's stored value.
func eventValueSize(e *Event) int {
	n := eventHeaderLen + 3*10 + len(e.Payload) + len(e.DedupeKey)
	for k, v := range e.Headers {
		n += 2*10 + len(k) + len(v)
	}
	return n
}
