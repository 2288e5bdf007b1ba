package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// stagingLog is the node's Raft log: raft-wal, plus the batch of entries
// the leader is writing, readable from memory while its write and fsync
// are under way.
//
// It implements StageLogs, the optional interface (StagingLogStore) of
// Goethe's fork of hashicorp/raft (third_party/hashicorp-raft): a leader
// whose log can stage tells its followers of new entries before it writes
// them, so that its own write and fsync overlap with the followers', and
// counts itself toward their commit only once its write is durable. The
// fork's dispatchStaged gives the safety argument; in short, a commit
// still needs a majority of durable copies, and the leader applies an
// entry only after its own copy is durable, so the store's AppliedIndex
// never passes the local log, also after a kill -9 during the write. Built
// against upstream hashicorp/raft (a library user's build ignores
// Goethe's replace directive), StageLogs is never called and the log is
// raft-wal alone.
//
// Memory: at most one batch is staged (raft stages the entries of one
// dispatch, at most MaxAppendEntries, then stores them), and StoreLogs
// drops it whether it succeeds or fails. The entries are the leader's own
// *raft.Log values, not copies.
type stagingLog struct {
	*wal.WAL // also the stable store; FirstIndex, LastIndex: durable entries only

	mu     sync.RWMutex
	staged []*raft.Log // ascending, contiguous indexes; nil when none
}

var _ raft.LogStore = (*stagingLog)(nil)

// StageLogs makes logs readable by GetLog until the next StoreLogs
// returns. Only raft's leader goroutine calls it, right before StoreLogs.
func (s *stagingLog) StageLogs(logs []*raft.Log) {
	s.mu.Lock()
	s.staged = logs
	s.mu.Unlock()
}

// StoreLogs writes logs to raft-wal (durably) and then drops the staged
// batch: a reader that misses it in memory finds it on disk, or, if the
// write failed, finds nothing, as on a log that never had it.
func (s *stagingLog) StoreLogs(logs []*raft.Log) error {
	err := s.WAL.StoreLogs(logs)
	s.mu.Lock()
	s.staged = nil
	s.mu.Unlock()
	return err
}

// StoreLog is StoreLogs of one entry (raft-wal's StoreLog would bypass the
// drop of the staged batch).
func (s *stagingLog) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// GetLog reads entry index from the staged batch or from raft-wal.
func (s *stagingLog) GetLog(index uint64, out *raft.Log) error {
	s.mu.RLock()
	if st := s.staged; len(st) > 0 && index >= st[0].Index && index <= st[len(st)-1].Index {
		*out = *st[index-st[0].Index]
		s.mu.RUnlock()
		return nil
	}
	s.mu.RUnlock()
	return s.WAL.GetLog(index, out)
}
