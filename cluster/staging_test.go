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

// A staged batch is readable before it is stored, from raft-wal after, and
// gone from memory either way once StoreLogs returns.
func TestStagingLog(t *testing.T) {
	w, err := wal.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	s := &stagingLog{WAL: w}
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
}
