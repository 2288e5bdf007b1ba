package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/goethe-log/goethe/engines"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// recordingStream is the server side of a Consume stream that keeps what
// is sent to it: the seqs of the events, in order.
type recordingStream struct {
	grpc.ServerStream // not used: Send and Context are all a round calls
	ctx               context.Context

	mu   sync.Mutex
	seqs []uint64
}

func (r *recordingStream) Context() context.Context { return r.ctx }

func (r *recordingStream) Send(m *goethev1.ConsumeResponse) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range m.Events {
		r.seqs = append(r.seqs, e.Seq)
	}
	return nil
}

func (r *recordingStream) got() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.seqs...)
}

// roundsFixture is a store on engine name with topic "t" of n events, and
// tail groups over it: next[k] is the position after event k+1; follow
// starts a follower in the groups, recording what it is sent, until the
// test ends (the store closes after every follower has returned).
type roundsFixture struct {
	t       *testing.T
	st      *store.Store
	gs      *tailGroups
	ctx     context.Context
	topicID uint64
	next    []uint64
	wg      sync.WaitGroup
}

func newRoundsFixture(t *testing.T, name string, n int, linger time.Duration) *roundsFixture {
	e, err := engines.Open(name, t.TempDir())
	require.NoError(t, err)
	st, err := store.Open(e, store.DefaultOptions())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	f := &roundsFixture{t: t, st: st, ctx: ctx, gs: newTailGroups(st, 100, time.Hour, linger, nil)}
	t.Cleanup(func() {
		cancel()
		f.wg.Wait()
		st.Close()
	})
	for range n {
		f.appendOne()
	}
	page, err := st.Read("t", 0, 10)
	require.NoError(t, err)
	f.topicID = page.TopicID
	return f
}

// appendOne appends an event to "t" and records the position after it.
func (f *roundsFixture) appendOne() {
	_, err := f.st.Append(f.ctx, "t", []store.Event{{Payload: []byte("x")}}, store.ExpectAny)
	require.NoError(f.t, err)
	p, err := f.st.Read("t", 0, 10)
	require.NoError(f.t, err)
	f.next = append(f.next, p.Next)
}

func (f *roundsFixture) follow(pos, want uint64) *recordingStream {
	rs := &recordingStream{ctx: f.ctx}
	w := newSendWatch(time.Hour, f.ctx.Done(), f.ctx.Err)
	f.wg.Go(func() {
		_, _, joined, err := f.gs.follow(f.ctx, w, rs, "t", f.topicID, pos, want)
		if f.ctx.Err() == nil {
			f.t.Errorf("follow returned early: joined %v, %v", joined, err)
		}
	})
	return rs
}

// leaderWaits waits until the group's leader waits for a commit.
func (f *roundsFixture) leaderWaits() {
	require.Eventually(f.t, func() bool {
		f.gs.mu.Lock()
		g := f.gs.groups["t"]
		f.gs.mu.Unlock()
		if g == nil {
			return false
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.waitCancel != nil
	}, 20*time.Second, time.Millisecond)
}

// A follower that joins a group behind the position its leader waits
// from (it read the end before the last commit, and joins after the
// leader's round) is sent the events it lacks at once, not at the next
// commit, which may never come; every engine.
func TestRoundsJoinBehindTheLeader(t *testing.T) {
	for _, name := range engines.Names {
		t.Run("engine="+name, func(t *testing.T) {
			f := newRoundsFixture(t, name, 3, 0)
			leader := f.follow(f.next[2], 4) // at the end: leads, waits from there
			f.leaderWaits()
			behind := f.follow(f.next[0], 2) // has event 1, lacks 2 and 3
			require.Eventually(t, func() bool { return len(behind.got()) == 2 }, 20*time.Second, time.Millisecond)
			require.Equal(t, []uint64{2, 3}, behind.got())
			require.Empty(t, leader.got(), "the leader had every event")

			// Both are sent the next event once.
			f.appendOne()
			require.Eventually(t, func() bool { return len(behind.got()) == 3 && len(leader.got()) == 1 }, 20*time.Second, time.Millisecond)
			require.Equal(t, []uint64{2, 3, 4}, behind.got())
			require.Equal(t, []uint64{4}, leader.got())
		})
	}
}

// A follower that does not know the seq it expects (want 0: a start by
// time, nothing delivered yet) and joins behind a round that already read
// its page (during the linger) is not sent that page, which would skip
// the events before it unseen: it gets every event from its position, in
// the next round; every engine.
func TestRoundsJoinDuringLinger(t *testing.T) {
	for _, name := range engines.Names {
		t.Run("engine="+name, func(t *testing.T) {
			f := newRoundsFixture(t, name, 2, 300*time.Millisecond)
			f.gs.lingerMin = 1
			leader := f.follow(f.next[1], 3)
			f.leaderWaits()
			f.appendOne() // event 3: the leader wakes and lingers 300 ms
			late := f.follow(f.next[0], 0)
			require.Eventually(t, func() bool { return len(late.got()) >= 2 && len(leader.got()) >= 1 }, 20*time.Second, time.Millisecond)
			require.Equal(t, []uint64{2, 3}, late.got())
			require.Equal(t, []uint64{3}, leader.got())
		})
	}
}

// TestRoundsLeadNeverBlocks: naming a member leader again and again before
// its goroutine reads the signal (a deposed leader, still in a stalled
// Send, that the watchdog names again) never blocks. It did: the lead was
// a note in a channel of two, the watchdog sent the third under the
// group's lock, and every follower of the topic stopped receiving (found
// in the closed loop of BenchmarkFanoutProduceChildOneCPU and of
// results/e2e/fanout/rerun-0756).
func TestRoundsLeadNeverBlocks(t *testing.T) {
	g := &tailGroup{}
	stalled := &tailMember{notes: make(chan tailNote, 1), lead: make(chan struct{}, 1)}
	g.members = []*tailMember{stalled}
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.mu.Lock()
		defer g.mu.Unlock()
		for range 10 {
			g.passLeadLocked(nil)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("naming a member leader blocked the group")
	}
	require.Same(t, stalled, g.leader)
	require.Len(t, stalled.lead, 1, "the signals coalesce into one")
}
