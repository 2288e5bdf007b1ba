package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/store"
)

// A leader that hands over before a planned stop leaves another leader in
// place, with every acknowledged write; a follower's HandOver does nothing.
func TestHandOver(t *testing.T) {
	c := newCluster(t, "leveldb", 3, nil)
	li := c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, idx, err := c.node(li).Append(ctx, "handover", evs("before"), store.ExpectAny)
	require.NoError(t, err)

	follower := (li + 1) % 3
	require.NoError(t, c.node(follower).HandOver(ctx))
	require.True(t, c.node(li).IsLeader(), "a follower's HandOver changed the leader")

	require.NoError(t, c.node(li).HandOver(ctx))
	require.False(t, c.node(li).IsLeader())
	others := []int{(li + 1) % 3, (li + 2) % 3}
	next := c.waitLeaderAmong(others, 5*time.Second)
	c.stop(li)
	_, idx2, err := c.node(next).Append(ctx, "handover", evs("after"), store.ExpectAny)
	require.NoError(t, err)
	require.Greater(t, idx2, idx)
	c.waitConverged(idx2)
	for _, n := range c.running() {
		got := readTopic(t, n.st, "handover")
		require.Len(t, got, 2)
		require.Equal(t, "before", string(got[0].Payload))
		require.Equal(t, "after", string(got[1].Payload))
	}
}
