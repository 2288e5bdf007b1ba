package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// testCluster runs real nodes in this process, over TCP on 127.0.0.1, each
// with a real engine in its own temporary folder.
type testCluster struct {
	t      testing.TB
	engine string
	peers  []cluster.Peer
	tweak  func(*cluster.Config)
	inmem  []*raft.InmemTransport // set: in-memory links that tests cut

	mu    sync.Mutex
	nodes []*testNode // nil node: stopped
}

type testNode struct {
	join bool // started with no Peers: waits to be added
	dir  string
	st   *store.Store
	eng  engine.Engine
	node *cluster.Node
}

func forEngine(t *testing.T, f func(t *testing.T, name string)) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) { f(t, name) })
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string { return freeAddrs(t, 1)[0] }

// freeAddrs returns n distinct loopback addresses with ports free a moment
// ago: all are held open before any is closed, so that the kernel does not
// hand out one port twice.
func freeAddrs(t testing.TB, n int) []string {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

func newCluster(t testing.TB, engineName string, size int, tweak func(*cluster.Config)) *testCluster {
	c := &testCluster{t: t, engine: engineName, tweak: tweak}
	addrs := freeAddrs(t, size)
	for i := range size {
		c.peers = append(c.peers, cluster.Peer{ID: fmt.Sprintf("n%d", i+1), Addr: addrs[i]})
		c.nodes = append(c.nodes, &testNode{dir: t.TempDir()})
	}
	c.startAll()
	return c
}

// newInmemCluster is newCluster over raft's in-memory transport, whose
// links partition and heal cut and restore. Its nodes cannot be restarted
// (a stopped node's transport is closed).
func newInmemCluster(t *testing.T, engineName string, size int) *testCluster {
	c := &testCluster{t: t, engine: engineName}
	for i := range size {
		addr, tr := raft.NewInmemTransport("")
		c.inmem = append(c.inmem, tr)
		c.peers = append(c.peers, cluster.Peer{ID: fmt.Sprintf("n%d", i+1), Addr: string(addr)})
		c.nodes = append(c.nodes, &testNode{dir: t.TempDir()})
	}
	c.heal()
	c.startAll()
	return c
}

// partition cuts every link between node i and the others.
func (c *testCluster) partition(i int) {
	c.inmem[i].DisconnectAll()
	for j, tr := range c.inmem {
		if j != i {
			tr.Disconnect(raft.ServerAddress(c.peers[i].Addr))
		}
	}
}

// heal connects every node to every other one.
func (c *testCluster) heal() {
	for i, a := range c.inmem {
		for j, b := range c.inmem {
			if i != j {
				a.Connect(raft.ServerAddress(c.peers[j].Addr), b)
			}
		}
	}
}

func (c *testCluster) startAll() {
	t := c.t
	size := len(c.nodes)
	for i := range size {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
}

// start opens node i's store and starts its Raft member, on the folders it
// had before if it ran already.
func (c *testCluster) start(i int) {
	t := c.t
	n := c.nodes[i]
	e, err := engines.Open(c.engine, filepath.Join(n.dir, "store"))
	require.NoError(t, err)
	st, err := store.Open(e, store.Options{SyncApplied: c.engine == "bolt", RetentionByLog: true, RetentionInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	cfg := cluster.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.Bind = c.peers[i].ID, filepath.Join(n.dir, "raft"), c.peers[i].Addr
	cfg.Peers, cfg.Store = c.peers, st
	if n.join {
		cfg.Peers = nil
	}
	cfg.SegmentSize = 1 << 20
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: c.peers[i].ID, Level: hclog.Error})
	if c.inmem != nil {
		cfg.Transport = c.inmem[i]
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	node, err := cluster.Open(cfg)
	require.NoError(t, err)
	c.mu.Lock()
	n.st, n.eng, n.node = st, e, node
	c.mu.Unlock()
}

// stop shuts node i down (no handover) and closes its store.
func (c *testCluster) stop(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	node, st := n.node, n.st
	n.node, n.st, n.eng = nil, nil, nil
	c.mu.Unlock()
	if node == nil {
		return
	}
	require.NoError(c.t, node.Close())
	require.NoError(c.t, st.Close())
}

func (c *testCluster) running() []*testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*testNode
	for _, n := range c.nodes {
		if n.node != nil {
			out = append(out, &testNode{dir: n.dir, st: n.st, eng: n.eng, node: n.node})
		}
	}
	return out
}

// leaderIndex returns the index of a running node that is the leader, or -1.
func (c *testCluster) leaderIndex() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n.node != nil && n.node.IsLeader() {
			return i
		}
	}
	return -1
}

func (c *testCluster) node(i int) *cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].node
}

// waitLeader waits until the running nodes agree on one leader and returns
// its index.
func (c *testCluster) waitLeader(within time.Duration) int {
	var all []int
	for i := range c.nodes {
		if c.node(i) != nil {
			all = append(all, i)
		}
	}
	return c.waitLeaderAmong(all, within)
}

// waitLeaderAmong waits until the nodes among agree that one of them leads.
func (c *testCluster) waitLeaderAmong(among []int, within time.Duration) int {
	leader := -1
	require.Eventually(c.t, func() bool {
		leader = -1
		for _, i := range among {
			if c.node(i).IsLeader() {
				leader = i
			}
		}
		if leader < 0 {
			return false
		}
		for _, i := range among {
			if id, _ := c.node(i).Leader(); id != c.peers[leader].ID {
				return false
			}
		}
		return true
	}, within, 10*time.Millisecond)
	return leader
}

func dump(t testing.TB, e engine.Engine) []engine.KV {
	kvs, err := e.Scan(nil, nil, 1<<30, 0)
	require.NoError(t, err)
	return kvs
}

// waitConverged waits until every running node applied at least index and
// their engines hold the same records, byte for byte (events with their
// ids, seqs and times; topic metadata; cursors; the applied index).
func (c *testCluster) waitConverged(index uint64) {
	t := c.t
	var diff string
	ok := assertEventually(func() bool {
		nodes := c.running()
		for _, n := range nodes {
			if n.st.AppliedIndex() < index {
				diff = fmt.Sprintf("node applied %d < %d", n.st.AppliedIndex(), index)
				return false
			}
		}
		first := dump(t, nodes[0].eng)
		for _, n := range nodes[1:] {
			other := dump(t, n.eng)
			if len(other) != len(first) {
				diff = fmt.Sprintf("%d records against %d", len(other), len(first))
				return false
			}
			for k := range first {
				if string(first[k].Key) != string(other[k].Key) || string(first[k].Value) != string(other[k].Value) {
					diff = fmt.Sprintf("record %d differs: %x", k, first[k].Key)
					return false
				}
			}
		}
		return true
	}, 20*time.Second)
	require.True(t, ok, "nodes did not converge: %s", diff)
}

func assertEventually(cond func() bool, within time.Duration) bool {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

func evs(payloads ...string) []store.Event {
	out := make([]store.Event, len(payloads))
	for i, p := range payloads {
		out[i] = store.Event{Payload: []byte(p), Headers: map[string]string{"n": p, "src": "test"}}
	}
	return out
}

func readTopic(t *testing.T, st *store.Store, topic string) []store.Event {
	var all []store.Event
	from := uint64(0)
	for {
		p, err := st.Read(topic, from, 1000)
		require.NoError(t, err)
		if len(p.Events) == 0 {
			return all
		}
		all = append(all, p.Events...)
		from = p.Next
	}
}

// Three nodes elect a leader; appends and cursor sets on the leader are
// applied on every node identically, byte for byte, with the ids, seqs and
// times the leader reported; an expectation is checked once, by the log
// order.
func TestReplicatesIdentically(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		c := newCluster(t, name, 3, nil)
		l := c.node(c.waitLeader(10 * time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		var last uint64
		results := map[string][]store.AppendResult{}
		for i := range 20 {
			topic := fmt.Sprintf("topic-%d", i%3)
			res, idx, err := l.Append(ctx, topic, evs(fmt.Sprintf("e%d-a", i), fmt.Sprintf("e%d-b", i)), store.ExpectAny)
			require.NoError(t, err)
			require.Greater(t, idx, last)
			last = idx
			results[topic] = append(results[topic], res)
		}
		_, _, err := l.Append(ctx, "topic-0", evs("stale"), store.ExpectLastSeq(1))
		require.ErrorIs(t, err, store.ErrConflict)
		res, _, err := l.Append(ctx, "topic-0", evs("fresh"), store.ExpectLastSeq(14))
		require.NoError(t, err)
		require.Equal(t, uint64(15), res.FirstSeq)
		last, err = l.SetCursor(ctx, "topic-1", "reader", results["topic-1"][2].FirstID)
		require.NoError(t, err)
		_, err = l.SetCursor(ctx, "absent", "reader", 1)
		require.ErrorIs(t, err, store.ErrNotFound)

		c.waitConverged(last)
		for _, n := range c.running() {
			for topic, rs := range results {
				got := readTopic(t, n.st, topic)
				for k, r := range rs {
					require.Equal(t, r.FirstID, got[2*k].ID)
					require.Equal(t, r.FirstSeq, got[2*k].Seq)
				}
			}
			cur, err := n.st.GetCursor("topic-1", "reader")
			require.NoError(t, err)
			require.Equal(t, results["topic-1"][2].FirstID, cur.ID)
		}
	})
}

// A write on a follower is refused, not proposed, with the leader's address.
func TestFollowerRefusesWithLeaderAddress(t *testing.T) {
	c := newCluster(t, "pebble", 3, nil)
	leader := c.waitLeader(10 * time.Second)
	follower := (leader + 1) % 3
	_, _, err := c.node(follower).Append(context.Background(), "t", evs("x"), store.ExpectAny)
	var nl *cluster.NotLeaderError
	require.ErrorAs(t, err, &nl)
	require.ErrorIs(t, err, cluster.ErrNotLeader)
	require.Equal(t, c.peers[leader].Addr, nl.LeaderAddr)
	require.Equal(t, c.peers[leader].ID, nl.LeaderID)
	_, err = c.node(follower).SetCursor(context.Background(), "t", "c", 1)
	require.ErrorIs(t, err, cluster.ErrNotLeader)
	for _, n := range c.running() {
		_, err := n.st.Info("t")
		require.ErrorIs(t, err, store.ErrNotFound)
	}
}

// producerLog is what concurrent producers learned: which payloads were
// acknowledged, and which may or may not have been stored.
type producerLog struct {
	mu      sync.Mutex
	acked   map[string]store.AppendResult // payload → where the leader put it
	unknown map[string]bool
}

// The leader is shut down (no handover) under 8 concurrent producers: a new
// leader is elected, no acknowledged event is lost or duplicated, an event
// whose outcome was unknown is stored at most once, and once the old leader
// is back every node holds the same topics.
func TestLeaderLossUnderLoad(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		c := newCluster(t, name, 3, nil)
		first := c.waitLeader(10 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		const producers, perProducer = 8, 40
		log := &producerLog{acked: map[string]store.AppendResult{}, unknown: map[string]bool{}}
		var progress sync.WaitGroup // half of each producer's acks
		progress.Add(producers)
		var wg sync.WaitGroup
		for p := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				topic := fmt.Sprintf("p%d", p%4) // two producers per topic
				acked, attempt, halfway := 0, 0, false
				for acked < perProducer && ctx.Err() == nil {
					li := c.leaderIndex()
					if li < 0 {
						select { // no leader yet: poll again shortly
						case <-ctx.Done():
						case <-time.After(5 * time.Millisecond):
						}
						continue
					}
					node := c.node(li)
					if node == nil {
						continue
					}
					attempt++
					payload := fmt.Sprintf("p%d-%d", p, attempt)
					res, _, err := node.Append(ctx, topic, evs(payload), store.ExpectAny)
					log.mu.Lock()
					switch {
					case err == nil:
						log.acked[payload] = res
						acked++
					case errors.Is(err, cluster.ErrNotLeader), errors.Is(err, cluster.ErrUnavailable):
						// Not proposed.
					default:
						log.unknown[payload] = true
					}
					log.mu.Unlock()
					if !halfway && acked >= perProducer/2 {
						halfway = true
						progress.Done()
					}
				}
				if !halfway {
					progress.Done()
				}
			}()
		}
		progress.Wait()
		start := time.Now()
		c.stop(first)
		second := c.waitLeader(10 * time.Second)
		t.Logf("%s: new leader %s %v after the old one stopped", name, c.peers[second].ID, time.Since(start))
		require.NotEqual(t, first, second)
		wg.Wait()
		require.NoError(t, ctx.Err(), "producers did not finish")

		// The survivors agree; then the old leader comes back and catches up.
		c.waitConverged(c.node(second).Status().AppliedIndex)
		c.start(first)
		c.waitConverged(c.node(c.waitLeader(10 * time.Second)).Status().AppliedIndex)

		require.Len(t, log.acked, producers*perProducer)
		for _, n := range c.running() {
			seen := map[string]bool{}
			for k := range 4 {
				topic := fmt.Sprintf("p%d", k)
				got := readTopic(t, n.st, topic)
				for j, e := range got {
					require.Equal(t, uint64(j+1), e.Seq, "seqs are dense")
					if j > 0 {
						require.Greater(t, e.ID, got[j-1].ID)
					}
					payload := string(e.Payload)
					require.False(t, seen[payload], "%s stored twice", payload)
					seen[payload] = true
					if r, ok := log.acked[payload]; ok {
						require.Equal(t, r.FirstID, e.ID)
						require.Equal(t, r.FirstSeq, e.Seq)
					} else {
						require.True(t, log.unknown[payload], "%s was stored but never acknowledged nor unknown", payload)
					}
				}
			}
			for payload := range log.acked {
				require.True(t, seen[payload], "acknowledged %s lost", payload)
			}
		}
	})
}

// A follower that was down catches up from the leader's log when the log
// still holds what it missed, and from a snapshot (replacing its store)
// once the log was truncated past it.
func TestRestartedFollowerCatchesUp(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		c := newCluster(t, name, 3, func(cfg *cluster.Config) {
			cfg.TrailingLogs = 5
			cfg.SnapshotThreshold = 1 << 30 // snapshots only when the test asks
			// raft-wal still serves entries truncated off the head while
			// they are in its open (tail) segment: small segments make the
			// truncation real.
			cfg.SegmentSize = 2048
		})
		leader := c.waitLeader(10 * time.Second)
		follower := (leader + 1) % 3
		l := c.node(leader)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		appendN := func(topic string, n int) uint64 {
			var idx uint64
			for i := range n {
				var err error
				_, idx, err = l.Append(ctx, topic, evs(fmt.Sprintf("%s-%d", topic, i)), store.ExpectAny)
				require.NoError(t, err)
			}
			return idx
		}
		c.waitConverged(appendN("before", 10))

		// From the log.
		c.stop(follower)
		idx := appendN("while-down", 30)
		c.start(follower)
		c.waitConverged(idx)
		require.Zero(t, c.node(follower).Status().SnapshotsRestored)

		// From a snapshot: the leader's log no longer reaches back to
		// where the follower stopped.
		c.stop(follower)
		appendN("while-down-2", 30)
		require.NoError(t, l.Snapshot())
		idx = appendN("after-snapshot", 5)
		c.start(follower)
		c.waitConverged(idx)
		require.Equal(t, uint64(1), c.node(follower).Status().SnapshotsRestored)
		require.Len(t, readTopic(t, c.running()[follower].st, "while-down-2"), 30)

		// It goes on applying from the log after the snapshot, and a
		// restart does not load the snapshot again.
		idx = appendN("later", 5)
		c.waitConverged(idx)
		c.stop(follower)
		c.start(follower)
		c.waitConverged(appendN("last", 3))
		require.Zero(t, c.node(follower).Status().SnapshotsRestored)

		// A store found behind its node's newest snapshot (here: a
		// Restore that broke off, whose marker makes Open empty the
		// store) is restored from that local snapshot at start.
		c.stop(follower)
		e, err := engines.Open(name, filepath.Join(c.nodes[follower].dir, "store"))
		require.NoError(t, err)
		var b engine.Batch
		b.Put([]byte{0xF5, 'r'}, []byte{1}) // store's restore marker
		require.NoError(t, e.Write(&b, true))
		require.NoError(t, e.Close())
		c.start(follower)
		require.Equal(t, uint64(1), c.node(follower).Status().SnapshotsRestored)
		c.waitConverged(appendN("end", 3))
	})
}

// A leader cut off from the majority acknowledges nothing: its writes fail
// (not leader, or outcome unknown) while the majority elects a new leader
// and takes writes; once the links heal, the old leader's uncommitted
// entries are gone and every node holds the same records.
func TestMinorityRefusesWrites(t *testing.T) {
	c := newInmemCluster(t, "pebble", 3)
	old := c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := c.node(old).Append(ctx, "t", evs("before"), store.ExpectAny)
	require.NoError(t, err)

	c.partition(old)
	var refused []string
	for i := 0; ; i++ {
		payload := fmt.Sprintf("minority-%d", i)
		actx, acancel := context.WithTimeout(ctx, 3*time.Second)
		_, _, err := c.node(old).Append(actx, "t", evs(payload), store.ExpectAny)
		acancel()
		require.Error(t, err, "a minority leader acknowledged %s", payload)
		refused = append(refused, payload)
		if errors.Is(err, cluster.ErrNotLeader) {
			break // it stepped down
		}
		require.ErrorIs(t, err, cluster.ErrOutcomeUnknown)
	}
	var majority []int
	for i := range c.nodes {
		if i != old {
			majority = append(majority, i)
		}
	}
	leader := c.waitLeaderAmong(majority, 10*time.Second)
	_, idx, err := c.node(leader).Append(ctx, "t", evs("majority"), store.ExpectAny)
	require.NoError(t, err)

	c.heal()
	c.waitConverged(idx)
	for _, n := range c.running() {
		got := readTopic(t, n.st, "t")
		var payloads []string
		for _, e := range got {
			payloads = append(payloads, string(e.Payload))
		}
		require.Equal(t, []string{"before", "majority"}, payloads, "refused writes: %v", refused)
	}
}

// A node started without peers joins when the leader adds it, catches up
// (byte-identical store), and counts in the majority; a removed node no
// longer does.
func TestAddAndRemoveMember(t *testing.T) {
	c := newCluster(t, "leveldb", 3, nil)
	l := c.node(c.waitLeader(10 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 10 {
		_, _, err := l.Append(ctx, "t", evs(fmt.Sprintf("e%d", i)), store.ExpectAny)
		require.NoError(t, err)
	}

	c.peers = append(c.peers, cluster.Peer{ID: "n4", Addr: freeAddr(t)})
	c.nodes = append(c.nodes, &testNode{dir: t.TempDir(), join: true})
	c.start(3)
	t.Cleanup(func() { c.stop(3) })
	require.NoError(t, l.AddVoter(ctx, "n4", c.peers[3].Addr))
	members, err := l.Members()
	require.NoError(t, err)
	require.Len(t, members, 4)
	_, idx, err := l.Append(ctx, "t", evs("after-join"), store.ExpectAny)
	require.NoError(t, err)
	c.waitConverged(idx)
	require.Len(t, readTopic(t, c.running()[3].st, "t"), 11)

	var nl *cluster.NotLeaderError
	require.ErrorAs(t, c.node(3).AddVoter(ctx, "n5", "127.0.0.1:1"), &nl)

	require.NoError(t, l.RemoveServer(ctx, "n4"))
	members, err = l.Members()
	require.NoError(t, err)
	require.Len(t, members, 3)
	require.NotContains(t, members, "n4")
	_, _, err = l.Append(ctx, "t", evs("after-remove"), store.ExpectAny)
	require.NoError(t, err)
}
