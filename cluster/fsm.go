package cluster

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/goethe-log/goethe/store"
)

// fsm is the replicated state machine: the store, written only through
// ApplyCommitted and Restore.
type fsm struct {
	st     *store.Store
	log    hclog.Logger
	stop   chan struct{} // closed when the node shuts down: a blocked apply gives up
	failed atomic.Pointer[error]
	props  *proposals // completed as their entries are applied

	restores atomic.Uint64 // snapshots restored, for Status
}

var (
	_ raft.BatchingFSM = (*fsm)(nil)
	_ raft.FSM         = (*fsm)(nil)
)

// Apply is raft.FSM's single-entry form; raft calls ApplyBatch instead.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch decodes the committed entries and applies them with one
// ApplyCommitted, i.e. one engine batch. Each response is the entry's
// []store.Result, or an error for an entry that does not decode (every
// replica refuses it alike and applies nothing of it).
//
// An engine write that fails is retried until it succeeds or the node
// stops: a replica must not skip an entry, and nothing after it may be
// applied first. A full disk resumes by itself once space is freed; a
// failed store (store.ErrFailed) needs a restart, so the node reports it
// (Node.Err) and stops applying. Either way the entries stay in the log and
// are applied after a restart from the store's AppliedIndex on.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]store.CommittedEntry, len(logs))
	resp := make([]any, len(logs))
	for i, l := range logs {
		entries[i].Index = l.Index
		if l.Type != raft.LogCommand {
			continue // a configuration change: only its index is recorded
		}
		now, cmds, err := decodeEntry(l.Data)
		if err != nil {
			resp[i] = err
			continue
		}
		entries[i].Time, entries[i].Commands = now, cmds
	}
	results, err := f.applyRetrying(entries)
	for i := range logs {
		switch {
		case resp[i] != nil:
		case err != nil:
			resp[i] = err
		default:
			resp[i] = results[i]
		}
	}
	f.props.applied(logs, resp)
	return resp
}

func (f *fsm) applyRetrying(entries []store.CommittedEntry) ([][]store.Result, error) {
	backoff := 10 * time.Millisecond
	for {
		results, err := f.st.ApplyCommitted(entries)
		if err == nil {
			return results, nil
		}
		if errors.Is(err, store.ErrClosed) {
			return nil, fmt.Errorf("%w: %w", ErrClosed, err)
		}
		if errors.Is(err, store.ErrFailed) && f.failed.Load() == nil {
			f.failed.Store(&err)
			f.log.Error("the store failed; this node applies nothing more until restarted", "error", err)
		} else {
			f.log.Warn("applying committed entries failed; retrying", "error", err, "first_index", entries[0].Index)
		}
		select {
		case <-f.stop:
			return nil, fmt.Errorf("%w: %w", ErrClosed, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Snapshot takes a consistent view of the store; raft streams it (Persist)
// while applies go on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	sn, err := f.st.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot: %w", err)
	}
	return &fsmSnapshot{sn: sn}, nil
}

// Restore replaces the store's content with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.st.Restore(rc); err != nil {
		return fmt.Errorf("cluster: restore: %w", err)
	}
	f.restores.Add(1)
	return nil
}

type fsmSnapshot struct{ sn *store.Snapshot }

// Persist streams the view to the sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.sn.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("cluster: persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("cluster: persist snapshot: %w", err)
	}
	return nil
}

// Release closes the view.
func (s *fsmSnapshot) Release() { _ = s.sn.Close() }
