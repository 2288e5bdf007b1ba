package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// ackLog is what concurrent producers learned of their appends: which
// payloads were acknowledged (where, and when), and which may or may not
// have been stored (outcome unknown). Appends refused before they were
// proposed (not the leader, leader busy) are in neither.
type ackLog struct {
	mu      sync.Mutex
	acked   map[string]store.AppendResult
	ackedAt map[string]time.Time // acknowledgement, of appends started at startAt
	startAt map[string]time.Time
	unknown map[string]bool
}

func newAckLog() *ackLog {
	return &ackLog{acked: map[string]store.AppendResult{}, ackedAt: map[string]time.Time{}, startAt: map[string]time.Time{}, unknown: map[string]bool{}}
}

// record files the outcome of the append of payload, started at start.
func (a *ackLog) record(payload string, start time.Time, res store.AppendResult, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err == nil:
		a.acked[payload] = res
		a.ackedAt[payload] = time.Now()
		a.startAt[payload] = start
	case errors.Is(err, cluster.ErrNotLeader), errors.Is(err, cluster.ErrUnavailable):
		// Not proposed: nothing stored.
	default:
		a.unknown[payload] = true
	}
}

// firstAckAfter returns the time of the first acknowledgement of an
// append started after t.
func (a *ackLog) firstAckAfter(t time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first time.Time
	for p, at := range a.ackedAt {
		if a.startAt[p].After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked)
}

// produce runs producers goroutines, each appending one event at a time to
// one of topics through whichever node leads, until stop is closed. Each
// append is bounded by perCall (a partitioned leader's appends end with
// ErrOutcomeUnknown then). It returns once every producer stopped.
func produce(c *testCluster, producers int, topics []string, perCall time.Duration, stop <-chan struct{}, log *ackLog) func() {
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := topics[p%len(topics)]
			for attempt := 0; ; attempt++ {
				select {
				case <-stop:
					return
				default:
				}
				li := c.leaderIndex()
				if li < 0 {
					c.waitAnyLeaderChange(stop)
					continue
				}
				node := c.node(li)
				if node == nil {
					continue
				}
				payload := fmt.Sprintf("p%d-%d", p, attempt)
				ctx, cancel := context.WithTimeout(context.Background(), perCall)
				start := time.Now()
				res, _, err := node.Append(ctx, topic, evs(payload), store.ExpectAny)
				cancel()
				log.record(payload, start, res, err)
			}
		}()
	}
	return wg.Wait
}

// waitAnyLeaderChange waits until a running node's view of the leader may
// have changed, stop is closed, or 100 ms passed.
func (c *testCluster) waitAnyLeaderChange(stop <-chan struct{}) {
	var chans []<-chan struct{}
	for _, n := range c.running() {
		chans = append(chans, n.node.LeaderChanged())
	}
	timeout := time.NewTimer(100 * time.Millisecond)
	defer timeout.Stop()
	done := make(chan struct{})
	defer close(done)
	woken := make(chan struct{}, len(chans))
	for _, ch := range chans {
		go func() {
			select {
			case <-ch:
				woken <- struct{}{}
			case <-done:
			}
		}()
	}
	select {
	case <-woken:
	case <-stop:
	case <-timeout.C:
	}
}

// checkProduced checks every running node against log: in each topic,
// seqs are dense and ids increase; no payload is stored twice; every
// acknowledged payload is stored where its acknowledgement said; a stored
// payload that was not acknowledged had an unknown outcome.
func checkProduced(t *testing.T, c *testCluster, topics []string, log *ackLog) {
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, n := range c.running() {
		seen := map[string]bool{}
		for _, topic := range topics {
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
					require.Equal(t, r.FirstID, e.ID, "%s: id", payload)
					require.Equal(t, r.FirstSeq, e.Seq, "%s: seq", payload)
				} else {
					require.True(t, log.unknown[payload], "%s was stored but neither acknowledged nor unknown", payload)
				}
			}
		}
		for payload := range log.acked {
			require.True(t, seen[payload], "acknowledged %s lost", payload)
		}
	}
}

// finalWrite makes one more acknowledged write through the leader, once
// the cluster healed, and returns its index: every running node must
// apply up to it.
func finalWrite(t *testing.T, c *testCluster) uint64 {
	var idx uint64
	require.Eventually(t, func() bool {
		li := c.leaderIndex()
		if li < 0 {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		_, idx, err = c.node(li).Append(ctx, "final", evs("final"), store.ExpectAny)
		return err == nil
	}, 20*time.Second, 20*time.Millisecond)
	return idx
}

// Faults under 8 concurrent producers (4 topics) on 3 nodes over TCP with
// a fault-injecting transport: no acknowledged event is lost or
// duplicated, an event of unknown outcome is stored at most once, and once
// the faults end every node holds the same records, byte for byte. The
// failover of each scenario (fault to the first acknowledged write after
// it) is logged.
//
//   - kill-leader: the leader stops (no handover) and comes back later;
//   - partition-leader: the leader is cut off both ways: as a minority it
//     acknowledges nothing, the majority elects and takes writes, and the
//     old leader converges when the cut heals;
//   - lossy: 5% of RPCs lost before they are sent, 5% after (the receiver
//     acted on them), each delayed up to 4 ms;
//   - slow: every RPC delayed up to 30 ms, above the commit timeout;
//   - snapshot-catch-up: a follower stopped while the leader snapshots by
//     itself and truncates its log catches up from a snapshot once back.
func TestFaultsUnderLoad(t *testing.T) {
	type scenario struct {
		name  string
		tweak func(*cluster.Config)
		fault func(c *testCluster, net *faultNet, leader int) (heal func())
		after func(t *testing.T, c *testCluster, leader int) // checks once converged
	}
	scenarios := []scenario{
		{name: "kill-leader", fault: func(c *testCluster, _ *faultNet, leader int) func() {
			c.stop(leader)
			return func() { c.start(leader) }
		}},
		{name: "partition-leader", fault: func(c *testCluster, net *faultNet, leader int) func() {
			net.isolate(c.peers[leader].Addr)
			return net.heal
		}},
		{name: "lossy", fault: func(_ *testCluster, net *faultNet, _ int) func() {
			net.setLossy(0.05, 0.05, 4*time.Millisecond)
			return net.heal
		}},
		{name: "slow", fault: func(_ *testCluster, net *faultNet, _ int) func() {
			net.setLossy(0, 0, 30*time.Millisecond)
			return net.heal
		}},
		// A follower down while the leader snapshots by itself (a small
		// threshold) and truncates its log: restarted, it catches up from
		// a snapshot, under load.
		{name: "snapshot-catch-up", tweak: func(cfg *cluster.Config) {
			cfg.SnapshotThreshold, cfg.SnapshotInterval, cfg.TrailingLogs = 32, 50*time.Millisecond, 8
			cfg.SegmentSize = 2048 // see TestRestartedFollowerCatchesUp
		}, fault: func(c *testCluster, _ *faultNet, leader int) func() {
			last := c.node((leader + 1) % 3).Status().LastIndex
			c.stop((leader + 1) % 3)
			return func() {
				// Back once the leader's log no longer reaches where the
				// follower stopped (the producers keep it growing, and
				// the threshold snapshots and truncates it).
				require.Eventually(c.t, func() bool { return c.node(leader).Status().FirstIndex > last+1 }, 20*time.Second,
					10*time.Millisecond, "the leader truncates its log")
				c.start((leader + 1) % 3)
			}
		}, after: func(t *testing.T, c *testCluster, leader int) {
			require.NotZero(t, c.node((leader+1)%3).Status().SnapshotsRestored, "caught up from a snapshot")
		}},
	}
	for _, sc := range scenarios {
		// Every scenario on every engine: the bar is no
		// acknowledged event lost or duplicated on all three.
		for _, engineName := range engines.Names {
			t.Run(sc.name+"/"+engineName, func(t *testing.T) { runFaultScenario(t, engineName, sc.tweak, sc.fault, sc.after) })
		}
	}
}

// runFaultScenario is one scenario of TestFaultsUnderLoad on one engine.
func runFaultScenario(t *testing.T, engineName string, tweak func(*cluster.Config),
	fault func(c *testCluster, net *faultNet, leader int) (heal func()), after func(t *testing.T, c *testCluster, leader int)) {
	name := t.Name()
	net := newFaultNet(uint64(len(name)))
	c := newCluster(t, engineName, 3, withFaults(t, net, tweak))
	leader := c.waitLeader(10 * time.Second)
	topics := []string{"t0", "t1", "t2", "t3"}
	log := newAckLog()
	stop := make(chan struct{})
	wait := produce(c, 8, topics, 2*time.Second, stop, log)
	require.Eventually(t, func() bool { return log.count() >= 50 }, 20*time.Second, 5*time.Millisecond)

	start := time.Now()
	heal := fault(c, net, leader)
	before := log.count()
	require.Eventually(t, func() bool { return log.count() >= before+100 }, 20*time.Second, 5*time.Millisecond,
		"writes go on under the fault")
	if at, ok := log.firstAckAfter(start); ok {
		t.Logf("%s: first acknowledged write %v after the fault", name, at.Sub(start))
	}
	heal()
	healed := log.count()
	require.Eventually(t, func() bool { return log.count() >= healed+50 }, 20*time.Second, 5*time.Millisecond,
		"writes go on after the fault")
	close(stop)
	wait()

	c.waitLeader(10 * time.Second)
	c.waitConverged(finalWrite(t, c))
	checkProduced(t, c, topics, log)
	if after != nil {
		after(t, c, leader)
	}
	log.mu.Lock()
	t.Logf("%s: %d acknowledged, %d of unknown outcome", name, len(log.acked), len(log.unknown))
	log.mu.Unlock()
}

// The leader stops under 8 concurrent producers: a new leader is elected
// (the time is measured and logged: the target is 3 s), and the first
// write after the loss is acknowledged.
func TestFailoverTime(t *testing.T) {
	c := newCluster(t, "leveldb", 3, nil)
	leader := c.waitLeader(10 * time.Second)
	log := newAckLog()
	stop := make(chan struct{})
	topics := []string{"a", "b"}
	wait := produce(c, 8, topics, 2*time.Second, stop, log)
	defer func() {
		close(stop)
		wait()
	}()
	require.Eventually(t, func() bool { return log.count() >= 20 }, 20*time.Second, 5*time.Millisecond)
	start := time.Now()
	c.stop(leader)
	var others []int
	for i := range 3 {
		if i != leader {
			others = append(others, i)
		}
	}
	next := c.waitLeaderAmong(others, 10*time.Second)
	elected := time.Since(start)
	var acked time.Time
	require.Eventually(t, func() bool {
		var ok bool
		acked, ok = log.firstAckAfter(start)
		return ok
	}, 10*time.Second, 5*time.Millisecond)
	t.Logf("new leader %s elected %v after the leader stopped; first acknowledged write after %v (target: 3 s)",
		c.peers[next].ID, elected, acked.Sub(start))
}
