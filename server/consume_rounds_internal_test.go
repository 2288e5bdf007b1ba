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

// A follower that joins a group behind the position its leader waits
// from (it read the end before the last commit, and joins after the
// leader's round) is sent the events it lacks at once, not at the next
// commit, which may never come; every engine.
func TestRoundsJoinBehindTheLeader(t *testing.T) {
	for _, name := range engines.Names {
		t.Run("engine="+name, func(t *testing.T) {
			e, err := engines.Open(name, t.TempDir())
			require.NoError(t, err)
			st, err := store.Open(e, store.DefaultOptions())
			require.NoError(t, err)
			t.Cleanup(func() { st.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var next []uint64 // next[k]: the position after event k+1
			for range 3 {
				_, err := st.Append(ctx, "t", []store.Event{{Payload: []byte("x")}}, store.ExpectAny)
				require.NoError(t, err)
				p, err := st.Read("t", 0, 10)
				require.NoError(t, err)
				next = append(next, p.Next)
			}
			page, err := st.Read("t", 0, 10)
			require.NoError(t, err)
			require.Len(t, page.Events, 3)
			topicID := page.TopicID

			gs := newTailGroups(st, 100, time.Hour, 0, nil)
			var wg sync.WaitGroup
			defer wg.Wait() // before the store closes
			defer cancel()
			follow := func(pos, want uint64) *recordingStream {
				rs := &recordingStream{ctx: ctx}
				w := newSendWatch(time.Hour, ctx.Done(), ctx.Err)
				wg.Go(func() {
					_, _, joined, err := gs.follow(ctx, w, rs, "t", topicID, pos, want)
					if ctx.Err() == nil {
						t.Errorf("follow returned early: joined %v, %v", joined, err)
					}
				})
				return rs
			}
			leader := follow(next[2], 4) // at the end: leads, waits from there
			require.Eventually(t, func() bool {
				gs.mu.Lock()
				g := gs.groups["t"]
				gs.mu.Unlock()
				if g == nil {
					return false
				}
				g.mu.Lock()
				defer g.mu.Unlock()
				return g.waitCancel != nil && g.waitFrom == next[2]
			}, 20*time.Second, time.Millisecond)
			behind := follow(next[0], 2) // has event 1, lacks 2 and 3
			require.Eventually(t, func() bool { return len(behind.got()) == 2 }, 20*time.Second, time.Millisecond)
			require.Equal(t, []uint64{2, 3}, behind.got())
			require.Empty(t, leader.got(), "the leader had every event")

			// Both are sent the next event once.
			_, err = st.Append(ctx, "t", []store.Event{{Payload: []byte("x")}}, store.ExpectAny)
			require.NoError(t, err)
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
			e, err := engines.Open(name, t.TempDir())
			require.NoError(t, err)
			st, err := store.Open(e, store.DefaultOptions())
			require.NoError(t, err)
			t.Cleanup(func() { st.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			var next []uint64 // next[k]: the position after event k+1
			appendOne := func() {
				_, err := st.Append(ctx, "t", []store.Event{{Payload: []byte("x")}}, store.ExpectAny)
				require.NoError(t, err)
				p, err := st.Read("t", 0, 10)
				require.NoError(t, err)
				next = append(next, p.Next)
			}
			appendOne()
			appendOne()
			page, err := st.Read("t", 0, 10)
			require.NoError(t, err)
			topicID := page.TopicID

			gs := newTailGroups(st, 100, time.Hour, 300*time.Millisecond, nil)
			gs.lingerMin = 1
			var wg sync.WaitGroup
			defer wg.Wait() // before the store closes
			defer cancel()
			follow := func(pos, want uint64) *recordingStream {
				rs := &recordingStream{ctx: ctx}
				w := newSendWatch(time.Hour, ctx.Done(), ctx.Err)
				wg.Go(func() { gs.follow(ctx, w, rs, "t", topicID, pos, want) })
				return rs
			}
			leader := follow(next[1], 3)
			require.Eventually(t, func() bool {
				gs.mu.Lock()
				g := gs.groups["t"]
				gs.mu.Unlock()
				if g == nil {
					return false
				}
				g.mu.Lock()
				defer g.mu.Unlock()
				return g.waitCancel != nil
			}, 20*time.Second, time.Millisecond)
			appendOne() // event 3: the leader wakes and lingers 300 ms
			late := follow(next[0], 0)
			require.Eventually(t, func() bool { return len(late.got()) >= 2 && len(leader.got()) >= 1 }, 20*time.Second, time.Millisecond)
			require.Equal(t, []uint64{2, 3}, late.got())
			require.Equal(t, []uint64{3}, leader.got())
		})
	}
}
