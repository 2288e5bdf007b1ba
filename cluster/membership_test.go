package cluster_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// newServedMembers is a served cluster whose members learn each other's
// client addresses from the Raft configuration only (Config.ClientAddr
// and Peer.ClientAddr; no LogConfig.ClientAddrs), as members added later
// must.
func newServedMembers(t *testing.T, noForward bool) *served {
	s := &served{addrs: map[string]string{}, noForward: noForward}
	var lis []net.Listener
	for i := range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lis = append(lis, l)
		s.addrs[fmt.Sprintf("n%d", i+1)] = l.Addr().String()
	}
	s.testCluster = newCluster(t, "leveldb", 3, s.withClientAddrs)
	for i := range 3 {
		s.serve(i, lis[i])
	}
	return s
}

// withClientAddrs is a tweak that advertises each node's client address
// and bootstraps with the peers'.
func (s *served) withClientAddrs(cfg *cluster.Config) {
	// Snapshots when the test asks, and a log they truncate (see
	// TestRestartedFollowerCatchesUp).
	cfg.TrailingLogs, cfg.SnapshotThreshold, cfg.SegmentSize = 4, 1<<30, 2048
	cfg.ClientAddr = s.addrs[cfg.ID]
	cfg.Peers = slices.Clone(cfg.Peers)
	for i := range cfg.Peers {
		cfg.Peers[i].ClientAddr = s.addrs[cfg.Peers[i].ID]
	}
}

// serve serves node i's Log on lis until the test ends.
func (s *served) serve(i int, lis net.Listener) {
	t := s.t.(*testing.T)
	lg, err := cluster.NewLog(cluster.LogConfig{Node: s.node(i), Store: s.nodes[i].st, NoForward: s.noForward})
	require.NoError(t, err)
	srv, err := server.New(lg, server.Options{})
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	s.logs = append(s.logs, lg)
	s.servers = append(s.servers, srv)
	t.Cleanup(func() {
		require.NoError(t, srv.Stop(context.Background()))
		require.NoError(t, lg.Close())
	})
}

func memberIDs(ms []client.ClusterMember) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// Membership changes through the API: a fourth member, started without
// peers, is added through a follower (forwarded to the leader); every
// member's status lists it with its client address (from the Raft
// configuration: no member was given a static map), it receives every
// event (from a snapshot: the leader's log was truncated before), and
// writes made on it are forwarded. Then a follower is removed
// and the rest keep working, and the leader is removed: it steps down and
// the others elect a new leader that takes writes.
func TestMembershipChanges(t *testing.T) {
	s := newServedMembers(t, false)
	leader := s.waitLeader(10 * time.Second)
	follower := (leader + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 40 {
		_, err := s.dial(i%3).Produce(ctx, "t", []client.EventData{{Payload: fmt.Appendf(nil, "e%d", i)}})
		require.NoError(t, err)
	}
	require.NoError(t, s.node(leader).Snapshot())
	require.Greater(t, s.node(leader).Status().FirstIndex, uint64(1), "the leader's log is truncated")

	// Add n4.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addrs["n4"] = lis.Addr().String()
	s.peers = append(s.peers, cluster.Peer{ID: "n4", Addr: freeAddr(t)})
	s.nodes = append(s.nodes, &testNode{dir: t.TempDir(), join: true})
	s.start(3)
	s.serve(3, lis)
	members, err := s.dial(follower).AddClusterMember(ctx, client.ClusterMember{ID: "n4", RaftAddress: s.peers[3].Addr,
		ClientAddress: s.addrs["n4"]})
	require.NoError(t, err)
	require.Equal(t, []string{"n1", "n2", "n3", "n4"}, memberIDs(members))
	for i := range 4 {
		require.Eventually(t, func() bool {
			st, err := s.dial(i).ClusterStatus(ctx)
			if err != nil || len(st.Members) != 4 {
				return false
			}
			for _, m := range st.Members {
				if m.ClientAddress != s.addrs[m.ID] || m.RaftAddress != s.peers[slices.IndexFunc(s.peers, func(p cluster.Peer) bool { return p.ID == m.ID })].Addr {
					return false
				}
			}
			return true
		}, 10*time.Second, 20*time.Millisecond, "member %d lists n4 with its addresses", i)
	}
	r, err := s.dial(3).Produce(ctx, "t", []client.EventData{{Payload: []byte("via n4")}})
	require.NoError(t, err, "a write on the new member is forwarded to the leader")
	s.waitConverged(r.RaftIndex)
	require.Len(t, readTopic(t, s.nodes[3].st, "t"), 41)
	require.Equal(t, uint64(1), s.node(3).Status().SnapshotsRestored)

	// Remove a follower other than n4, through n4.
	gone := (leader + 2) % 3
	members, err = s.dial(3).RemoveClusterMember(ctx, s.peers[gone].ID)
	require.NoError(t, err)
	require.NotContains(t, memberIDs(members), s.peers[gone].ID)
	require.Len(t, members, 3)
	s.stop(gone)
	_, err = s.dial(follower).Produce(ctx, "t", []client.EventData{{Payload: []byte("after removal")}})
	require.NoError(t, err)

	// A malformed member.
	_, err = s.dial(follower).AddClusterMember(ctx, client.ClusterMember{ID: "n5", RaftAddress: "nowhere", ClientAddress: s.addrs["n4"]})
	require.ErrorIs(t, err, client.ErrInvalidArgument)

	// An id that is no member.
	_, err = s.dial(leader).RemoveClusterMember(ctx, "n9")
	require.ErrorIs(t, err, client.ErrNotFound)
	require.True(t, client.IsReason(err, goethev1.ReasonMemberNotFound))

	// Remove the leader, through itself.
	members, err = s.dial(leader).RemoveClusterMember(ctx, s.peers[leader].ID)
	require.NoError(t, err)
	require.NotContains(t, memberIDs(members), s.peers[leader].ID)
	s.stop(leader)
	next := s.waitLeaderAmong([]int{follower, 3}, 10*time.Second)
	r, err = s.dial(follower).Produce(ctx, "t", []client.EventData{{Payload: []byte("after the leader left")}})
	require.NoError(t, err)
	s.waitConverged(r.RaftIndex)
	st, err := s.dial(next).ClusterStatus(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{s.peers[follower].ID, "n4"}, memberIDs(st.Members))
	require.Len(t, readTopic(t, s.nodes[3].st, "t"), 43)
}
