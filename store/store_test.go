package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/faultengine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// forEngine runs f once per engine, each in its own subtest.
func forEngine(t *testing.T, f func(t *testing.T, name string)) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, name)
		})
	}
}

// open opens a store on engine name in dir, closing it when the test ends.
func open(t *testing.T, name, dir string, opts store.Options) *store.Store {
	t.Helper()
	e, err := engines.Open(name, dir)
	require.NoError(t, err)
	s, err := store.Open(e, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func events(payloads ...string) []store.Event {
	out := make([]store.Event, len(payloads))
	for i, p := range payloads {
		out[i] = store.Event{Payload: []byte(p)}
	}
	return out
}

// readAll reads a whole topic page by page.
func readAll(t *testing.T, s *store.Store, topic string, from uint64, page int) []store.Event {
	t.Helper()
	var all []store.Event
	for {
		p, err := s.Read(topic, from, page)
		require.NoError(t, err)
		if len(p.Events) == 0 {
			return all
		}
		all = append(all, p.Events...)
		from = p.Next
	}
}

// fakeClock is a settable clock for tests of id assignment.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64 { return c.ns.Load() }

func TestAppendAndRead(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		ctx := context.Background()

		evs := events("a", "b", "c")
		evs[1].Headers = map[string]string{"type": "created", "z": "", "": "empty key"}
		res, err := s.Append(ctx, "orders", evs, store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, uint64(1), res.FirstSeq)
		require.Equal(t, 3, res.Count)
		require.NotZero(t, res.FirstID)

		got := readAll(t, s, "orders", store.FromBeginning, 0)
		require.Len(t, got, 3)
		for i, e := range got {
			require.Equal(t, res.FirstID+uint64(i), e.ID, "ids of one append are consecutive")
			require.Equal(t, uint64(i+1), e.Seq)
			require.Equal(t, string(evs[i].Payload), string(e.Payload))
		}
		require.Nil(t, got[0].Headers)
		require.Equal(t, evs[1].Headers, got[1].Headers)
		require.WithinDuration(t, time.Now(), got[0].Time(), time.Minute)

		// Empty payloads and other topics do not interfere.
		_, err = s.Append(ctx, "orders-2", events(""), store.ExpectAny)
		require.NoError(t, err)
		require.Len(t, readAll(t, s, "orders", 0, 0), 3)
		other := readAll(t, s, "orders-2", 0, 0)
		require.Len(t, other, 1)
		require.Empty(t, other[0].Payload)

		// The caller may reuse its buffers after Append returns.
		buf := []byte("mutable")
		_, err = s.Append(ctx, "orders", []store.Event{{Payload: buf}}, store.ExpectAny)
		require.NoError(t, err)
		copy(buf, "XXXXXXX")
		got = readAll(t, s, "orders", 0, 0)
		require.Equal(t, "mutable", string(got[3].Payload))
	})
}

func TestReadNotFoundAndInvalid(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		ctx := context.Background()
		_, err := s.Read("nope", 0, 10)
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.Info("nope")
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.Append(ctx, "t", nil, store.ExpectAny)
		require.ErrorIs(t, err, store.ErrInvalid)
		_, err = s.Read("nope", 0, 10)
		require.ErrorIs(t, err, store.ErrNotFound, "a failed append creates no topic")
	})
}

func TestTopicNames(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
		rule string
	}{
		{"a", true, ""},
		{strings.Repeat("x", store.MaxNameLen), true, ""},
		{"orders:eu/2026 ✓ with spaces", true, ""},
		{"", false, "empty"},
		{strings.Repeat("x", store.MaxNameLen+1), false, "limit is 255"},
		{"bad\xffutf8", false, "UTF-8"},
		{"tab\there", false, "control character"},
		{"nul\x00", false, "control character"},
		{"del\u007f", false, "control character"},
		{"c1\u0085", false, "control character"},
	}
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		for _, c := range cases {
			_, err := s.Append(context.Background(), c.name, events("x"), store.ExpectAny)
			if c.ok {
				require.NoError(t, err, c.name)
				got := readAll(t, s, c.name, 0, 0)
				require.Len(t, got, 1)
				continue
			}
			require.ErrorIs(t, err, store.ErrInvalidName, "%q", c.name)
			require.Contains(t, err.Error(), c.rule)
		}
		list, _, err := s.Topics("", 100)
		require.NoError(t, err)
		require.Len(t, list, 3)
	})
}

// A topic whose name is another's name plus a suffix, or contains a
// separator, never leaks into the other's range.
func TestTopicIsolation(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		ctx := context.Background()
		names := []string{"a", "a:", "a:b", "ab", "a\u00ff", "b"}
		for i, n := range names {
			for j := 0; j <= i; j++ {
				_, err := s.Append(ctx, n, events(fmt.Sprintf("%s-%d", n, j)), store.ExpectAny)
				require.NoError(t, err)
			}
		}
		for i, n := range names {
			got := readAll(t, s, n, 0, 2)
			require.Len(t, got, i+1, n)
			for _, e := range got {
				require.True(t, strings.HasPrefix(string(e.Payload), n+"-"), "%s got %s", n, e.Payload)
			}
		}
	})
}

// TestConcurrentAppendersOrderAndGapFreeSeqs runs blocking appenders and
// asynchronous ones (each keeping several appends in flight) in both
// commit modes.
func TestConcurrentAppendersOrderAndGapFreeSeqs(t *testing.T) {
	const appenders, perAppender = 32, 50
	for _, mode := range []store.CommitMode{store.CommitLeader, store.CommitWriter} {
		t.Run(fmt.Sprint("mode=", mode), func(t *testing.T) {
			testConcurrentAppenders(t, mode, appenders, perAppender)
		})
	}
}

func testConcurrentAppenders(t *testing.T, mode store.CommitMode, appenders, perAppender int) {
	forEngine(t, func(t *testing.T, name string) {
		opts := store.DefaultOptions()
		opts.UnsafeNoSync = true // the ordering logic is the same; keep the test quick
		opts.CommitMode = mode
		s := open(t, name, t.TempDir(), opts)
		var wg sync.WaitGroup
		errs := make(chan error, appenders*perAppender)
		for a := range appenders {
			wg.Go(func() {
				if a%2 == 1 {
					// Asynchronous: every append in flight at once, issued
					// in order from this goroutine.
					var done sync.WaitGroup
					for i := range perAppender {
						done.Add(1)
						batch := events(fmt.Sprintf("%d/%d/0", a, i), fmt.Sprintf("%d/%d/1", a, i))
						s.AppendAsync("log", batch, store.ExpectAny, func(_ store.AppendResult, err error) {
							if err != nil {
								errs <- err
							}
							done.Done()
						})
					}
					done.Wait()
					return
				}
				for i := range perAppender {
					batch := events(fmt.Sprintf("%d/%d/0", a, i), fmt.Sprintf("%d/%d/1", a, i))
					if _, err := s.Append(context.Background(), "log", batch, store.ExpectAny); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		got := readAll(t, s, "log", 0, 97)
		require.Len(t, got, appenders*perAppender*2)
		next := make([]int, appenders)
		for i, e := range got {
			require.Equal(t, uint64(i+1), e.Seq, "seqs are dense")
			if i > 0 {
				require.Greater(t, e.ID, got[i-1].ID, "ids strictly increase")
			}
			var a, n, k int
			_, err := fmt.Sscanf(string(e.Payload), "%d/%d/%d", &a, &n, &k)
			require.NoError(t, err)
			require.Equal(t, next[a], n, "appender %d's events in its order", a)
			if k == 0 {
				// a batch is contiguous: its second event follows at once
				require.Equal(t, fmt.Sprintf("%d/%d/1", a, n), string(got[i+1].Payload))
			} else {
				next[a]++
			}
		}
		info, err := s.Info("log")
		require.NoError(t, err)
		require.Equal(t, uint64(len(got)), info.Count)
		require.Equal(t, got[len(got)-1].ID, info.LastID)
		require.Equal(t, got[0].ID, info.FirstID)
	})
}

func TestExpectations(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		ctx := context.Background()

		// Expecting a non-empty topic that does not exist fails and creates nothing.
		_, err := s.Append(ctx, "acct", events("x"), store.ExpectLastSeq(3))
		var ce *store.ConflictError
		require.ErrorAs(t, err, &ce)
		require.ErrorIs(t, err, store.ErrConflict)
		require.Equal(t, uint64(0), ce.Actual)
		_, err = s.Info("acct")
		require.ErrorIs(t, err, store.ErrNotFound)

		_, err = s.Append(ctx, "acct", events("opened"), store.ExpectLastSeq(0))
		require.NoError(t, err)
		_, err = s.Append(ctx, "acct", events("dup-open"), store.ExpectLastSeq(0))
		require.ErrorAs(t, err, &ce)
		require.Equal(t, uint64(1), ce.Actual)
		_, err = s.Append(ctx, "acct", events("deposit", "withdraw"), store.ExpectLastSeq(1))
		require.NoError(t, err)
		_, err = s.Append(ctx, "acct", events("stale"), store.ExpectLastSeq(1))
		require.ErrorAs(t, err, &ce)
		require.Equal(t, uint64(3), ce.Actual)

		got := readAll(t, s, "acct", 0, 0)
		require.Len(t, got, 3)
		require.Equal(t, "withdraw", string(got[2].Payload))
	})
}

// Concurrent writers racing on the same expectation: exactly one wins each
// round, and a loser's failure does not fail the others of its group.
func TestExpectationRace(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		ctx := context.Background()
		const racers = 8
		for round := range uint64(5) {
			var wins, conflicts atomic.Int32
			var wg sync.WaitGroup
			for r := range racers {
				wg.Go(func() {
					_, err := s.Append(ctx, "x", events(fmt.Sprint(r)), store.ExpectLastSeq(round))
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, store.ErrConflict):
						conflicts.Add(1)
					default:
						t.Error(err)
					}
					// an unconditional append in the same groups always succeeds
					_, err = s.Append(ctx, "y", events("y"), store.ExpectAny)
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			require.Equal(t, int32(1), wins.Load(), "round %d", round)
			require.Equal(t, int32(racers-1), conflicts.Load())
		}
		require.Len(t, readAll(t, s, "y", 0, 0), 5*racers)
	})
}

func TestNearestSeek(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		clock := &fakeClock{}
		opts := store.DefaultOptions()
		opts.Clock = clock.now
		s := open(t, name, t.TempDir(), opts)
		ctx := context.Background()
		base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		var ids []uint64
		for i := range 3 {
			clock.ns.Store(base.Add(time.Duration(i) * time.Second).UnixNano())
			res, err := s.Append(ctx, "t", events(fmt.Sprint(i)), store.ExpectAny)
			require.NoError(t, err)
			ids = append(ids, res.FirstID)
		}
		first := func(from uint64) string {
			p, err := s.Read("t", from, 1)
			require.NoError(t, err)
			if len(p.Events) == 0 {
				return "end"
			}
			return string(p.Events[0].Payload)
		}
		require.Equal(t, "0", first(store.At(base.Add(-time.Hour))), "before all")
		require.Equal(t, "0", first(store.FromBeginning))
		require.Equal(t, "0", first(store.At(base)), "exactly on one")
		require.Equal(t, "1", first(store.At(base.Add(500*time.Millisecond))), "between two")
		require.Equal(t, "1", first(store.After(ids[0])))
		require.Equal(t, "2", first(store.After(ids[1]+12345)), "after an id that does not exist")
		require.Equal(t, "2", first(ids[2]))
		require.Equal(t, "end", first(store.After(ids[2])), "after all")
		require.Equal(t, "end", first(store.At(base.Add(time.Hour))))
		require.Equal(t, "0", first(store.At(time.Unix(-5, 0))), "times before the epoch clamp")
	})
}

func TestClockGoingBackwards(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		clock := &fakeClock{}
		clock.ns.Store(2_000_000_000_000)
		opts := store.DefaultOptions()
		opts.Clock = clock.now
		e, err := engines.Open(name, dir)
		require.NoError(t, err)
		s, err := store.Open(e, opts)
		require.NoError(t, err)
		r1, err := s.Append(context.Background(), "t", events("a", "b"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, uint64(2_000_000_000_000), r1.FirstID)
		require.NoError(t, s.Close())

		clock.ns.Store(1_000) // the wall clock jumped back
		s = open(t, name, dir, opts)
		r2, err := s.Append(context.Background(), "t", events("c"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, r1.FirstID+2, r2.FirstID)
		require.Equal(t, uint64(3), r2.FirstSeq)
	})
}

func TestRestartRecovery(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		e, err := engines.Open(name, dir)
		require.NoError(t, err)
		s, err := store.Open(e, store.DefaultOptions())
		require.NoError(t, err)
		ctx := context.Background()
		for i := range 10 {
			_, err := s.Append(ctx, fmt.Sprintf("t%d", i%3), events("x", "y"), store.ExpectAny)
			require.NoError(t, err)
		}
		before, err := s.Info("t0")
		require.NoError(t, err)
		require.NoError(t, s.SetCursor(ctx, "t0", "billing", before.FirstID))
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "Close is idempotent")
		_, err = s.Append(ctx, "t0", events("late"), store.ExpectAny)
		require.ErrorIs(t, err, store.ErrClosed)

		s = open(t, name, dir, store.DefaultOptions())
		after, err := s.Info("t0")
		require.NoError(t, err)
		require.Equal(t, before, after)
		res, err := s.Append(ctx, "t0", events("z"), store.ExpectLastSeq(before.LastSeq))
		require.NoError(t, err)
		require.Equal(t, before.LastSeq+1, res.FirstSeq)
		require.Greater(t, res.FirstID, before.LastID)
		c, err := s.GetCursor("t0", "billing")
		require.NoError(t, err)
		require.Equal(t, before.FirstID, c.ID)
		// a new topic after restart gets a fresh id, not a reused one
		_, err = s.Append(ctx, "t-new", events("n"), store.ExpectAny)
		require.NoError(t, err)
		list, _, err := s.Topics("", 10)
		require.NoError(t, err)
		seen := map[uint64]bool{}
		for _, ti := range list {
			require.False(t, seen[ti.ID], "topic ids are unique")
			seen[ti.ID] = true
		}
		require.Len(t, list, 4)
	})
}

func TestCursors(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		ctx := context.Background()
		require.ErrorIs(t, s.SetCursor(ctx, "t", "c", 1), store.ErrNotFound, "topic must exist")
		res, err := s.Append(ctx, "t", events("a", "b"), store.ExpectAny)
		require.NoError(t, err)
		_, err = s.GetCursor("t", "c")
		require.ErrorIs(t, err, store.ErrNotFound)
		require.NoError(t, s.SetCursor(ctx, "t", "c", res.FirstID))
		require.NoError(t, s.SetCursor(ctx, "t", "c2", res.FirstID+1))
		c, err := s.GetCursor("t", "c")
		require.NoError(t, err)
		require.Equal(t, res.FirstID, c.ID)
		require.WithinDuration(t, time.Now(), c.Updated, time.Minute)
		require.NoError(t, s.SetCursor(ctx, "t", "c", res.FirstID+1))
		c, err = s.GetCursor("t", "c")
		require.NoError(t, err)
		require.Equal(t, res.FirstID+1, c.ID)
		require.ErrorIs(t, s.SetCursor(ctx, "t", "", 1), store.ErrInvalidName)
		_, err = s.GetCursor("t", "bad\x01")
		require.ErrorIs(t, err, store.ErrInvalidName)
		// Resume after the cursor.
		p, err := s.Read("t", store.After(c.ID), 0)
		require.NoError(t, err)
		require.Empty(t, p.Events)
	})
}

func TestWaitWokenByCommit(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		// Waiters on a topic that does not exist yet, and at the end of one that does.
		woken := make(chan error, 4)
		for range 3 {
			go func() { woken <- s.Wait(ctx, "later", 0) }()
		}
		res, err := s.Append(ctx, "now", events("a"), store.ExpectAny)
		require.NoError(t, err)
		go func() { woken <- s.Wait(ctx, "now", store.After(res.FirstID)) }()

		// An event already there returns at once.
		require.NoError(t, s.Wait(ctx, "now", res.FirstID))

		_, err = s.Append(ctx, "later", events("b"), store.ExpectAny)
		require.NoError(t, err)
		_, err = s.Append(ctx, "now", events("c"), store.ExpectAny)
		require.NoError(t, err)
		for range 4 {
			require.NoError(t, <-woken)
		}
		p, err := s.Read("now", store.After(res.FirstID), 0)
		require.NoError(t, err)
		require.Len(t, p.Events, 1)

		// Cancellation and Close end a wait.
		cctx, ccancel := context.WithCancel(ctx)
		go func() { woken <- s.Wait(cctx, "quiet", 0) }()
		ccancel()
		require.ErrorIs(t, <-woken, context.Canceled)
		go func() { woken <- s.Wait(ctx, "quiet", 0) }()
		time.Sleep(10 * time.Millisecond) // let it block; Close must wake it either way
		require.NoError(t, s.Close())
		require.ErrorIs(t, <-woken, store.ErrClosed)
	})
}

// A follower that reads, waits and reads again sees every event exactly once
// while appenders run.
func TestFollowerSeesEverything(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		opts := store.DefaultOptions()
		opts.UnsafeNoSync = true
		s := open(t, name, t.TempDir(), opts)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		const total = 2000
		done := make(chan []store.Event)
		go func() {
			var got []store.Event
			from := store.FromBeginning
			for len(got) < total {
				p, err := s.Read("f", from, 100)
				if errors.Is(err, store.ErrNotFound) {
					p.Next = from
				} else if err != nil {
					t.Error(err)
					break
				}
				got = append(got, p.Events...)
				from = p.Next
				if len(p.Events) == 0 {
					if err := s.Wait(ctx, "f", from); err != nil {
						t.Error(err)
						break
					}
				}
			}
			done <- got
		}()
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range total / 4 {
					_, err := s.Append(ctx, "f", events(fmt.Sprint(w, i)), store.ExpectAny)
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		got := <-done
		require.Len(t, got, total)
		for i, e := range got {
			require.Equal(t, uint64(i+1), e.Seq)
		}
	})
}

func TestTopicsPaging(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		ctx := context.Background()
		var want []string
		for i := range 25 {
			n := fmt.Sprintf("topic-%02d", i)
			want = append(want, n)
			_, err := s.Append(ctx, n, events("x"), store.ExpectAny)
			require.NoError(t, err)
		}
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			list, next, err := s.Topics(after, 10)
			require.NoError(t, err)
			for _, ti := range list {
				got = append(got, ti.Name)
				require.Equal(t, uint64(1), ti.Count)
				require.Equal(t, ti.FirstID, ti.LastID)
			}
			if next == "" {
				require.Equal(t, 2, pages)
				break
			}
			after = next
		}
		require.Equal(t, want, got)
	})
}

func TestPageBounds(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		opts := store.DefaultOptions()
		opts.PageEvents = 7
		opts.PageBytes = 1000
		s := open(t, name, t.TempDir(), opts)
		ctx := context.Background()
		big := make([]byte, 600)
		for range 3 {
			_, err := s.Append(ctx, "big", []store.Event{{Payload: big}}, store.ExpectAny)
			require.NoError(t, err)
		}
		p, err := s.Read("big", 0, 100)
		require.NoError(t, err)
		require.Len(t, p.Events, 2, "the byte bound cuts the page after the event that crosses it")
		_, err = s.Append(ctx, "small", events(strings.Split("abcdefghijklmnopqrstuvwxyz", "")...), store.ExpectAny)
		require.NoError(t, err)
		p, err = s.Read("small", 0, 100)
		require.NoError(t, err)
		require.Len(t, p.Events, 7, "PageEvents caps the caller's limit")
		p, err = s.Read("small", p.Next, 3)
		require.NoError(t, err)
		require.Len(t, p.Events, 3)
		require.Equal(t, "h", string(p.Events[0].Payload))
	})
}

// Every request of a large group commit gets its own result.
func TestGroupCommitResults(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		opts := store.DefaultOptions()
		opts.MaxGroupEvents = 10 // force several groups
		s := open(t, name, t.TempDir(), opts)
		ctx := context.Background()
		var wg sync.WaitGroup
		results := make([]store.AppendResult, 64)
		for i := range results {
			wg.Go(func() {
				var err error
				results[i], err = s.Append(ctx, "g", events("a", "b", "c"), store.ExpectAny)
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		seen := map[uint64]bool{}
		for _, r := range results {
			require.Equal(t, 3, r.Count)
			for k := range uint64(3) {
				require.False(t, seen[r.FirstSeq+k])
				seen[r.FirstSeq+k] = true
			}
		}
		all := readAll(t, s, "g", 0, 0)
		require.Len(t, all, 192)
		for _, r := range results {
			require.Equal(t, r.FirstID, all[r.FirstSeq-1].ID)
		}
	})
}

func TestFormatVersion(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		e, err := engines.Open(name, dir)
		require.NoError(t, err)
		var b engine.Batch
		b.Put([]byte{0xF0}, []byte{99})
		require.NoError(t, e.Write(&b, true))
		_, err = store.Open(e, store.DefaultOptions())
		require.ErrorIs(t, err, store.ErrFormat)
		require.Contains(t, err.Error(), "format version [99], this build reads versions 1 to 3")
		require.NoError(t, e.Close())

		e, err = engines.Open(name, t.TempDir())
		require.NoError(t, err)
		b.Reset()
		b.Put([]byte("someone else's data"), []byte("x"))
		require.NoError(t, e.Write(&b, true))
		_, err = store.Open(e, store.DefaultOptions())
		require.ErrorIs(t, err, store.ErrFormat)
		require.NoError(t, e.Close())
	})
}

// A cursor request that shares a group with a failed append creating its
// topic must not write a cursor for a topic that does not exist.
func TestCursorOnTopicOnlyNamedByFailedAppends(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		ctx := context.Background()
		big := make([]store.Event, 4)
		for i := range big {
			big[i].Payload = make([]byte, 1<<20)
		}
		for range 5 {
			// While the writer syncs a large batch, the failing append and
			// then the cursor request queue up and land in one group.
			var wg sync.WaitGroup
			var cursorErr error
			wg.Go(func() {
				if _, err := s.Append(ctx, "big", big, store.ExpectAny); err != nil {
					t.Error(err)
				}
			})
			time.Sleep(2 * time.Millisecond)
			wg.Go(func() {
				_, err := s.Append(ctx, "ghost", events("x"), store.ExpectLastSeq(7))
				if !errors.Is(err, store.ErrConflict) {
					t.Error(err)
				}
			})
			time.Sleep(time.Millisecond)
			wg.Go(func() { cursorErr = s.SetCursor(ctx, "ghost", "c", 1) })
			wg.Wait()
			require.ErrorIs(t, cursorErr, store.ErrNotFound)
		}
		_, err := s.Info("ghost")
		require.ErrorIs(t, err, store.ErrNotFound)
		list, _, err := s.Topics("", 10)
		require.NoError(t, err)
		require.Len(t, list, 1, "only the big topic exists")
	})
}

// openFaulty opens a store on a fault-injecting wrapper of engine name.
func openFaulty(t *testing.T, name, dir string) (*store.Store, *faultengine.Engine) {
	t.Helper()
	e, err := engines.Open(name, dir)
	require.NoError(t, err)
	f := faultengine.Wrap(e)
	s, err := store.Open(f, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, f
}

// TestFailedWriteFailsItsGroup: a failed engine write fails every request
// of its group with one error, publishes nothing of it (also when the batch
// reached the engine before the failure), and every later write fails the
// same way while reads go on. After a restart the log holds exactly what
// was acknowledged.
func TestFailedWriteFailsItsGroup(t *testing.T) {
	for _, mode := range []faultengine.Mode{faultengine.BeforeApply, faultengine.AfterApply} {
		t.Run(mode.String(), func(t *testing.T) {
			forEngine(t, func(t *testing.T, name string) {
				dir := t.TempDir()
				s, f := openFaulty(t, name, dir)
				ctx := context.Background()
				_, err := s.Append(ctx, "t", events("kept"), store.ExpectAny)
				require.NoError(t, err)

				// Hold a lone write so that a group of five forms behind it.
				release := f.BlockWrites()
				defer release()
				first := make(chan error, 1)
				go func() {
					_, err := s.Append(ctx, "t", events("first"), store.ExpectAny)
					first <- err
				}()
				require.Eventually(t, func() bool { return f.Waiting() == 1 }, 10*time.Second, time.Millisecond)
				const n = 5
				errs := make(chan error, n)
				for i := range n {
					s.AppendAsync("t", events(fmt.Sprint("lost-", i)), store.ExpectAny, func(_ store.AppendResult, err error) { errs <- err })
				}
				f.FailWritesIf(mode, func(b *engine.Batch) bool { return b != nil && b.Len() > n })
				release()
				require.NoError(t, <-first)

				var groupErr error
				for range n {
					err := <-errs
					require.ErrorIs(t, err, store.ErrFailed)
					require.ErrorIs(t, err, faultengine.ErrInjected)
					if groupErr == nil {
						groupErr = err
					}
					require.Equal(t, groupErr.Error(), err.Error(), "one error for the whole group")
				}
				require.Equal(t, int64(1), f.Stats().Injected, "the five were one write")

				f.Disarm()
				_, err = s.Append(ctx, "t", events("later"), store.ExpectAny)
				require.ErrorIs(t, err, store.ErrFailed, "no write on top of an unknown outcome")
				require.ErrorIs(t, s.SetCursor(ctx, "t", "c", 1), store.ErrFailed)

				got := readAll(t, s, "t", store.FromBeginning, 100)
				require.Equal(t, []string{"kept", "first"}, payloads(got), "reads go on and see only acknowledged events")
				ti, err := s.Info("t")
				require.NoError(t, err)
				require.Equal(t, uint64(2), ti.LastSeq)

				require.NoError(t, s.Close())
				s2 := open(t, name, dir, store.Options{})
				got = readAll(t, s2, "t", store.FromBeginning, 100)
				if mode == faultengine.BeforeApply {
					require.Equal(t, []string{"kept", "first"}, payloads(got))
				} else {
					// The write reached the engine whole before it failed:
					// after a restart it is there, atomically.
					require.Len(t, got, 2+n)
				}
				res, err := s2.Append(ctx, "t", events("after restart"), store.ExpectAny)
				require.NoError(t, err)
				require.Equal(t, uint64(len(got)+1), res.FirstSeq, "seqs stay dense")
			})
		})
	}
}

func payloads(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.Payload)
	}
	return out
}
