package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// GetTopic's linearizable mode: a follower cut off from Raft's traffic
// (its gRPC still reaches the leader) serves a stale answer to a plain
// GetTopic, but a linearizable one never does: it waits for what the
// leader had committed (and fails when the call's deadline comes first, or
// the follower has lost the leader); once the cut heals it answers with
// the write. On the leader and on a follower that keeps up, a
// linearizable GetTopic sees a write acknowledged just before.
func TestLinearizableGetTopic(t *testing.T) {
	net := newFaultNet(1)
	s := newServedWith(t, "leveldb", withFaults(t, net, nil))
	leader := s.waitLeader(10 * time.Second)
	follower := (leader + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lc, fc := s.dial(leader), s.dial(follower)

	for i := range 5 {
		_, err := s.dial(i%3).Produce(ctx, "t", []client.EventData{{Payload: []byte("x")}})
		require.NoError(t, err)
		for _, c := range []*client.Client{lc, fc} {
			ti, err := c.Topic(ctx, "t", client.Linearizable())
			require.NoError(t, err)
			require.Equal(t, uint64(i+1), ti.Count)
		}
	}

	net.isolate(s.peers[follower].Addr)
	_, err := lc.Produce(ctx, "t", []client.EventData{{Payload: []byte("while cut")}})
	require.NoError(t, err)
	stale, err := fc.Topic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, uint64(5), stale.Count, "a plain read on the cut follower is stale")
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	ti, err := fc.Topic(short, "t", client.Linearizable())
	cancelShort()
	require.Error(t, err, "a linearizable read on the cut follower answered %+v", ti)

	net.heal()
	require.Eventually(t, func() bool {
		ti, err := fc.Topic(ctx, "t", client.Linearizable())
		return err == nil && ti.Count == 6
	}, 10*time.Second, 20*time.Millisecond)

	// A member cut off from the others entirely (the old leader, in a
	// minority) refuses linearizable reads once it cannot confirm its
	// leadership: never an answer that misses the majority's writes.
	net.isolate(s.peers[leader].Addr)
	var others []int
	for i := range 3 {
		if i != leader {
			others = append(others, i)
		}
	}
	next := s.waitLeaderAmong(others, 10*time.Second)
	_, err = s.dial(next).Produce(ctx, "t", []client.EventData{{Payload: []byte("majority")}})
	require.NoError(t, err)
	ti, err = lc.Topic(ctx, "t", client.Linearizable())
	require.Error(t, err, "the old leader answered a linearizable read: %+v", ti)
	require.True(t, client.IsReason(err, goethev1.ReasonNotLeader), "%v", err)
}
