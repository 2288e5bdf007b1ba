package cluster_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// served is a cluster whose members each serve a cluster.Log over gRPC on
// loopback, as cmd/goethe wires them.
type served struct {
	*testCluster
	logs    []*cluster.Log
	servers []*server.Server
	metrics []*server.Metrics
	addrs   map[string]string // member id → gRPC address

	noForward bool // LogConfig.NoForward of the Logs serve makes
}

func newServed(t testing.TB, engineName string) *served {
	return newServedWith(t, engineName, nil)
}

// newServedWith is newServed with a tweak of each node's configuration.
func newServedWith(t testing.TB, engineName string, tweak func(*cluster.Config)) *served {
	c := newCluster(t, engineName, 3, tweak)
	s := &served{testCluster: c, addrs: map[string]string{}}
	var lis []net.Listener
	for i := range c.peers {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lis = append(lis, l)
		s.addrs[c.peers[i].ID] = l.Addr().String()
	}
	for i := range c.peers {
		lg, err := cluster.NewLog(cluster.LogConfig{Node: c.node(i), Store: c.nodes[i].st, ClientAddrs: s.addrs})
		require.NoError(t, err)
		m := server.NewMetrics(server.MetricsOptions{Engine: engineName})
		srv, err := server.New(lg, server.Options{Metrics: m})
		require.NoError(t, err)
		s.metrics = append(s.metrics, m)
		go func() { _ = srv.Serve(lis[i]) }()
		s.logs = append(s.logs, lg)
		s.servers = append(s.servers, srv)
		t.Cleanup(func() {
			require.NoError(t, srv.Stop(context.Background()))
			require.NoError(t, lg.Close())
		})
	}
	return s
}

func (s *served) dial(i int) *client.Client {
	cl, err := client.Dial(s.addrs[s.peers[i].ID])
	require.NoError(s.t, err)
	s.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// A Producer (ProduceStream, many requests in flight) on a follower: its
// requests are forwarded in the order sent, acknowledged with their Raft
// index, and a read on the follower after the acknowledgment sees them
// (read-your-writes).
func TestLogProduceStreamThroughFollower(t *testing.T) {
	s := newServed(t, "pebble")
	leader := s.waitLeader(10 * time.Second)
	follower := (leader + 1) % 3
	ctx := context.Background()
	p, err := s.dial(follower).NewProducer(ctx)
	require.NoError(t, err)
	var futures []*client.Future
	for i := range 200 {
		f, err := p.Send(ctx, "t", []client.EventData{{Payload: fmt.Appendf(nil, "e%d", i)}})
		require.NoError(t, err)
		futures = append(futures, f)
	}
	var index uint64
	for i, f := range futures {
		r, err := f.Wait(ctx)
		require.NoError(t, err, "send %d", i)
		require.Equal(t, uint64(i+1), r.FirstSeq, "send %d in order", i)
		require.GreaterOrEqual(t, r.RaftIndex, index, "send %d: Raft indexes in order (merged sends share one)", i)
		require.NotZero(t, r.RaftIndex)
		index = r.RaftIndex
	}
	require.NoError(t, p.Close())
	page, err := s.logs[follower].Read("t", 0, 1000)
	require.NoError(t, err)
	require.Len(t, page.Events, 200, "read on the follower after the last ack")
	require.GreaterOrEqual(t, s.nodes[follower].st.AppliedIndex(), index)
	for i, e := range page.Events {
		require.Equal(t, fmt.Sprintf("e%d", i), string(e.Payload))
	}
}

// A write forwarded once is not forwarded again: a follower that receives
// one refuses it, naming the leader and its client address.
func TestLogForwardsOneHop(t *testing.T) {
	s := newServed(t, "leveldb")
	leader := s.waitLeader(10 * time.Second)
	follower := (leader + 1) % 3
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(cluster.ForwardedKey, "1"))
	_, err := s.logs[follower].Append(ctx, "t", evs("x"), store.ExpectAny)
	var nle *cluster.NotLeaderError
	require.ErrorAs(t, err, &nle)
	require.Equal(t, s.peers[leader].ID, nle.LeaderID)
	require.Equal(t, s.addrs[s.peers[leader].ID], nle.LeaderClientAddr)
	require.ErrorIs(t, s.logs[follower].SetCursor(ctx, "t", "c", 1), cluster.ErrNotLeader)

	// Unmarked, the same write is forwarded and lands.
	r, err := s.logs[follower].Append(context.Background(), "t", evs("x"), store.ExpectAny)
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.FirstSeq)
	require.NoError(t, s.logs[follower].SetCursor(context.Background(), "t", "c", r.FirstID))
	// A conflict on the leader comes back as the leader's status.
	_, err = s.dial(follower).Produce(context.Background(), "t", []client.EventData{{Payload: []byte("y")}}, client.ExpectLastSeq(7))
	require.ErrorIs(t, err, client.ErrConflict)
}

// A follower that cannot open its stream to the leader's gRPC service
// answers ErrUnavailable (nothing was sent: UNAVAILABLE); one
// that does not know the leader's client address answers a
// *NotLeaderError with the leader's id (NOT_LEADER), nothing written.
func TestLogForwardFailures(t *testing.T) {
	c := newCluster(t, "leveldb", 3, nil)
	leader := c.waitLeader(10 * time.Second)
	follower := (leader + 1) % 3
	leaderID := c.peers[leader].ID
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	dead, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never speaks gRPC
	require.NoError(t, err)
	defer dead.Close()
	go func() {
		for {
			conn, err := dead.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	unreachable, err := cluster.NewLog(cluster.LogConfig{Node: c.node(follower), Store: c.nodes[follower].st,
		ClientAddrs: map[string]string{leaderID: dead.Addr().String()}})
	require.NoError(t, err)
	defer unreachable.Close()
	_, err = unreachable.Append(ctx, "t", evs("x"), store.ExpectAny)
	require.ErrorIs(t, err, cluster.ErrUnavailable)

	unknown, err := cluster.NewLog(cluster.LogConfig{Node: c.node(follower), Store: c.nodes[follower].st})
	require.NoError(t, err)
	defer unknown.Close()
	_, err = unknown.Append(ctx, "t", evs("x"), store.ExpectAny)
	var nle *cluster.NotLeaderError
	require.ErrorAs(t, err, &nle)
	require.Equal(t, leaderID, nle.LeaderID)
	require.Empty(t, nle.LeaderClientAddr)
	done := make(chan error, 1)
	unknown.AppendAsync("t", evs("y"), store.ExpectAny, func(_ store.AppendResult, err error) { done <- err })
	require.ErrorIs(t, <-done, cluster.ErrNotLeader)
	_, err = c.nodes[follower].st.Info("t")
	require.ErrorIs(t, err, store.ErrNotFound, "nothing was written")
}

// WriteErr follows the leader: nil while one is known, a
// *NotLeaderError once the member is alone; WriteErrChanged says when.
func TestLogWriteErrFollowsLeader(t *testing.T) {
	s := newServed(t, "leveldb")
	leader := s.waitLeader(10 * time.Second)
	survivor := (leader + 1) % 3
	lg := s.logs[survivor]
	require.Eventually(t, func() bool { return lg.WriteErr() == nil }, 5*time.Second, 10*time.Millisecond)
	changed := lg.WriteErrChanged()
	for i := range 3 {
		if i != survivor {
			s.stop(i)
		}
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("WriteErrChanged not closed when the leader was lost")
	}
	require.Eventually(t, func() bool { return lg.WriteErr() != nil }, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, lg.WriteErr(), cluster.ErrNotLeader)
}

// gauge returns the value of the metric family name of m (one series).
func gauge(t *testing.T, m *server.Metrics, name string) float64 {
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == name {
			require.Len(t, f.GetMetric(), 1)
			if c := f.GetMetric()[0].GetCounter(); c != nil {
				return c.GetValue()
			}
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The goethe_cluster_* metrics: one leader among the members, the same
// term, every member's applied index reaching the write's.
func TestLogMetrics(t *testing.T) {
	s := newServed(t, "leveldb")
	leader := s.waitLeader(10 * time.Second)
	_, err := s.dial((leader+1)%3).Produce(context.Background(), "t", []client.EventData{{Payload: []byte("x")}})
	require.NoError(t, err)
	commit := gauge(t, s.metrics[leader], "goethe_cluster_commit_index")
	require.NotZero(t, commit)
	leaders := 0.0
	for i, m := range s.metrics {
		leaders += gauge(t, m, "goethe_cluster_leader")
		require.Equal(t, gauge(t, s.metrics[leader], "goethe_cluster_term"), gauge(t, m, "goethe_cluster_term"))
		require.Eventually(t, func() bool { return gauge(t, m, "goethe_cluster_applied_index") >= commit }, 5*time.Second, 10*time.Millisecond,
			"member %d applies", i)
		require.NotZero(t, gauge(t, m, "goethe_cluster_leader_changes_total"), "member %d saw the election", i)
	}
	require.Equal(t, 1.0, leaders)
}

// Dedupe keys through Raft: on the leader and through a follower's
// forward, a retry of keyed events is answered with the originals' ids and
// seqs, and every member holds each event once, with its key.
func TestLogDedupe(t *testing.T) {
	s := newServed(t, "leveldb")
	leader := s.waitLeader(10 * time.Second)
	follower := (leader + 1) % 3
	ctx := context.Background()
	keyed := []client.EventData{{Payload: []byte("a"), DedupeKey: "ka"}, {Payload: []byte("b"), DedupeKey: "kb"}}
	first, err := s.dial(leader).Produce(ctx, "d", keyed)
	require.NoError(t, err)
	require.Equal(t, 2, first.Count)
	for _, i := range []int{leader, follower} {
		again, err := s.dial(i).Produce(ctx, "d", keyed, client.ExpectLastSeq(0))
		require.NoError(t, err, "member %d", i)
		require.Zero(t, again.Count)
		require.Equal(t, []client.Duplicate{{Index: 0, ID: first.FirstID, Seq: 1}, {Index: 1, ID: first.FirstID + 1, Seq: 2}}, again.Duplicates)
		require.NotZero(t, again.RaftIndex)
	}
	r, err := s.dial(follower).Produce(ctx, "d", []client.EventData{{Payload: []byte("c"), DedupeKey: "kc"}, keyed[0]})
	require.NoError(t, err)
	require.Equal(t, 1, r.Count)
	require.Equal(t, uint64(3), r.FirstSeq)
	s.waitConverged(r.RaftIndex)
	for i := range s.nodes {
		page, err := s.nodes[i].st.Read("d", 0, 10)
		require.NoError(t, err)
		require.Len(t, page.Events, 3, "member %d", i)
		require.Equal(t, "kc", page.Events[2].DedupeKey)
	}
}

// silentLeader is a goethe.v1.Goethe service that takes a ProduceStream's
// requests and never answers them: a leader that hangs without dropping
// its connections, which a real server cannot be made to do on demand.
type silentLeader struct {
	goethev1.UnimplementedGoetheServer
	received chan struct{}
}

func (s *silentLeader) ProduceStream(stream grpc.BidiStreamingServer[goethev1.ProduceStreamRequest, goethev1.ProduceStreamResponse]) error {
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		select {
		case s.received <- struct{}{}:
		default:
		}
	}
}

// followerOfSilentLeader returns the Log of a follower of a 3-node
// cluster whose leader's client address is a silentLeader's, with
// ForwardTimeout timeout (0: the default), and that silentLeader.
func followerOfSilentLeader(t *testing.T, timeout time.Duration) (*cluster.Log, *silentLeader) {
	t.Helper()
	c := newCluster(t, "leveldb", 3, nil)
	leader := c.waitLeader(10 * time.Second)
	follower := (leader + 1) % 3
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	silent := &silentLeader{received: make(chan struct{}, 1)}
	goethev1.RegisterGoetheServer(srv, silent)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	lg, err := cluster.NewLog(cluster.LogConfig{Node: c.node(follower), Store: c.nodes[follower].st,
		ClientAddrs: map[string]string{c.peers[leader].ID: lis.Addr().String()}, ForwardTimeout: timeout})
	require.NoError(t, err)
	return lg, silent
}

// A forwarded append that the leader takes and never answers ends with
// ErrOutcomeUnknown after ForwardTimeout, and so does every other append
// waiting on the same stream; the next append opens a new stream.
func TestLogForwardTimeout(t *testing.T) {
	lg, silent := followerOfSilentLeader(t, 300*time.Millisecond)
	defer lg.Close()

	done := make(chan error, 2)
	lg.AppendAsync("t", evs("a"), store.ExpectAny, func(_ store.AppendResult, err error) { done <- err })
	lg.AppendAsync("t", evs("b"), store.ExpectAny, func(_ store.AppendResult, err error) { done <- err })
	<-silent.received
	for range 2 {
		require.ErrorIs(t, <-done, cluster.ErrOutcomeUnknown)
	}
	_, err := lg.Append(context.Background(), "t", evs("c"), store.ExpectAny)
	require.ErrorIs(t, err, cluster.ErrOutcomeUnknown, "a new stream, which times out too")
}

// Close ends the appends waiting on the forward stream (ErrOutcomeUnknown)
// and refuses later ones (ErrClosed).
func TestLogCloseEndsForwards(t *testing.T) {
	lg, silent := followerOfSilentLeader(t, 0)

	done := make(chan error, 1)
	lg.AppendAsync("t", evs("a"), store.ExpectAny, func(_ store.AppendResult, err error) { done <- err })
	<-silent.received
	require.NoError(t, lg.Close())
	require.ErrorIs(t, <-done, cluster.ErrOutcomeUnknown)
	lg.AppendAsync("t", evs("b"), store.ExpectAny, func(_ store.AppendResult, err error) { done <- err })
	require.ErrorIs(t, <-done, cluster.ErrClosed)
}
