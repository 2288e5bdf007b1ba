package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/goethe-log/goethe/client"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// Members that do not forward (LogConfig.NoForward) refuse writes on
// followers with NOT_LEADER and the leader's client address: a Client
// made by Dial retries such a Produce once against the leader, where it is
// stored once; a Client made by New over its own connection does not, and
// sees the hint; a CommitCursor is not retried.
func TestClientFollowsLeaderHint(t *testing.T) {
	s := newServedMembers(t, true)
	leader := s.waitLeader(10 * time.Second)
	follower := (leader + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leaderAddr := s.addrs[s.peers[leader].ID]

	r, err := s.dial(follower).Produce(ctx, "t", []client.EventData{{Payload: []byte("x")}})
	require.NoError(t, err, "retried at the leader")
	require.Equal(t, uint64(1), r.FirstSeq)

	conn, err := grpc.NewClient(s.addrs[s.peers[follower].ID], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	_, err = client.New(conn).Produce(ctx, "t", []client.EventData{{Payload: []byte("y")}})
	require.ErrorIs(t, err, client.ErrUnavailable)
	require.True(t, client.IsReason(err, goethev1.ReasonNotLeader), "%v", err)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, leaderAddr, ce.Metadata()["leader_address"])
	require.Equal(t, s.peers[leader].ID, ce.Metadata()["leader_id"])

	err = s.dial(follower).CommitCursor(ctx, "t", "c", r.FirstID)
	require.True(t, client.IsReason(err, goethev1.ReasonNotLeader), "%v", err)

	s.waitConverged(r.RaftIndex)
	for _, n := range s.running() {
		got := readTopic(t, n.st, "t")
		require.Len(t, got, 1, "stored once")
		require.Equal(t, "x", string(got[0].Payload))
	}
}
