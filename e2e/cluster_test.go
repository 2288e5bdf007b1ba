package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/client"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// The cluster test's load: producers, spread over the three members, each
// append numbered events one at a time to a topic of their own, waiting
// for each acknowledgement; the leader is killed under that load.
const (
	clusterProducers  = 8
	clusterLoadBefore = 400 // events acknowledged before the kill
	clusterLoadAfter  = 200 // events acknowledged by the survivors after it
	clusterRounds     = 3
)

// goetheCluster is three goethe processes forming one cluster on loopback.
type goetheCluster struct {
	t       *testing.T
	engine  string
	ids     []string
	raft    []string
	clients []string
	dirs    []string
	procs   []*server
}

// freeLoopback returns n distinct loopback addresses with ports free a
// moment ago (all held open before any is closed).
func freeLoopback(t *testing.T, n int) []string {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

func newGoetheCluster(t *testing.T, engine string) *goetheCluster {
	c := &goetheCluster{t: t, engine: engine}
	ports := freeLoopback(t, 6)
	for i := range 3 {
		c.ids = append(c.ids, fmt.Sprintf("n%d", i+1))
		c.raft = append(c.raft, ports[2*i])
		c.clients = append(c.clients, ports[2*i+1])
		c.dirs = append(c.dirs, t.TempDir())
	}
	c.procs = make([]*server, 3)
	var deadline time.Time
	for i := range 3 {
		c.procs[i], deadline = c.start(i)
	}
	for _, p := range c.procs {
		p.waitServing(time.Until(deadline)) // SERVING: a leader is known
	}
	return c
}

// start starts member i on its folders, without waiting for a leader.
func (c *goetheCluster) start(i int) (*server, time.Time) {
	var peers, clients []string
	for j := range c.ids {
		peers = append(peers, c.ids[j]+"="+c.raft[j])
		clients = append(clients, c.ids[j]+"="+c.clients[j])
	}
	return startProcess(c.t, c.engine, c.dirs[i], "--listen", c.clients[i], "--node-id", c.ids[i],
		"--raft-listen", c.raft[i], "--peers", strings.Join(peers, ","), "--peer-clients", strings.Join(clients, ","))
}

// leader asks member i which member leads: a write marked as forwarded is
// taken only by the leader, and a follower's refusal names the leader. The
// probe writes one event to the topic "probe" when i leads.
func (c *goetheCluster) leader(i int) int {
	conn, err := grpc.NewClient(c.clients[i], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(c.t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "goethe-forwarded", "1"), 10*time.Second)
	defer cancel()
	_, err = goethev1.NewGoetheClient(conn).Produce(ctx, &goethev1.ProduceRequest{Topic: "probe",
		Events: []*goethev1.EventData{{Payload: []byte("probe")}}})
	if err == nil {
		return i
	}
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == goethev1.ReasonNotLeader {
			for j, id := range c.ids {
				if id == info.GetMetadata()["leader_id"] {
					return j
				}
			}
		}
	}
	return -1 // no leader known yet
}

// clusterLoad is what producers sent and what was acknowledged.
type clusterLoad struct {
	mu     sync.Mutex
	acked  [clusterProducers][]int // per producer: numbers acknowledged, in order
	next   [clusterProducers]int   // per producer: the number it sends next
	total  int
	failed map[string]int // reasons of the failures, for the log
}

func (l *clusterLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// produce runs producer p against addr until ctx ends: event k of topic
// "p<p>" is payload "<k>"; a failed event is not retried (its outcome may
// be unknown), the next number is sent.
func (l *clusterLoad) produce(ctx context.Context, t *testing.T, p int, addr string) {
	cl, err := client.Dial(addr)
	if err != nil {
		t.Errorf("dial %s: %v", addr, err)
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		l.mu.Lock()
		k := l.next[p]
		l.next[p]++
		l.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cl.Produce(cctx, fmt.Sprintf("p%d", p), []client.EventData{{Payload: fmt.Appendf(nil, "%d", k)}})
		cancel()
		l.mu.Lock()
		if err == nil {
			l.acked[p] = append(l.acked[p], k)
			l.total++
		} else {
			var ce *client.Error
			reason := err.Error()
			if errors.As(err, &ce) {
				reason = ce.Code().String() + "/" + ce.Reason()
			}
			l.failed[reason]++
		}
		l.mu.Unlock()
		if err != nil {
			select { // a failed member: do not spin on it
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// TestClusterLeaderKill runs three goethe processes per engine and, in
// each of clusterRounds rounds, kills the leader with SIGKILL while 8
// producers write through all three members, then checks that every event
// acknowledged so far is on both survivors exactly once and in order, that
// nothing is stored twice, that the survivors hold identical topics, that
// goethectl cluster status shows it, and that the killed member, restarted,
// catches up.
func TestClusterLeaderKill(t *testing.T) {
	for _, engine := range []string{"leveldb", "pebble", "bolt"} {
		t.Run(engine, func(t *testing.T) {
			c := newGoetheCluster(t, engine)
			load := &clusterLoad{failed: map[string]int{}}
			for round := range clusterRounds {
				c.leaderKillRound(load, round)
			}
		})
	}
}

func (c *goetheCluster) leaderKillRound(load *clusterLoad, round int) {
	t := c.t
	leader := -1
	require.Eventually(t, func() bool { leader = c.leader(0); return leader >= 0 }, 10*time.Second, pollEvery)
	// goethectl cluster status through a follower: every member, each
	// naming the same leader.
	follower := (leader + 1) % 3
	require.Eventually(t, func() bool {
		for _, m := range c.status(follower) {
			if m.Error != "" || m.Status.LeaderID != c.ids[leader] {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "every member names %s", c.ids[leader])

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for p := range clusterProducers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load.produce(ctx, t, p, c.clients[(p+round)%3])
		}()
	}
	defer func() { stop(); wg.Wait() }()
	start := load.count()
	require.Eventually(t, func() bool { return load.count() >= start+clusterLoadBefore }, 60*time.Second, pollEvery)
	killedAt := time.Now()
	c.procs[leader].kill()
	before := load.count()

	survivors := []int{(leader + 1) % 3, (leader + 2) % 3}
	require.Eventually(t, func() bool { return load.count() >= before+clusterLoadAfter }, 60*time.Second, pollEvery,
		"the survivors take writes again")
	recovered := time.Since(killedAt)
	stop()
	wg.Wait()
	t.Logf("round %d: %d acks after the kill of %s within %s; failures so far: %v", round, clusterLoadAfter, c.ids[leader],
		recovered, load.failed)

	// Every acknowledged event once, in order; nothing twice; the same
	// topics on both survivors. (A follower may apply the last writes a
	// moment after the leader acknowledged them.)
	var got [][]string
	require.Eventually(t, func() bool {
		got = c.readAll(survivors[0])
		return fmt.Sprint(got) == fmt.Sprint(c.readAll(survivors[1]))
	}, 10*time.Second, 20*time.Millisecond, "the survivors hold the same events")
	for p := range clusterProducers {
		seen := map[string]bool{}
		for _, pl := range got[p] {
			require.False(t, seen[pl], "producer %d: event %s stored twice", p, pl)
			seen[pl] = true
		}
		// The acknowledged ones appear in the order they were sent.
		pos := 0
		for _, k := range load.acked[p] {
			want := fmt.Sprint(k)
			for pos < len(got[p]) && got[p][pos] != want {
				pos++
			}
			require.Less(t, pos, len(got[p]), "producer %d: acknowledged event %s missing or out of order", p, want)
		}
	}

	// The killed member is unreachable; the survivors name another leader.
	for _, m := range c.status(survivors[0]) {
		if m.ID == c.ids[leader] {
			require.NotEmpty(t, m.Error)
			continue
		}
		require.Empty(t, m.Error, "member %s", m.ID)
		require.NotEqual(t, c.ids[leader], m.Status.LeaderID)
	}

	// The killed member restarts and catches up.
	var deadline time.Time
	c.procs[leader], deadline = c.start(leader)
	c.waitServing(leader, deadline)
	// The survivors' events are read again: a write whose call the
	// producers abandoned when they stopped (its outcome unknown to them)
	// may have been committed after got was read.
	require.Eventually(t, func() bool {
		now := c.readAll(survivors[0])
		return fmt.Sprint(c.readAll(leader)) == fmt.Sprint(now) && fmt.Sprint(now) == fmt.Sprint(c.readAll(survivors[1]))
	}, 30*time.Second, 50*time.Millisecond, "the restarted member holds the survivors' events")
}

// readAll reads the producers' topics on member i: their payloads, in
// order, per producer.
func (c *goetheCluster) readAll(i int) [][]string {
	cl, err := client.Dial(c.clients[i])
	require.NoError(c.t, err)
	defer cl.Close()
	out := make([][]string, clusterProducers)
	for p := range clusterProducers {
		for ev, err := range cl.Consume(context.Background(), fmt.Sprintf("p%d", p), client.ConsumeOptions{}) {
			if errors.Is(err, client.ErrNotFound) {
				break
			}
			require.NoError(c.t, err)
			out[p] = append(out[p], string(ev.Payload))
		}
	}
	return out
}

// clusterMember is a line of goethectl cluster status --json.
type clusterMember struct {
	ID     string `json:"id"`
	Error  string `json:"error"`
	Status *struct {
		NodeID   string `json:"node_id"`
		State    string `json:"state"`
		LeaderID string `json:"leader_id"`
	} `json:"status"`
}

// status runs goethectl cluster status --json against member i.
func (c *goetheCluster) status(i int) []clusterMember {
	cmd := exec.Command(goethectlBin(), "--server", c.clients[i], "cluster", "status", "--json")
	cmd.Env = binEnv()
	out, err := cmd.Output()
	require.NoError(c.t, err, "goethectl cluster status: %s", out)
	var members []clusterMember
	for line := range strings.Lines(string(out)) {
		var m clusterMember
		require.NoError(c.t, json.Unmarshal([]byte(line), &m), line)
		members = append(members, m)
	}
	require.Len(c.t, members, 3, "%s", out)
	return members
}

// waitServing is server.waitServing for member i, saying on failure what
// the member's Raft status is.
func (c *goetheCluster) waitServing(i int, deadline time.Time) {
	conn, err := grpc.NewClient(c.clients[i], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(c.t, err)
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	serving := assert.Eventually(c.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "goethe.v1.Goethe"})
		return err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, time.Until(deadline), pollEvery)
	if !serving {
		st, err := goethev1.NewGoetheClient(conn).GetClusterStatus(context.Background(), &goethev1.GetClusterStatusRequest{})
		other, _ := exec.Command(goethectlBin(), "--server", c.clients[(i+1)%3], "cluster", "status").CombinedOutput()
		c.t.Fatalf("member %s not serving; its status: %v (%v); as %s sees the cluster:\n%s\nits log:\n%s", c.ids[i], st, err,
			c.ids[(i+1)%3], other, c.procs[i].stderr.String())
	}
}

// goethectl cluster add and remove against real processes: a fourth
// member started with --join is added through a follower, receives the
// events written before, lists the four members with their client
// addresses, and takes writes; then the leader is removed, and the three
// left elect a new one and take writes.
func TestClusterMembershipCommands(t *testing.T) {
	c := newGoetheCluster(t, "leveldb")
	leader := -1
	require.Eventually(t, func() bool { leader = c.leader(0); return leader >= 0 }, 10*time.Second, pollEvery)
	follower := (leader + 1) % 3
	ctl := func(server string, args ...string) string {
		cmd := exec.Command(goethectlBin(), append([]string{"--server", server}, args...)...)
		cmd.Env = binEnv()
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "goethectl %v: %s", args, out)
		return string(out)
	}
	ctl(c.clients[follower], "produce", "t", "before")

	ports := freeLoopback(t, 2)
	startProcess(t, c.engine, t.TempDir(), "--listen", ports[1], "--node-id", "n4", "--raft-listen", ports[0], "--join")
	out := ctl(c.clients[follower], "cluster", "add", "n4", ports[0], ports[1])
	require.Contains(t, memberLines(out), "n4 "+ports[0]+" "+ports[1], out)
	require.Eventually(t, func() bool {
		cmd := exec.Command(goethectlBin(), "--server", ports[1], "consume", "t", "--limit", "1")
		cmd.Env = binEnv()
		out, err := cmd.CombinedOutput()
		return err == nil && strings.Contains(string(out), "before")
	}, 15*time.Second, pollEvery, "n4 caught up")
	ctl(ports[1], "produce", "t", "through-n4")
	status := ctl(ports[1], "cluster", "status", "--json")
	require.Len(t, memberLines(status), 4, status)
	for _, addr := range append(slices.Clone(c.clients), ports[1]) {
		require.Contains(t, status, `"client_address":"`+addr+`","status":{`, "every member reached at its address")
	}

	out = ctl(c.clients[follower], "cluster", "remove", c.ids[leader])
	lines := memberLines(out)
	require.Len(t, lines, 4, out) // the header and three members
	require.NotContains(t, lines, c.ids[leader]+" "+c.raft[leader]+" "+c.clients[leader], out)
	require.Eventually(t, func() bool {
		cmd := exec.Command(goethectlBin(), "--server", ports[1], "produce", "t", "after")
		cmd.Env = binEnv()
		return cmd.Run() == nil
	}, 15*time.Second, pollEvery, "the members left elect a leader and take writes")
}

// memberLines returns the lines of goethectl cluster add or remove, each
// with its columns joined by one space.
func memberLines(out string) []string {
	var lines []string
	for line := range strings.Lines(out) {
		lines = append(lines, strings.Join(strings.Fields(line), " "))
	}
	return lines
}
