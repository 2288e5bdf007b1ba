package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// freePort returns a loopback address whose port was free a moment ago.
func freePort(t *testing.T) string { return freePorts(t, 1)[0] }

// freePorts returns n distinct loopback addresses with ports free a moment
// ago (all held open before any is closed).
func freePorts(t *testing.T, n int) []string {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// threeNodes are the flags of a three-member cluster on loopback.
type threeNodes struct {
	ids, raft, clients []string
	dirs               []string
}

func newThreeNodes(t *testing.T) *threeNodes {
	c := &threeNodes{}
	ports := freePorts(t, 6)
	for i := range 3 {
		c.ids = append(c.ids, fmt.Sprintf("n%d", i+1))
		c.raft = append(c.raft, ports[2*i])
		c.clients = append(c.clients, ports[2*i+1])
		c.dirs = append(c.dirs, t.TempDir())
	}
	return c
}

func (c *threeNodes) args(i int, engine string) []string {
	var peers, clients []string
	for j := range c.ids {
		peers = append(peers, c.ids[j]+"="+c.raft[j])
		clients = append(clients, c.ids[j]+"="+c.clients[j])
	}
	return []string{"--engine", engine, "--data-dir", c.dirs[i], "--listen", c.clients[i],
		"--node-id", c.ids[i], "--raft-listen", c.raft[i],
		"--peers", strings.Join(peers, ","), "--peer-clients", strings.Join(clients, ",")}
}

func healthOf(t *testing.T, addr string) healthpb.HealthCheckResponse_ServingStatus {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: server.ServiceName})
	require.NoError(t, err)
	return r.GetStatus()
}

// TestClusterOfThree runs three members of a cluster in this process, as
// the goethe binary does (run), on loopback: writes through any member,
// followers included, are acknowledged and readable on all three, in the
// same order under the same ids; a member that knows no leader says so in
// its health and refuses writes with NOT_LEADER.
func TestClusterOfThree(t *testing.T) {
	const engine = "leveldb"
	c := newThreeNodes(t)
	ctx := context.Background()

	// One member alone has no quorum: no leader, NOT_SERVING, NOT_LEADER.
	n1 := launch(t, c.args(0, engine)...)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, healthOf(t, n1.addr))
	c1, err := client.Dial(n1.addr)
	require.NoError(t, err)
	defer c1.Close()
	_, err = c1.Produce(ctx, "t", []client.EventData{{Payload: []byte("lost")}})
	require.ErrorIs(t, err, client.ErrUnavailable)
	require.True(t, client.IsReason(err, goethev1.ReasonNotLeader), "%v", err)

	nodes := []*instance{n1, launch(t, c.args(1, engine)...), launch(t, c.args(2, engine)...)}
	clients := []*client.Client{c1}
	for _, in := range nodes[1:] {
		cl, err := client.Dial(in.addr)
		require.NoError(t, err)
		defer cl.Close()
		clients = append(clients, cl)
	}
	require.Eventually(t, func() bool {
		for _, in := range nodes {
			if healthOf(t, in.addr) != healthpb.HealthCheckResponse_SERVING {
				return false
			}
		}
		return true
	}, 15*time.Second, 20*time.Millisecond, "every member knows the leader")

	// A follow stream on each member, opened before the writes: woken by
	// the applies, on followers too.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var subs []*client.Subscription
	for _, cl := range clients {
		sub, err := cl.Subscribe(sctx, "t", client.ConsumeOptions{Follow: true})
		require.NoError(t, err)
		defer sub.Close()
		subs = append(subs, sub)
	}

	// Through every member, so through at least two followers: each
	// write is acknowledged, and readable at once on the member that took
	// it (read-your-writes).
	var want []client.ProduceResult
	for round := range 3 {
		for i, cl := range clients {
			payload := fmt.Sprintf("r%d-n%d", round, i+1)
			res, err := cl.Produce(ctx, "t", []client.EventData{{Payload: []byte(payload)}, {Payload: []byte(payload + "b")}})
			require.NoError(t, err, "through %s", c.ids[i])
			require.Equal(t, 2, res.Count)
			require.NotZero(t, res.RaftIndex)
			if len(want) > 0 {
				require.Greater(t, res.RaftIndex, want[len(want)-1].RaftIndex)
			}
			want = append(want, res)
			info, err := cl.Topic(ctx, "t")
			require.NoError(t, err)
			require.Equal(t, res.LastSeq(), info.LastSeq, "read-your-writes on %s", c.ids[i])
			// On another member, with the write's Raft index: at once.
			other := clients[(i+1)%3]
			info, err = other.Topic(ctx, "t", client.MinRaftIndex(res.RaftIndex))
			require.NoError(t, err)
			require.GreaterOrEqual(t, info.LastSeq, res.LastSeq(), "read-your-writes on %s", c.ids[(i+1)%3])
			var last client.Event
			for ev, err := range clients[(i+2)%3].Consume(ctx, "t", client.ConsumeOptions{MinRaftIndex: res.RaftIndex}) {
				require.NoError(t, err)
				last = ev
			}
			require.GreaterOrEqual(t, last.Seq, res.LastSeq(), "read-your-writes on %s", c.ids[(i+2)%3])
		}
	}
	require.NoError(t, clients[1].CommitCursor(ctx, "t", "c", want[0].FirstID), "a cursor through n2")

	// Every member holds the same events, in the same order, under the
	// same ids and seqs.
	var ids []uint64
	for _, r := range want {
		ids = append(ids, r.ID(0), r.ID(1))
	}
	for i, sub := range subs {
		var got []uint64
		for range ids {
			ev, err := sub.Next()
			require.NoError(t, err, "follow stream on %s", c.ids[i])
			got = append(got, ev.ID)
			require.Equal(t, uint64(len(got)), ev.Seq)
		}
		require.Equal(t, ids, got, "events on %s", c.ids[i])
	}
	for i, cl := range clients {
		var got []uint64
		for ev, err := range cl.Consume(ctx, "t", client.ConsumeOptions{}) {
			require.NoError(t, err)
			got = append(got, ev.ID)
		}
		require.Equal(t, ids, got, "a read on %s", c.ids[i])
		require.Eventually(t, func() bool {
			cur, err := cl.GetCursor(ctx, "t", "c")
			return err == nil && cur.ID == want[0].FirstID
		}, 5*time.Second, 10*time.Millisecond, "the cursor on %s", c.ids[i])
	}

	// Every member describes the cluster: itself, the same leader, the
	// three members with their client addresses, applied what it holds.
	var leaders []string
	for i, cl := range clients {
		st, err := cl.ClusterStatus(ctx)
		require.NoError(t, err)
		require.True(t, st.Clustered)
		require.Equal(t, c.ids[i], st.NodeID)
		require.NotZero(t, st.Term)
		require.GreaterOrEqual(t, st.CommitIndex, st.AppliedIndex)
		require.NotZero(t, st.AppliedIndex)
		leaders = append(leaders, st.LeaderID)
		want := make([]client.ClusterMember, 3)
		for j := range want {
			want[j] = client.ClusterMember{ID: c.ids[j], RaftAddress: c.raft[j], ClientAddress: c.clients[j]}
		}
		require.Equal(t, want, st.Members)
	}
	require.Equal(t, []string{leaders[0], leaders[0], leaders[0]}, leaders)
	require.Contains(t, c.ids, leaders[0])

	// Down to one member again: no leader, writes refused, reads go on.
	require.Equal(t, 0, nodes[1].stop(t))
	require.Equal(t, 0, nodes[2].stop(t))
	require.Eventually(t, func() bool {
		return healthOf(t, n1.addr) == healthpb.HealthCheckResponse_NOT_SERVING
	}, 10*time.Second, 20*time.Millisecond)
	_, err = c1.Produce(ctx, "t", []client.EventData{{Payload: []byte("x")}})
	require.ErrorIs(t, err, client.ErrUnavailable)
	require.True(t, client.IsReason(err, goethev1.ReasonNotLeader) || client.IsReason(err, goethev1.ReasonOutcomeUnknown), "%v", err)
	info, err := c1.Topic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, uint64(len(ids)), info.LastSeq)
}

// A fourth member started with --join (no --peers, no --peer-clients)
// waits; once added through a follower with its addresses, it holds every
// event, every member lists it with its client address, and writes made on
// it are forwarded to the leader.
func TestClusterJoin(t *testing.T) {
	const engine = "leveldb"
	c := newThreeNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var clients []*client.Client
	for i := range 3 {
		in := launch(t, c.args(i, engine)...)
		cl, err := client.Dial(in.addr)
		require.NoError(t, err)
		defer cl.Close()
		clients = append(clients, cl)
	}
	var last client.ProduceResult
	require.Eventually(t, func() bool {
		var err error
		last, err = clients[0].Produce(ctx, "t", []client.EventData{{Payload: []byte("before")}})
		return err == nil
	}, 15*time.Second, 20*time.Millisecond, "a leader is elected")

	ports := freePorts(t, 2)
	n4 := launch(t, "--engine", engine, "--data-dir", t.TempDir(), "--listen", ports[1],
		"--node-id", "n4", "--raft-listen", ports[0], "--join")
	c4, err := client.Dial(n4.addr)
	require.NoError(t, err)
	defer c4.Close()
	st, err := c4.ClusterStatus(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Members, "a joining member is in no configuration yet")

	var follower *client.Client
	for _, cl := range clients {
		if st, err := cl.ClusterStatus(ctx); err == nil && st.LeaderID != st.NodeID {
			follower = cl
			break
		}
	}
	require.NotNil(t, follower)
	members, err := follower.AddClusterMember(ctx, client.ClusterMember{ID: "n4", RaftAddress: ports[0], ClientAddress: ports[1]})
	require.NoError(t, err)
	require.Len(t, members, 4)
	ti, err := c4.Topic(ctx, "t", client.MinRaftIndex(last.RaftIndex))
	require.NoError(t, err)
	require.Equal(t, uint64(1), ti.Count)
	r, err := c4.Produce(ctx, "t", []client.EventData{{Payload: []byte("through n4")}})
	require.NoError(t, err)
	for i, cl := range append(clients, c4) {
		require.Eventually(t, func() bool {
			st, err := cl.ClusterStatus(ctx)
			return err == nil && len(st.Members) == 4 && st.Members[3] ==
				client.ClusterMember{ID: "n4", RaftAddress: ports[0], ClientAddress: ports[1]}
		}, 10*time.Second, 20*time.Millisecond, "member %d lists n4", i)
		ti, err := cl.Topic(ctx, "t", client.MinRaftIndex(r.RaftIndex))
		require.NoError(t, err)
		require.Equal(t, uint64(2), ti.Count)
	}
}

// A data folder is served in the mode that wrote it: a single-node log
// does not become a cluster member (its events are in no Raft log), and a
// member's folder is not served alone.
func TestClusterModeOfDataFolder(t *testing.T) {
	single := t.TempDir()
	in := launch(t, "--data-dir", single, "--listen", "127.0.0.1:0")
	cl, err := client.Dial(in.addr)
	require.NoError(t, err)
	res, err := cl.Produce(context.Background(), "t", []client.EventData{{Payload: []byte("x")}})
	require.NoError(t, err)
	require.Zero(t, res.RaftIndex, "no Raft index on a single node")
	info, err := cl.Topic(context.Background(), "t", client.MinRaftIndex(7))
	require.NoError(t, err, "a single node ignores a minimum Raft index")
	require.Equal(t, uint64(1), info.LastSeq)
	require.NoError(t, cl.Close())
	require.Equal(t, 0, in.stop(t))
	raft := freePort(t)
	runFails(t, "holds a single-node log: a cluster member starts from an empty --data-dir",
		"--data-dir", single, "--listen", "127.0.0.1:0", "--node-id", "n1", "--raft-listen", raft, "--peers", "n1="+raft)

	member := t.TempDir()
	in = launch(t, "--data-dir", member, "--listen", "127.0.0.1:0", "--node-id", "n1", "--raft-listen", raft, "--peers", "n1="+raft)
	require.Equal(t, 0, in.stop(t))
	runFails(t, "belongs to a cluster member", "--data-dir", member, "--listen", "127.0.0.1:0")
	// Restarted as the member it is, it serves again.
	in = launch(t, "--data-dir", member, "--listen", "127.0.0.1:0", "--node-id", "n1", "--raft-listen", raft, "--peers", "n1="+raft)
	require.Equal(t, 0, in.stop(t))
}

func TestParseClusterConfig(t *testing.T) {
	c, err := parseConfig([]string{"--node-id", "n1", "--raft-listen", "127.0.0.1:7521",
		"--peers", "n1=127.0.0.1:7521,n2=127.0.0.1:7522", "--peer-clients", "n1=127.0.0.1:7420,n2=127.0.0.1:7421"}, env(), &strings.Builder{})
	require.NoError(t, err)
	require.True(t, c.cluster.enabled())
	require.Equal(t, []string{"n1", "n2"}, c.cluster.Peers.ids)
	require.Equal(t, "127.0.0.1:7421", c.cluster.PeerClients.addrs["n2"])

	raftTLS := []string{"--raft-tls-cert", "c", "--raft-tls-key", "k", "--raft-tls-ca", "ca"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--raft-listen", "127.0.0.1:1"}, "need --node-id"},
		{[]string{"--node-id", "n1"}, "--node-id needs --raft-listen"},
		{[]string{"--node-id", "n1", "--raft-listen", "a:1", "--peers", "n2=a:2"}, "--peers must name this member"},
		{[]string{"--node-id", "n1", "--raft-listen", "a:1", "--peers", "n1=a:1,n2=a:2"}, "n2 is missing"},
		{[]string{"--node-id", "n1", "--raft-listen", "a:1", "--peers", "n1=a:1,n1=a:2"}, "given twice"},
		{[]string{"--node-id", "n1", "--raft-listen", "a:1", "--peers", "n1"}, "want id=host:port"},
		{[]string{"--node-id", "n1", "--raft-listen", "a:1", "--auth-file", "x.json"}, "need --raft-tls-cert, --raft-tls-key and --raft-tls-ca"},
		{[]string{"--node-id", "n1", "--raft-listen", "a:1", "--tls-cert", "c", "--tls-key", "k"}, "anyone who reaches the Raft port"},
		{[]string{"--node-id", "n1", "--raft-listen", "a:1", "--raft-tls-cert", "c"}, "go together"},
		{[]string{"--raft-tls-cert", "c", "--raft-tls-key", "k", "--raft-tls-ca", "ca"}, "need --node-id"},
		{[]string{"--peer-token-file", "t"}, "need --node-id"},
		{append(raftTLS, "--node-id", "n1", "--raft-listen", "a:1", "--auth-file", "x.json"), "needs --peer-token-file"},
		{append(raftTLS, "--node-id", "n1", "--raft-listen", "a:1", "--peers", "n1=a:1,n2=a:2", "--peer-clients", "n2=10.0.0.2:7420",
			"--auth-file", "x.json", "--peer-token-file", "t"), "in plaintext to 10.0.0.2:7420"},
		{[]string{"--join"}, "need --node-id"},
		{[]string{"--node-id", "n|1", "--raft-listen", "a:1"}, "an id holds no"},
	} {
		_, err := parseConfig(tc.args, env(), &strings.Builder{})
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
	// Loopback members may take the peer token in plaintext.
	_, err = parseConfig(append(raftTLS, "--node-id", "n1", "--raft-listen", "127.0.0.1:1", "--peers", "n1=127.0.0.1:1,n2=127.0.0.1:2",
		"--peer-clients", "n2=127.0.0.1:7422", "--auth-file", "x.json", "--peer-token-file", "t"), env(), &strings.Builder{})
	require.NoError(t, err)
}
