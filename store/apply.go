package store

import (
	"fmt"
	"math"

	"github.com/goethe-log/goethe/engine"
)

// commandKind says what a command does.
type commandKind uint8

const (
	cmdAppend    commandKind = iota + 1 // append events, optionally expecting a last seq
	cmdSetCursor                        // set a consumer's cursor in an existing topic
)

// command is one write, as the apply step sees it: what a caller asked for,
// with nothing of the store's state in it. Under replication a command is
// what a log entry carries.
type command struct {
	kind     commandKind
	topic    string
	events   []Event     // cmdAppend
	expect   Expectation // cmdAppend
	consumer string      // cmdSetCursor
	cursorID uint64      // cmdSetCursor
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
	t     *topic // nil for a topic the group creates
	meta  topicMeta
	dirty bool         // the topic gets written: events appended or created
	dd    dedupeChange // its remembered dedupe keys (see dedupe.go)
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
		if !c.dirty {
			continue // a topic touched only by failed commands
		}
		if c.t == nil {
			a.batch.Put(catalogKey(c.meta.name), putUint64(a.alloc(8), c.meta.id))
		}
		a.dedupeWrite(c)
		a.batch.Put(metaKey(c.meta.id), c.meta.encode(a.alloc(48+len(c.meta.name))))
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
		switch {
		case t != nil:
			c = a.newChange(t, t.meta)
		case cmd.kind == cmdSetCursor:
			return outcome{err: fmt.Errorf("%w: topic %q", ErrNotFound, cmd.topic)}
		default:
			c = a.newChange(nil, topicMeta{name: cmd.topic, created: now})
		}
	}
	switch cmd.kind {
	case cmdAppend:
		window := a.dedupeWindow(c)
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
		if c.t == nil && !c.dirty {
			// Only failed appends of this group named the topic.
			return outcome{err: fmt.Errorf("%w: topic %q", ErrNotFound, cmd.topic)}
		}
		a.batch.Put(cursorKey(c.meta.id, cmd.consumer), encodeCursor(cmd.cursorID, now))
		return outcome{}
	}
	return outcome{err: fmt.Errorf("%w: unknown command %d", ErrInvalid, cmd.kind)}
}

// create gives c's topic an id if the group creates it: the first append
// that succeeds creates the topic, and only then does it take an id.
func (a *applied) create(c *change) error {
	if c.t == nil && !c.dirty && c.meta.id == 0 {
		if a.nextTopicID > MaxTopicID {
			return ErrTopicLimit
		}
		c.meta.id = a.nextTopicID
		a.nextTopicID++
		a.created = true
	}
	return nil
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
