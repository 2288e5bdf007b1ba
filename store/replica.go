package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/goethe-log/goethe/engine"
)

// Replication. Under Raft the commit step moves behind the log: a leader
// proposes commands with its clock reading, and every replica applies each
// committed entry with ApplyCommitted, which runs the same pure apply step as
// a local commit and so writes the same events under the same ids, seqs and
// times, byte for byte. The Raft index applied is written in the same engine
// batch, so a restarted replica knows exactly which entries its store holds.

// CommandKind says what a Command does.
type CommandKind uint8

// The kinds of Command. Their values travel in replicated log entries and
// never change.
const (
	// CommandAppend appends Events to Topic, creating it if needed, if
	// Expect holds (see Append).
	CommandAppend CommandKind = 1
	// CommandSetCursor records Consumer's cursor CursorID in Topic, which
	// must exist (see SetCursor).
	CommandSetCursor CommandKind = 2
	// CommandSetConfig merges Config and Clear into Topic's config,
	// creating the topic empty if needed (see SetTopicConfig).
	CommandSetConfig CommandKind = 3
	// CommandTrim carries out the trim step Trim on Topic (see TrimStep
	// and PlanTrim): a step planned on a state the topic is no longer in
	// fails with ErrStaleTrim on every replica alike.
	CommandTrim CommandKind = 4
	// CommandDeleteTopic deletes Topic, which must have id TopicID (see
	// DeleteTopic and PlanDelete).
	CommandDeleteTopic CommandKind = 5
)

// Command is one write as a replicated log entry carries it: what a caller
// asked for, with nothing of any replica's state in it but what a planned
// step says it found (a trim's or a delete's topic id and first seq), which
// apply checks.
type Command struct {
	Kind   CommandKind
	Topic  string
	Events []Event     // CommandAppend: only Headers and Payload are read
	Expect Expectation // CommandAppend
	// DedupeWindow (CommandAppend) is the dedupe window the leader
	// decided for topics with no window of their own (its
	// Options.DedupeWindow, see Store.DedupeWindow), so that every replica
	// keeps a key equally long whatever its own options: negative is off,
	// 0 takes the applying store's own (an entry of a build before it).
	DedupeWindow time.Duration
	Consumer     string // CommandSetCursor
	CursorID     uint64 // CommandSetCursor
	// CursorSeq is the seq of the event at CursorID, 0 when unknown
	// (CommandSetCursor; see Store.CursorSeq).
	CursorSeq uint64
	Config    TopicConfig  // CommandSetConfig: the fields Config.Set names are set
	Clear     ConfigFields // CommandSetConfig: these fields are dropped
	Trim      TrimStep     // CommandTrim
	TopicID   uint64       // CommandDeleteTopic
}

// internal is c as the apply step takes it.
func (c *Command) internal() command {
	ic := command{kind: commandKind(c.Kind), topic: c.Topic}
	switch c.Kind {
	case CommandAppend:
		ic.events, ic.expect, ic.window = c.Events, c.Expect, int64(c.DedupeWindow)
	case CommandSetCursor:
		ic.consumer, ic.cursorID, ic.cursorSeq = c.Consumer, c.CursorID, c.CursorSeq
	case CommandSetConfig:
		ic.config, ic.clear = c.Config, c.Clear
	case CommandTrim:
		ic.trim = c.Trim
	case CommandDeleteTopic:
		ic.topicID = c.TopicID
	}
	return ic
}

// Validate reports what Append, SetCursor or SetTopicConfig would refuse
// before queueing: an invalid name (ErrInvalidName), an append of no
// events, a config with a negative duration or unknown fields, or an
// unknown kind (ErrInvalid). A trim step's fit is checked by apply. It is a pure function of the command, so every replica
// refuses the same commands.
func (c *Command) Validate() error {
	switch c.Kind {
	case CommandAppend:
		if err := ValidateName("topic", c.Topic); err != nil {
			return err
		}
		if len(c.Events) == 0 {
			return fmt.Errorf("%w: an append needs at least one event", ErrInvalid)
		}
		if err := validateDedupeKeys(c.Events); err != nil {
			return err
		}
	case CommandSetCursor:
		if err := ValidateName("topic", c.Topic); err != nil {
			return err
		}
		if err := ValidateName("consumer", c.Consumer); err != nil {
			return err
		}
	case CommandSetConfig:
		if err := ValidateName("topic", c.Topic); err != nil {
			return err
		}
		if err := c.Config.Validate(); err != nil {
			return err
		}
		if c.Clear&^AllConfigFields != 0 {
			return fmt.Errorf("%w: unknown config fields %#x to clear", ErrInvalid, uint8(c.Clear&^AllConfigFields))
		}
	case CommandTrim, CommandDeleteTopic:
		if err := ValidateName("topic", c.Topic); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown command kind %d", ErrInvalid, c.Kind)
	}
	return nil
}

// Result is one command's outcome: Append is set for a successful
// CommandAppend; Err is what Append or SetCursor would have returned
// (a *ConflictError, ErrNotFound, ErrInvalid…). Results are computed
// identically on every replica.
type Result struct {
	Append AppendResult
	Err    error
}

// CommittedEntry is one committed log entry for ApplyCommitted: its Raft
// index, the leader's clock reading (ns since the Unix epoch, > 0) and the
// commands it carries, in order.
type CommittedEntry struct {
	Index    uint64
	Time     int64
	Commands []Command
}

// ErrAlreadyApplied is the Result.Err of every command of an entry whose
// index is at or below AppliedIndex: the store already holds its effects,
// and ApplyCommitted skips it (a restarted replica is handed entries again
// from its last Raft snapshot on).
var ErrAlreadyApplied = errors.New("store: log entry already applied")

// AppliedIndex is the index of the last log entry the store holds the
// effects of: 0 for a store never written by ApplyCommitted. It is read at
// Open and advanced by ApplyCommitted and Restore.
func (s *Store) AppliedIndex() uint64 { return s.appliedIndex.Load() }

// WaitApplied waits until AppliedIndex is at least index (read-your-writes
// on a replica: a write acknowledged at index n is visible here once this
// returns for n), or until ctx ends (its error) or the store closes
// (ErrClosed). It does not poll: ApplyCommitted and Restore wake it.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := *s.appliedCh.Load()
		if s.appliedIndex.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.quit:
			return ErrClosed
		}
	}
}

// setApplied publishes a new AppliedIndex and wakes WaitApplied.
func (s *Store) setApplied(index uint64) {
	s.appliedIndex.Store(index)
	next := make(chan struct{})
	close(*s.appliedCh.Swap(&next))
}

// ApplyCommitted applies committed log entries, in index order, as one
// group: each command runs through the same apply step as a local commit,
// with its entry's Time instead of the clock, and the batch is written
// together with the last entry's index as AppliedIndex. Entries at or below
// AppliedIndex are skipped (ErrAlreadyApplied). It returns one Result per
// command of each entry. Readers waiting at the end of a topic (Wait, and
// the followers of the tail ring) are woken as by a commit.
//
// An error means AppliedIndex did not move: the store's write path is down
// (ErrNoSpace, from which it resumes by itself), failed (ErrFailed) or
// closed (ErrClosed). The caller must not apply later entries before these
// ones succeed, and retries the same entries. A write that failed for lack
// of space may have reached the engine after all (a failed sync); when the
// store resumes it re-reads AppliedIndex from the engine with the topics,
// so the retry skips what landed instead of applying it twice.
//
// Durability: the batch is written without fsync unless
// Options.SyncApplied, because the replicated log has already made the
// entries durable and a replica that loses the end of its engine's data
// re-applies them from the log after the AppliedIndex it finds. That holds
// for goleveldb and pebble, whose unsynced writes go to a journal or WAL
// in order, so a crash leaves a prefix of the batches and AppliedIndex
// matches the data it lands with. bbolt's unsynced commit can leave a
// meta page pointing at pages that never reached the disk after a machine
// crash (its documentation warns of corruption): with bbolt set
// SyncApplied.
//
// ApplyCommitted excludes local commits while it runs; a replicated store
// must take no Append or SetCursor of its own (they would not be in the
// log). It is safe to call from one goroutine at a time (the log's apply
// loop).
func (s *Store) ApplyCommitted(entries []CommittedEntry) ([][]Result, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.releaseCommitter()
	c := &s.c
	s.maybeResume()
	if err := s.gate(); err != nil {
		return nil, err
	}

	applied := s.appliedIndex.Load()
	results := make([][]Result, len(entries))
	type slot struct{ entry, cmd int }
	var slots []slot
	last := applied
	c.cmds = c.cmds[:0]
	defer func() { clear(c.cmds) }()
	for i := range entries {
		e := &entries[i]
		results[i] = make([]Result, len(e.Commands))
		if e.Index <= last {
			for j := range results[i] {
				results[i][j].Err = ErrAlreadyApplied
			}
			continue
		}
		last = e.Index
		at := max(e.Time, 1) // 0 would mean "the group's time" to apply
		for j := range e.Commands {
			cmd := &e.Commands[j]
			if err := cmd.Validate(); err != nil {
				results[i][j].Err = err
				continue
			}
			ic := cmd.internal()
			ic.at = at
			c.cmds = append(c.cmds, ic)
			slots = append(slots, slot{i, j})
		}
	}
	if last == applied {
		return results, nil
	}
	a := &c.applied
	apply(s.topics, c.nextTopicID, c.cmds, 1, a) // every command carries its time
	a.batch.Put(appliedKey, putUint64(a.alloc(8), last))

	events := 0
	for i := range c.cmds {
		events += len(c.cmds[i].events)
	}
	if err := s.writeGroup(a, len(c.cmds), events, s.opts.SyncApplied); err != nil {
		return nil, err
	}
	c.nextTopicID = a.nextTopicID
	s.fillTails(c.cmds, a)
	s.publish(a)
	// Last: a reader that WaitApplied lets through must see the batch.
	s.setApplied(last)
	for k, sl := range slots {
		o := a.outcomes[k]
		results[sl.entry][sl.cmd] = Result{Append: o.res, Err: o.err}
	}
	return results, nil
}

// writeGroup writes a group's batch, records it, and on failure takes the
// write path down or fails it as commit does; the error is the one to give
// the group's requests.
func (s *Store) writeGroup(a *applied, requests, events int, sync bool) error {
	start := time.Now()
	err := s.eng.Write(&a.batch, sync)
	took := time.Since(start)
	s.stats.record(requests, events, a.batch.Size(), took)
	if o := s.opts.Observer; o != nil {
		o.ObserveCommit(requests, events, a.batch.Size(), took, err)
	}
	if err == nil {
		return nil
	}
	// Nothing of the group is published. The outcome of the write is
	// unknown (a failed sync may leave it on disk), so no later write may
	// be made on top of a state that may be wrong.
	err = s.engineErr("write batch", err)
	switch {
	case errors.Is(err, ErrClosed):
	case errors.Is(err, engine.ErrNoSpace):
		// The write path goes down until space is free; the state of the
		// topics this batch touched is re-read before writes resume (see
		// space.go).
		err = noSpace(err)
		s.goDown(err, a)
	default:
		err = fmt.Errorf("%w: %w", ErrFailed, err)
		s.fail(err)
	}
	return err
}

// acquire makes the caller the committer, waiting for a commit in
// progress, as a leading appender does; releaseCommitter hands over.
func (s *Store) acquire() error {
	c := &s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.busy && !c.closed {
		c.idle.Wait()
	}
	if c.closed {
		return ErrClosed
	}
	c.busy = true
	return nil
}

// releaseCommitter ends the caller's turn as committer: requests queued
// meanwhile go to the writer goroutine, otherwise the write path is idle.
func (s *Store) releaseCommitter() {
	c := &s.c
	c.mu.Lock()
	if len(c.queue) > 0 {
		c.mu.Unlock()
		c.kick <- struct{}{}
		return
	}
	c.busy = false
	c.idle.Broadcast()
	c.mu.Unlock()
}

// loadAppliedIndex reads AppliedIndex at Open.
func (s *Store) loadAppliedIndex() error {
	index, err := s.readAppliedIndex()
	if err != nil {
		return err
	}
	s.appliedIndex.Store(index)
	return nil
}

// readAppliedIndex reads the applied index the engine holds (0: none).
func (s *Store) readAppliedIndex() (uint64, error) {
	v, err := s.eng.Get(appliedKey)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("store: read applied index: %w", err)
	case len(v) != 8:
		return 0, fmt.Errorf("%w: applied index", ErrCorrupted)
	}
	return binary.BigEndian.Uint64(v), nil
}
