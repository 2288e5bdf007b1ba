package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine/faultengine"
	"github.com/goethe-log/goethe/engines"
)

// tailForEngine runs f once per engine.
func tailForEngine(t *testing.T, f func(t *testing.T, name string)) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, name)
		})
	}
}

func tailOpen(t *testing.T, name, dir string, opts Options) *Store {
	t.Helper()
	e, err := engines.Open(name, dir)
	require.NoError(t, err)
	s, err := Open(e, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// tailView returns the view readers of topic see now (nil: none).
func tailViewOf(t *testing.T, s *Store, topic string) *tailView {
	t.Helper()
	tp, err := s.lookup(topic)
	require.NoError(t, err)
	return tp.tail.view.Load()
}

// follow makes topic followed as a Read at its end does.
func follow(t *testing.T, s *Store, topic string) {
	t.Helper()
	ti, err := s.Info(topic)
	require.NoError(t, err)
	p, err := s.Read(topic, After(ti.LastID), 0)
	require.NoError(t, err)
	require.Empty(t, p.Events)
}

// randomEvents makes n events with payloads of 0 to maxPayload bytes and,
// for some, headers.
func randomEvents(rng *rand.Rand, n, maxPayload int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		p := make([]byte, rng.IntN(maxPayload+1))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		evs[i].Payload = p
		if rng.IntN(3) == 0 {
			evs[i].Headers = map[string]string{"k": fmt.Sprint(i), "type": "x"}
			if rng.IntN(2) == 0 {
				evs[i].Headers[""] = ""
			}
		}
	}
	return evs
}

// TestTailReadsMatchEngine: every Read of a followed topic, served from
// the ring where it can be, returns exactly the page an engine read
// returns, for every position around the ring and several page limits,
// with small ring and page bounds so that eviction, restarts and page
// cuts all happen.
func TestTailReadsMatchEngine(t *testing.T) {
	tailForEngine(t, func(t *testing.T, name string) {
		opts := DefaultOptions()
		opts.UnsafeNoSync = true
		opts.TailEvents, opts.TailBytes = 40, 6<<10
		opts.PageEvents, opts.PageBytes = 25, 3<<10
		s := tailOpen(t, name, t.TempDir(), opts)
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		_, err := s.Append(ctx, "t", randomEvents(rng, 3, 100), ExpectAny)
		require.NoError(t, err)
		follow(t, s, "t")
		tp, err := s.lookup("t")
		require.NoError(t, err)
		served := 0
		for round := range 60 {
			n := 1 + rng.IntN(12)
			if round%15 == 14 {
				n = 60 // more than the ring holds
			}
			_, err := s.Append(ctx, "t", randomEvents(rng, n, 700), ExpectAny)
			require.NoError(t, err)
			all := readAllEngine(t, s, tp)
			last := all[len(all)-1].ID
			froms := []uint64{0, all[0].ID, last, last + 1, last + 1000}
			for i := max(0, len(all)-70); i < len(all); i++ {
				froms = append(froms, all[i].ID, all[i].ID+1)
			}
			for _, from := range froms {
				for _, limit := range []int{0, 1, 7, 1000} {
					got, err := s.Read("t", from, limit)
					require.NoError(t, err)
					if limit <= 0 || limit > opts.PageEvents {
						limit = opts.PageEvents
					}
					want := Page{Next: from}
					if from <= last {
						want, err = s.readEngine(tp, from, last, limit)
						require.NoError(t, err)
					}
					if len(want.Events) == 0 && len(got.Events) == 0 {
						want.Events, got.Events = nil, nil
					}
					require.Equal(t, want, got, "round %d from %d limit %d", round, from, limit)
					if _, ok := tp.tail.read(from, last, limit, opts.PageBytes); ok && len(got.Events) > 0 {
						served++
					}
				}
			}
			follow(t, s, "t")
		}
		require.Greater(t, served, 1000, "reads served from the ring")
	})
}

// readAllEngine reads the whole topic from the engine.
func readAllEngine(t *testing.T, s *Store, tp *topic) []Event {
	t.Helper()
	var all []Event
	last := tp.pub.Load().lastID
	for from := uint64(0); ; {
		p, err := s.readEngine(tp, from, last, s.opts.PageEvents)
		require.NoError(t, err)
		if len(p.Events) == 0 {
			return all
		}
		all = append(all, p.Events...)
		from = p.Next
	}
}

// TestTailBounds: the ring holds at most TailEvents events and TailBytes
// stored bytes, at and past each bound; an event larger than TailBytes is
// never in it; dropped events' memory is let go (compaction keeps the
// array within about twice the bounds).
func TestTailBounds(t *testing.T) {
	const maxEvents, payload = 8, 100
	size := storedSize(&Event{Payload: make([]byte, payload)}, 1)
	cases := []struct {
		name      string
		maxBytes  int
		appends   []int // events per append
		wantCount int
	}{
		{"events/at", 1 << 20, []int{8}, 8},
		{"events/past", 1 << 20, []int{8, 1}, 8},
		{"events/one-append-past", 1 << 20, []int{9}, 8},
		{"bytes/at", 5 * size, []int{5}, 5},
		{"bytes/past", 5 * size, []int{5, 1}, 5},
		{"bytes/below-one", size - 1, []int{1, 1}, 0},
		{"many", 5*size + size/2, []int{3, 1, 4, 1, 5, 9, 2, 6}, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := DefaultOptions()
			opts.UnsafeNoSync = true
			opts.TailEvents, opts.TailBytes = maxEvents, c.maxBytes
			s := tailOpen(t, "leveldb", t.TempDir(), opts)
			ctx := context.Background()
			_, err := s.Append(ctx, "t", []Event{{Payload: []byte("first")}}, ExpectAny)
			require.NoError(t, err)
			follow(t, s, "t")
			tp, _ := s.lookup("t")
			ids := []uint64{tp.pub.Load().lastID}
			for _, n := range c.appends {
				evs := make([]Event, n)
				for i := range evs {
					evs[i].Payload = make([]byte, payload)
				}
				res, err := s.Append(ctx, "t", evs, ExpectAny)
				require.NoError(t, err)
				for i := range n {
					ids = append(ids, res.FirstID+uint64(i))
				}
				tl := &tp.tail
				require.LessOrEqual(t, len(tl.buf)-tl.head, maxEvents)
				require.LessOrEqual(t, tl.live, c.maxBytes)
				require.LessOrEqual(t, tl.dead, c.maxBytes)
				require.Less(t, tl.head, maxEvents)
			}
			v := tailViewOf(t, s, "t")
			if c.wantCount == 0 {
				require.Nil(t, v)
				return
			}
			require.NotNil(t, v)
			require.Len(t, v.events, c.wantCount)
			keep := ids[len(ids)-c.wantCount:]
			for i, e := range v.events {
				require.Equal(t, keep[i], e.ID)
				require.Equal(t, size, v.sizes[i])
			}
			bytes := 0
			for _, n := range v.sizes {
				bytes += n
			}
			require.LessOrEqual(t, bytes, c.maxBytes)
			require.Equal(t, ids[len(ids)-c.wantCount-1], v.before, "before is the event just before the ring")
		})
	}
}

// TestTailIdle: a ring is kept while a reader came to the topic's end
// within TailIdle, at the bound included, and dropped by the first commit
// past it; a negative TailEvents keeps none.
func TestTailIdle(t *testing.T) {
	var clock atomic.Int64
	clock.Store(int64(time.Hour))
	opts := DefaultOptions()
	opts.UnsafeNoSync = true
	opts.TailIdle = time.Second
	opts.Clock = clock.Load
	s := tailOpen(t, "leveldb", t.TempDir(), opts)
	ctx := context.Background()
	appendOne := func() {
		clock.Add(1)
		_, err := s.Append(ctx, "t", []Event{{Payload: []byte("x")}}, ExpectAny)
		require.NoError(t, err)
	}
	appendOne()
	appendOne()
	require.Nil(t, tailViewOf(t, s, "t"), "nobody follows: no ring")
	follow(t, s, "t")
	appendOne() // the commit that finds the mark
	require.NotNil(t, tailViewOf(t, s, "t"))
	clock.Add(int64(time.Second) - 1)
	appendOne() // exactly TailIdle after
	require.NotNil(t, tailViewOf(t, s, "t"))
	appendOne() // past it
	require.Nil(t, tailViewOf(t, s, "t"))

	opts.TailEvents = -1
	off := tailOpen(t, "leveldb", t.TempDir(), opts)
	_, err := off.Append(ctx, "t", []Event{{Payload: []byte("x")}}, ExpectAny)
	require.NoError(t, err)
	follow(t, off, "t")
	_, err = off.Append(ctx, "t", []Event{{Payload: []byte("y")}}, ExpectAny)
	require.NoError(t, err)
	require.Nil(t, tailViewOf(t, off, "t"))
}

// TestTailFailedWriteNeverServed: an append whose engine write fails is
// never in the ring and never read, on every engine, also when the engine
// took the batch before failing (the outcome-unknown case).
func TestTailFailedWriteNeverServed(t *testing.T) {
	tailForEngine(t, func(t *testing.T, name string) {
		for _, mode := range []faultengine.Mode{faultengine.BeforeApply, faultengine.AfterApply} {
			e, err := engines.Open(name, t.TempDir())
			require.NoError(t, err)
			fe := faultengine.Wrap(e)
			opts := DefaultOptions()
			opts.UnsafeNoSync = true
			s, err := Open(fe, opts)
			require.NoError(t, err)
			ctx := context.Background()
			res, err := s.Append(ctx, "t", []Event{{Payload: []byte("ok")}}, ExpectAny)
			require.NoError(t, err)
			follow(t, s, "t")
			_, err = s.Append(ctx, "t", []Event{{Payload: []byte("ok2")}}, ExpectAny)
			require.NoError(t, err)
			fe.FailNextWrites(1, mode)
			_, err = s.Append(ctx, "t", []Event{{Payload: []byte("failed")}}, ExpectAny)
			require.Error(t, err, mode)
			v := tailViewOf(t, s, "t")
			require.NotNil(t, v)
			for _, e := range v.events {
				require.NotEqual(t, "failed", string(e.Payload))
			}
			p, err := s.Read("t", res.FirstID, 0)
			require.NoError(t, err)
			require.Len(t, p.Events, 2, mode)
			require.Equal(t, "ok2", string(p.Events[1].Payload))
			require.NoError(t, s.Close())
		}
	})
}

// TestTailConcurrentFollowers: followers doing what Consume does (Read,
// Wait at the end) while appends commit, some failing their expectation,
// each receive every committed event in order with its payload, and none
// of a failed append; more followers than wakeInlineMax, so the waker
// goroutine wakes them. Run with -race.
func TestTailConcurrentFollowers(t *testing.T) {
	tailForEngine(t, func(t *testing.T, name string) {
		opts := DefaultOptions()
		opts.UnsafeNoSync = true
		opts.TailEvents, opts.TailBytes = 64, 16<<10
		opts.PageEvents = 50
		s := tailOpen(t, name, t.TempDir(), opts)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const followers, appends = 3 * wakeInlineMax, 300
		_, err := s.Append(ctx, "t", []Event{{Payload: []byte("seq 1")}}, ExpectAny)
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make(chan error, followers+2)
		for range followers {
			wg.Go(func() {
				pos, seq := FromBeginning, uint64(0)
				for seq < appends*2+1 {
					p, err := s.Read("t", pos, 0)
					if err != nil {
						errs <- err
						return
					}
					if len(p.Events) == 0 {
						if err := s.Wait(ctx, "t", pos); err != nil {
							errs <- err
							return
						}
						continue
					}
					for _, e := range p.Events {
						seq++
						if want := fmt.Sprintf("seq %d", seq); e.Seq != seq || string(e.Payload) != want {
							errs <- fmt.Errorf("got seq %d %q, want %d %q", e.Seq, e.Payload, seq, want)
							return
						}
					}
					pos = p.Next
				}
			})
		}
		wg.Go(func() { // appends that always fail their expectation
			for i := 0; ctx.Err() == nil && i < appends; i++ {
				_, err := s.Append(ctx, "t", []Event{{Payload: []byte("conflict")}}, ExpectLastSeq(0))
				if !errors.Is(err, ErrConflict) {
					errs <- fmt.Errorf("conflicting append: %v", err)
					return
				}
			}
		})
		for i := range appends {
			seq := uint64(2*i + 1)
			evs := []Event{{Payload: fmt.Appendf(nil, "seq %d", seq+1)}, {Payload: fmt.Appendf(nil, "seq %d", seq+2)}}
			_, err := s.Append(ctx, "t", evs, ExpectLastSeq(seq))
			require.NoError(t, err)
			// The appender's buffers are its own again: the ring copied them.
			evs[0].Payload[0], evs[1].Payload[0] = 'X', 'X'
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(time.Minute):
			t.Fatal("followers did not receive every event within a minute")
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	})
}

// TestTailAfterReopen: after a reopen the ring is empty and Reads at the
// end come from the engine, then from the ring once it fills again.
func TestTailAfterReopen(t *testing.T) {
	tailForEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		opts := DefaultOptions()
		ctx := context.Background()
		s := tailOpen(t, name, dir, opts)
		res, err := s.Append(ctx, "t", []Event{{Payload: []byte("a")}, {Payload: []byte("b")}}, ExpectAny)
		require.NoError(t, err)
		follow(t, s, "t")
		_, err = s.Append(ctx, "t", []Event{{Payload: []byte("c")}}, ExpectAny)
		require.NoError(t, err)
		require.NotNil(t, tailViewOf(t, s, "t"))
		require.NoError(t, s.Close())

		s = tailOpen(t, name, dir, opts)
		require.Nil(t, tailViewOf(t, s, "t"))
		p, err := s.Read("t", res.FirstID+1, 0)
		require.NoError(t, err)
		require.Len(t, p.Events, 2)
		require.Equal(t, "c", string(p.Events[1].Payload))
		end, err := s.Read("t", p.Next, 0) // at the end: followed again
		require.NoError(t, err)
		require.Empty(t, end.Events)
		_, err = s.Append(ctx, "t", []Event{{Payload: []byte("d")}}, ExpectAny)
		require.NoError(t, err)
		v := tailViewOf(t, s, "t")
		require.NotNil(t, v)
		require.Equal(t, p.Events[1].ID, v.before)
		p, err = s.Read("t", p.Next, 0)
		require.NoError(t, err)
		require.Len(t, p.Events, 1)
		require.Equal(t, "d", string(p.Events[0].Payload))
	})
}

// TestWaitManyWaiters: a commit wakes every waiter, as many as the
// committer wakes itself (wakeInlineMax) and more (the waker goroutine's),
// also waiters that started before the topic existed; a closed store ends
// every Wait with ErrClosed.
func TestWaitManyWaiters(t *testing.T) {
	for _, n := range []int{1, wakeInlineMax, wakeInlineMax + 1, 4 * wakeInlineMax} {
		t.Run(fmt.Sprintf("waiters=%d", n), func(t *testing.T) {
			t.Parallel()
			testWaitManyWaiters(t, n)
		})
	}
}

func testWaitManyWaiters(t *testing.T, n int) {
	opts := DefaultOptions()
	opts.UnsafeNoSync = true
	s := tailOpen(t, "leveldb", t.TempDir(), opts)
	ctx := context.Background()
	var woken atomic.Int32
	results := make(chan error, 2*n)
	for range n {
		go func() { results <- s.Wait(ctx, "new", FromBeginning) }()
	}
	_, err := s.Append(ctx, "new", []Event{{Payload: []byte("a")}}, ExpectAny)
	require.NoError(t, err)
	for range n {
		require.NoError(t, <-results)
	}
	ti, err := s.Info("new")
	require.NoError(t, err)
	for range n {
		go func() {
			err := s.Wait(ctx, "new", After(ti.LastID))
			woken.Add(1)
			results <- err
		}()
	}
	tp, _ := s.lookup("new")
	require.Eventually(t, func() bool { return blocked(tp) == n }, 10*time.Second, time.Millisecond)
	require.Zero(t, woken.Load())
	_, err = s.Append(ctx, "new", []Event{{Payload: []byte("b")}}, ExpectAny)
	require.NoError(t, err)
	for range n {
		require.NoError(t, <-results)
	}
	for range n {
		go func() { results <- s.Wait(ctx, "new", After(ti.LastID)+1<<62) }()
	}
	require.Eventually(t, func() bool { return blocked(tp) == n }, 10*time.Second, time.Millisecond)
	require.NoError(t, s.Close())
	for range n {
		require.ErrorIs(t, <-results, ErrClosed)
	}
}

// TestTailGroupCommits: with several appenders on one topic, groups carry
// many appends (and several of the same topic); every follower receives
// exactly the events an engine read of the whole topic returns.
func TestTailGroupCommits(t *testing.T) {
	tailForEngine(t, func(t *testing.T, name string) {
		opts := DefaultOptions()
		opts.TailEvents, opts.TailBytes = 100, 32<<10
		opts.PageEvents = 30
		e, err := engines.Open(name, t.TempDir())
		require.NoError(t, err)
		f := faultengine.Wrap(e)
		s, err := Open(f, opts)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		ctx := context.Background()
		_, err = s.Append(ctx, "t", []Event{{Payload: []byte("first")}}, ExpectAny)
		require.NoError(t, err)
		// One group of several appends for certain: three queue while a
		// commit is held in its engine write.
		release := f.BlockWrites()
		done := make(chan error, 4)
		go func() {
			_, err := s.Append(ctx, "t", []Event{{Payload: []byte("lead")}}, ExpectAny)
			done <- err
		}()
		require.Eventually(t, func() bool { return f.Waiting() == 1 }, 10*time.Second, time.Millisecond)
		for i := range 3 {
			s.AppendAsync("t", []Event{{Payload: fmt.Appendf(nil, "queued/%d", i)}}, ExpectAny,
				func(_ AppendResult, err error) { done <- err })
		}
		release()
		for range 4 {
			require.NoError(t, <-done)
		}
		const appenders, each, followers = 8, 40, 8
		got := make([][]Event, followers)
		var wg sync.WaitGroup
		total := uint64(5 + appenders*each*2)
		for f := range followers {
			wg.Go(func() {
				for pos := FromBeginning; len(got[f]) < int(total); {
					p, err := s.Read("t", pos, 0)
					if !assertNoError(t, err) {
						return
					}
					if len(p.Events) == 0 {
						if !assertNoError(t, s.Wait(ctx, "t", pos)) {
							return
						}
						continue
					}
					got[f] = append(got[f], p.Events...)
					pos = p.Next
				}
			})
		}
		var aw sync.WaitGroup
		for a := range appenders {
			aw.Go(func() {
				for i := range each {
					evs := []Event{{Payload: fmt.Appendf(nil, "%d/%d/a", a, i)},
						{Payload: fmt.Appendf(nil, "%d/%d/b", a, i), Headers: map[string]string{"a": fmt.Sprint(a)}}}
					_, err := s.Append(ctx, "t", evs, ExpectAny)
					assertNoError(t, err)
				}
			})
		}
		aw.Wait()
		wg.Wait()
		tp, err := s.lookup("t")
		require.NoError(t, err)
		want := readAllEngine(t, s, tp)
		require.Len(t, want, int(total))
		for f := range followers {
			require.Equal(t, want, got[f], "follower %d", f)
		}
		require.GreaterOrEqual(t, s.Stats().MaxRequests, uint64(3), "the queued appends made one group")
	})
}

// assertNoError reports err from any goroutine; false when there was one.
func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

// blocked is how many Waits blocked on tp's current signal.
func blocked(tp *topic) int {
	if sig := tp.tail.signal.Load(); sig != nil {
		return int(sig.waiters.Load())
	}
	return 0
}

// TestTailPageAppendCopies: a page served from the ring has its capacity
// capped, so that a caller appending to it never writes into the ring.
func TestTailPageAppendCopies(t *testing.T) {
	opts := DefaultOptions()
	opts.UnsafeNoSync = true
	s := tailOpen(t, "leveldb", t.TempDir(), opts)
	ctx := context.Background()
	first, err := s.Append(ctx, "t", []Event{{Payload: []byte("a")}}, ExpectAny)
	require.NoError(t, err)
	follow(t, s, "t")
	_, err = s.Append(ctx, "t", []Event{{Payload: []byte("b")}, {Payload: []byte("c")}}, ExpectAny)
	require.NoError(t, err)
	tp, err := s.lookup("t")
	require.NoError(t, err)
	p, ok := tp.tail.read(After(first.FirstID), tp.pub.Load().lastID, 1, 0)
	require.True(t, ok, "served from the ring")
	require.Len(t, p.Events, 1)
	require.Equal(t, len(p.Events), cap(p.Events))
	p.Events = append(p.Events, Event{Payload: []byte("mine")})
	again, err := s.Read("t", After(first.FirstID), 0)
	require.NoError(t, err)
	require.Len(t, again.Events, 2)
	require.Equal(t, "c", string(again.Events[1].Payload))
}
