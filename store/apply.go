package store

import (
	"fmt"

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
	dirty bool // the topic gets written: events appended or created
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
		if cmd.expect.set && cmd.expect.lastSeq != c.meta.lastSeq {
			return outcome{err: &ConflictError{Topic: cmd.topic, Expected: cmd.expect.lastSeq, Actual: c.meta.lastSeq}}
		}
		if c.t == nil && !c.dirty {
			// The first append that succeeds creates the topic: only
			// then does it take an id.
			if a.nextTopicID > MaxTopicID {
				return outcome{err: ErrTopicLimit}
			}
			c.meta.id = a.nextTopicID
			a.nextTopicID++
			a.created = true
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
	m := &c.meta
	id := uint64(now)
	if id <= m.lastID {
		id = m.lastID + 1
	}
	res := AppendResult{FirstID: id, FirstSeq: m.lastSeq + 1, Count: len(events)}
	for i := range events {
		e := &events[i]
		m.lastSeq++
		k := putEventKey(a.alloc(eventKeyLen), m.id, id)
		v := appendEventValue(a.alloc(eventValueSize(e)), k, m.lastSeq, e.Headers, e.Payload)
		a.batch.Put(k, v)
		if m.firstID == 0 {
			m.firstID, m.firstSeq = id, m.lastSeq
		}
		m.lastID = id
		id++
	}
	c.dirty = true
	return res
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
	n := eventHeaderLen + 2*10 + len(e.Payload)
	for k, v := range e.Headers {
		n += 2*10 + len(k) + len(v)
	}
	return n
}
