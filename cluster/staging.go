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
// It also keeps the last entries stored in memory, at most recentEntries
// of them and recentBytes of data: a follower applies the entries it has
// just stored, and a leader's replicator reads the entry before the ones
// it sends, for its term. Without them each is a read of the whole entry
// back from raft-wal (for a batch of 1,000 events of 100 B, a 100 KB
// allocation, copy and checksum). raft's LogCache does the same with no
// bound on bytes, and a Produce may be 64 MiB.
//
// Memory: at most one batch is staged (raft stages the entries of one
// dispatch, at most MaxAppendEntries, then stores them), and StoreLogs
// drops it whether it succeeds or fails; recentBytes bounds the rest.
// Both hold the entries raft handed in, not copies.
type stagingLog struct {
	*wal.WAL // also the stable store; FirstIndex, LastIndex: durable entries only

	mu          sync.RWMutex
	staged      []*raft.Log // ascending, contiguous indexes; nil when none
	recent      []*raft.Log // the last entries stored: ascending, contiguous
	recentBytes int         // their data's size
}

// Bounds of stagingLog's entries kept after their write.
const (
	recentEntries = 8
	recentBytes   = 1 << 20
)

var _ raft.LogStore = (*stagingLog)(nil)

func newStagingLog(w *wal.WAL) *stagingLog { return &stagingLog{WAL: w} }

// StageLogs makes logs readable by GetLog until the next StoreLogs
// returns. Only raft's leader goroutine calls it, right before StoreLogs.
func (s *stagingLog) StageLogs(logs []*raft.Log) {
	s.mu.Lock()
	s.staged = logs
	s.mu.Unlock()
}

// StoreLogs writes logs to raft-wal (durably), keeps them as the recent
// entries if it succeeded, and drops the staged batch: a reader that
// misses it in memory finds it on disk or among the recent entries, or, if
// the write failed, finds nothing, as on a log that never had it.
func (s *stagingLog) StoreLogs(logs []*raft.Log) error {
	err := s.WAL.StoreLogs(logs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.staged = nil
	if err != nil || len(logs) == 0 {
		return err
	}
	if n := len(s.recent); n > 0 && s.recent[n-1].Index+1 != logs[0].Index {
		s.dropRecent()
	}
	for _, l := range logs {
		s.recent = append(s.recent, l)
		s.recentBytes += len(l.Data)
	}
	for len(s.recent) > 0 && (len(s.recent) > recentEntries || s.recentBytes > recentBytes) {
		s.recentBytes -= len(s.recent[0].Data)
		s.recent[0] = nil
		s.recent = s.recent[1:]
	}
	return nil
}

// dropRecent forgets the recent entries; s.mu is held.
func (s *stagingLog) dropRecent() {
	clear(s.recent)
	s.recent, s.recentBytes = s.recent[:0], 0
}

// StoreLog is StoreLogs of one entry (raft-wal's StoreLog would bypass
// both the drop of the staged batch and the recent entries).
func (s *stagingLog) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// GetLog reads entry index from the staged batch, the recent entries or
// raft-wal.
func (s *stagingLog) GetLog(index uint64, out *raft.Log) error {
	s.mu.RLock()
	for _, batch := range [2][]*raft.Log{s.staged, s.recent} {
		if len(batch) > 0 && index >= batch[0].Index && index <= batch[len(batch)-1].Index {
			*out = *batch[index-batch[0].Index]
			s.mu.RUnlock()
			return nil
		}
	}
	s.mu.RUnlock()
	return s.WAL.GetLog(index, out)
}

// DeleteRange deletes entries min to max from raft-wal, forgetting the
// recent entries first (a follower truncating a conflicting suffix stores
// other entries under the same indexes next).
func (s *stagingLog) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	s.dropRecent()
	s.mu.Unlock()
	return s.WAL.DeleteRange(min, max)
}
