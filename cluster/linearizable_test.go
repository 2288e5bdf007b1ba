package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
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

// linInput is one operation of a linearizability history: an append of
// payload to topic, or a read of the whole topic.
type linInput struct {
	topic, payload string
	read           bool
}

// linOutput is its outcome: the append's seq (unknown: the outcome was not
// known, the append may or may not have happened), or the payloads read.
type linOutput struct {
	seq     uint64
	unknown bool
	list    []string
}

// linState is a topic as the sequential model holds it: its payloads, in
// order, each followed by a 0 byte (comparable, so porcupine can cache).
type linState struct {
	n      int
	joined string
}

// appendModel is the sequential specification of one topic of the log:
// an append of one event lands at seq n+1 and is read after every event
// before it; a read returns every payload appended so far, in order.
// Operations on different topics are independent (Partition).
var appendModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byTopic := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			topic := op.Input.(linInput).topic
			if _, ok := byTopic[topic]; !ok {
				order = append(order, topic)
			}
			byTopic[topic] = append(byTopic[topic], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, topic := range order {
			out = append(out, byTopic[topic])
		}
		return out
	},
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(linState), input.(linInput), output.(linOutput)
		if in.read {
			return len(out.list) == st.n && joinPayloads(out.list) == st.joined, st
		}
		if !out.unknown && out.seq != uint64(st.n+1) {
			return false, st
		}
		return true, linState{n: st.n + 1, joined: st.joined + in.payload + "\x00"}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		if in.read {
			return fmt.Sprintf("read(%s) → %d events", in.topic, len(out.list))
		}
		if out.unknown {
			return fmt.Sprintf("append(%s, %s) → unknown", in.topic, in.payload)
		}
		return fmt.Sprintf("append(%s, %s) → seq %d", in.topic, in.payload, out.seq)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%d events", state.(linState).n) },
}

func joinPayloads(list []string) string {
	var b strings.Builder
	for _, p := range list {
		b.WriteString(p)
		b.WriteByte(0)
	}
	return b.String()
}

// history records operations with their call and return times.
type history struct {
	mu   sync.Mutex
	base time.Time
	ops  []porcupine.Operation
}

func (h *history) now() int64 { return int64(time.Since(h.base)) }

func (h *history) add(client int, in linInput, out linOutput, call, ret int64) {
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
	h.mu.Unlock()
}

// linearizabilityTime is how long TestLinearizable records its history:
// GOETHE_LINEARIZABILITY_TIME (a Go duration; make linearizability sets
// it), else 2 s, a size CI checks in seconds.
func linearizabilityTime(t *testing.T) time.Duration {
	if v := os.Getenv("GOETHE_LINEARIZABILITY_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "GOETHE_LINEARIZABILITY_TIME")
		return d
	}
	return 2 * time.Second
}

// linearizabilityAppends bounds the appends each producer of
// TestLinearizable adds to the history, acknowledged or with an unknown
// outcome (0: until the time is up; refused ones do not count): the checker's work
// grows steeply with the history, and a faster write path fits more
// appends into the same time (1,125 in 2 s made porcupine give up after a
// minute). GOETHE_LINEARIZABILITY_APPENDS overrides it for longer runs.
func linearizabilityAppends(t *testing.T) int {
	if v := os.Getenv("GOETHE_LINEARIZABILITY_APPENDS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "GOETHE_LINEARIZABILITY_APPENDS")
		return n
	}
	return 120
}

// Concurrent producers and readers on 3 served members, each call to a
// member picked at random (followers forward writes and ask the leader
// for read indexes), while the Raft links between the members are cut and
// made lossy: the history of appends (Produce, answered with their seqs)
// and reads (a linearizable GetTopic, then a Consume of that many events
// from the beginning on the same member) is linearizable against a
// per-topic append model. An append that failed with its outcome unknown
// may have happened at any time after its call; one refused before it was
// proposed (NOT_LEADER, LEADER_BUSY) and a failed read are left out.
func TestLinearizable(t *testing.T) {
	net := newFaultNet(7)
	s := newServedWith(t, "leveldb", withFaults(t, net, nil))
	s.waitLeader(10 * time.Second)
	clients := []*client.Client{s.dial(0), s.dial(1), s.dial(2)}
	topics := []string{"a", "b"}
	h := &history{base: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var appended, read atomic.Int64

	const producers, readers = 4, 3
	limit := linearizabilityAppends(t)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			for i, made := 0, 0; limit == 0 || made < limit; i++ {
				select {
				case <-stop:
					return
				default:
				}
				in := linInput{topic: topics[rng.IntN(len(topics))], payload: fmt.Sprintf("p%d-%d", p, i)}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				call := h.now()
				r, err := clients[rng.IntN(3)].Produce(ctx, in.topic, []client.EventData{{Payload: []byte(in.payload)}})
				ret := h.now()
				cancel()
				switch {
				case err == nil:
					h.add(p, in, linOutput{seq: r.FirstSeq}, call, ret)
					appended.Add(1)
					made++
				case client.IsReason(err, goethev1.ReasonNotLeader), client.IsReason(err, goethev1.ReasonLeaderBusy):
					// Refused before it was proposed: it did not happen.
				default:
					h.add(p, in, linOutput{unknown: true}, call, math.MaxInt64)
					made++
				}
			}
		}()
	}
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 2))
			for {
				select {
				case <-stop:
					return
				default:
				}
				in := linInput{topic: topics[rng.IntN(len(topics))], read: true}
				c := clients[rng.IntN(3)]
				call := h.now()
				list, err := readAll(c, in.topic)
				ret := h.now()
				if err == nil {
					h.add(producers+r, in, linOutput{list: list}, call, ret)
					read.Add(1)
				}
			}
		}()
	}

	// The nemesis: the leader cut off, then lossy and slow links, then a
	// follower cut off, each for a while, with healed spells between.
	faults := []func(){
		func() {
			if li := s.leaderIndex(); li >= 0 {
				net.isolate(s.peers[li].Addr)
			}
		},
		func() { net.setLossy(0.05, 0.05, 5*time.Millisecond) },
		func() {
			if li := s.leaderIndex(); li >= 0 {
				net.isolate(s.peers[(li+1)%3].Addr)
			}
		},
	}
	deadline := time.Now().Add(linearizabilityTime(t))
	for i := 0; time.Now().Before(deadline); i++ {
		faults[i%len(faults)]()
		time.Sleep(400 * time.Millisecond) // the fault's duration
		net.heal()
		time.Sleep(200 * time.Millisecond) // the healed spell
	}
	close(stop)
	wg.Wait()

	t.Logf("history: %d operations (%d acknowledged appends, %d reads)", len(h.ops), appended.Load(), read.Load())
	require.NotZero(t, appended.Load())
	require.NotZero(t, read.Load())
	res, info := porcupine.CheckOperationsVerbose(appendModel, h.ops, time.Minute)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("goethe-linearizability-%d.html", time.Now().UnixNano()))
		if err := porcupine.VisualizePath(appendModel, info, path); err == nil {
			t.Logf("visualization of the history: %s", path)
		}
	}
	require.Equal(t, porcupine.Ok, res, "the history is not linearizable")
}

// readAll reads topic on c linearizably: GetTopic (linearizable) gives its
// count once the member applied everything acknowledged before the call;
// a Consume of that many events from the beginning, on the same member,
// returns them (a topic only grows, so they are the events at that point).
func readAll(c *client.Client, topic string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ti, err := c.Topic(ctx, topic, client.Linearizable())
	if errors.Is(err, client.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []string
	for e, err := range c.Consume(ctx, topic, client.ConsumeOptions{Limit: ti.Count}) {
		if err != nil {
			return nil, err
		}
		list = append(list, string(e.Payload))
	}
	if uint64(len(list)) != ti.Count {
		return nil, fmt.Errorf("consumed %d events of %d", len(list), ti.Count)
	}
	return list, nil
}

// The model refuses what the log must never do: a read that misses an
// append acknowledged before the read began, and two appends at one seq.
func TestAppendModelRefusesViolations(t *testing.T) {
	ack := func(payload string, seq uint64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: linInput{topic: "t", payload: payload}, Output: linOutput{seq: seq}, Call: call, Return: ret}
	}
	rd := func(call, ret int64, list ...string) porcupine.Operation {
		return porcupine.Operation{ClientId: 1, Input: linInput{topic: "t", read: true}, Output: linOutput{list: list}, Call: call, Return: ret}
	}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"read after append", []porcupine.Operation{ack("x", 1, 0, 10), rd(20, 30, "x")}, true},
		{"concurrent read may miss", []porcupine.Operation{ack("x", 1, 0, 25), rd(20, 30)}, true},
		{"stale read", []porcupine.Operation{ack("x", 1, 0, 10), rd(20, 30)}, false},
		{"one seq twice", []porcupine.Operation{ack("x", 1, 0, 10), ack("y", 1, 20, 30)}, false},
		{"unknown may not happen", []porcupine.Operation{{Input: linInput{topic: "t", payload: "u"},
			Output: linOutput{unknown: true}, Call: 0, Return: math.MaxInt64}, rd(20, 30)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.ok, porcupine.CheckOperations(appendModel, tc.ops))
		})
	}
}
