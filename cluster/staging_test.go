package cluster

import (
	"testing"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/stretchr/testify/require"
)

func entries(first, n uint64) []*raft.Log {
	logs := make([]*raft.Log, n)
	for i := range logs {
		idx := first + uint64(i)
		logs[i] = &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: []byte{byte(idx)}}
	}
	return logs
}

// A staged batch is readable before it is stored, from raft-wal (or the
// recent entries) after, and gone from the staged batch either way once
// StoreLogs returns.
func TestStagingLog(t *testing.T) {
	w, err := wal.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	s := newStagingLog(w)
	require.NoError(t, s.StoreLogs(entries(1, 2)))

	batch := entries(3, 3)
	s.StageLogs(batch)
	var l raft.Log
	for _, want := range batch {
		require.NoError(t, s.GetLog(want.Index, &l))
		require.Equal(t, *want, l)
	}
	require.NoError(t, s.GetLog(2, &l), "stored entries stay readable while a batch is staged")
	last, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(2), last, "LastIndex counts durable entries only")

	require.NoError(t, s.StoreLogs(batch))
	require.Nil(t, s.staged)
	require.NoError(t, s.GetLog(5, &l))
	require.Equal(t, []byte{5}, l.Data)

	// A write that fails (raft-wal refuses a gap) drops its staged batch:
	// the entries are then nowhere, as on a log that never had them.
	gap := entries(7, 2)
	s.StageLogs(gap)
	require.NoError(t, s.GetLog(7, &l))
	require.Error(t, s.StoreLogs(gap))
	require.Nil(t, s.staged)
	require.ErrorIs(t, s.GetLog(7, &l), raft.ErrLogNotFound)

	// A follower truncating a conflicting suffix: the cache must not
	// answer for the deleted entries.
	require.NoError(t, s.DeleteRange(4, 5))
	require.ErrorIs(t, s.GetLog(5, &l), raft.ErrLogNotFound)
	other := entries(4, 1)
	other[0].Term, other[0].Data = 2, []byte("new")
	require.NoError(t, s.StoreLogs(other))
	require.NoError(t, s.GetLog(4, &l))
	require.Equal(t, *other[0], l)

	// The entries kept after their write stay within their bounds, and
	// the older ones are read back from raft-wal.
	for i := uint64(5); i < 25; i++ {
		e := entries(i, 1)
		e[0].Data = make([]byte, recentBytes/4)
		require.NoError(t, s.StoreLogs(e))
		require.LessOrEqual(t, len(s.recent), recentEntries)
		require.LessOrEqual(t, s.recentBytes, recentBytes)
	}
	require.Equal(t, uint64(24), s.recent[len(s.recent)-1].Index)
	require.NoError(t, s.GetLog(6, &l))
	require.Len(t, l.Data, recentBytes/4)
}
