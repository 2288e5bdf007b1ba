package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// openWithEngine opens a store on engine name in dir and returns the engine
// too, for raw scans beside the store (engines allow concurrent use).
func openWithEngine(t *testing.T, name, dir string, opts store.Options) (*store.Store, engine.Engine) {
	t.Helper()
	e, err := engines.Open(name, dir)
	require.NoError(t, err)
	s, err := store.Open(e, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, e
}

// requireClean runs goethe check's Check on the folder of a closed store.
func requireClean(t *testing.T, name, dir string) *store.CheckReport {
	t.Helper()
	e, err := engines.Open(name, dir)
	require.NoError(t, err)
	defer e.Close()
	r, err := store.Check(e, store.CheckOptions{})
	require.NoError(t, err)
	require.True(t, r.Clean(), "check: %+v", r.Problems)
	return r
}

// appendN appends n events of payload size size, one Append each batch of
// up to 1000.
func appendN(t *testing.T, s *store.Store, topic string, n, size int) {
	t.Helper()
	for n > 0 {
		k := min(n, 1000)
		evs := make([]store.Event, k)
		for i := range evs {
			evs[i].Payload = make([]byte, size)
		}
		_, err := s.Append(context.Background(), topic, evs, store.ExpectAny)
		require.NoError(t, err)
		n -= k
	}
}

// TestTopicBytes: the bytes a topic records are its event records' keys
// and values, as goethe check counts them, also after a reopen and trims.
func TestTopicBytes(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		s := open(t, name, dir, store.Options{})
		ctx := context.Background()
		_, err := s.Append(ctx, "b", []store.Event{{Payload: []byte("abc"), Headers: map[string]string{"k": "v"}}, {Payload: nil}}, store.ExpectAny)
		require.NoError(t, err)
		appendN(t, s, "b", 10, 100)
		_, err = s.Trim(ctx, "b", store.TrimPoint{Seq: 5})
		require.NoError(t, err)
		ti, err := s.Info("b")
		require.NoError(t, err)
		require.NoError(t, s.Close())
		r := requireClean(t, name, dir)
		require.Len(t, r.Topics, 1)
		require.Equal(t, r.Topics[0].Bytes, ti.Bytes)
		require.NotZero(t, ti.Bytes)

		s = open(t, name, dir, store.Options{})
		ti2, err := s.Info("b")
		require.NoError(t, err)
		require.Equal(t, ti.Bytes, ti2.Bytes)
	})
}

// TestSetTopicConfig: fields are set, merged and cleared; the effective
// config takes the defaults for the fields not set; the topic is created
// empty; the config survives a restart; negative durations are refused.
func TestSetTopicConfig(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		defaults := store.TopicConfig{MaxAge: time.Hour, MaxEvents: 1000, DedupeWindow: 2 * time.Minute}
		s := open(t, name, dir, store.Options{Retention: defaults})
		ctx := context.Background()

		ti, err := s.SetTopicConfig(ctx, "c", store.TopicConfig{MaxEvents: 10, Set: store.FieldMaxEvents}, 0)
		require.NoError(t, err)
		require.Zero(t, ti.Count)
		require.Zero(t, ti.LastSeq)
		require.Equal(t, store.TopicConfig{MaxEvents: 10, Set: store.FieldMaxEvents}, ti.Config)
		require.Equal(t, store.TopicConfig{MaxAge: time.Hour, MaxEvents: 10, DedupeWindow: 2 * time.Minute, Set: store.AllConfigFields}, ti.Effective)

		ti, err = s.SetTopicConfig(ctx, "c", store.TopicConfig{MaxBytes: 1 << 20, MaxAge: 0, Set: store.FieldMaxBytes | store.FieldMaxAge}, 0)
		require.NoError(t, err)
		require.Equal(t, store.TopicConfig{MaxEvents: 10, MaxBytes: 1 << 20, Set: store.FieldMaxEvents | store.FieldMaxBytes | store.FieldMaxAge}, ti.Config)
		require.Zero(t, ti.Effective.MaxAge, "set to 0: no limit, not the default")

		ti, err = s.SetTopicConfig(ctx, "c", store.TopicConfig{}, store.FieldMaxEvents|store.FieldMaxAge)
		require.NoError(t, err)
		require.Equal(t, store.TopicConfig{MaxBytes: 1 << 20, Set: store.FieldMaxBytes}, ti.Config)
		require.Equal(t, time.Hour, ti.Effective.MaxAge)
		require.Equal(t, uint64(1000), ti.Effective.MaxEvents)

		for _, bad := range []store.TopicConfig{
			{MaxAge: -time.Second, Set: store.FieldMaxAge},
			{DedupeWindow: -1, Set: store.FieldDedupeWindow},
			{Set: 0x80},
		} {
			_, err = s.SetTopicConfig(ctx, "c", bad, 0)
			require.ErrorIs(t, err, store.ErrInvalid)
		}
		_, err = s.SetTopicConfig(ctx, "c", store.TopicConfig{}, 0x40)
		require.ErrorIs(t, err, store.ErrInvalid)

		// An Append to the empty topic starts at seq 1.
		res, err := s.Append(ctx, "c", events("x"), store.ExpectLastSeq(0))
		require.NoError(t, err)
		require.Equal(t, uint64(1), res.FirstSeq)

		require.NoError(t, s.Close())
		r := requireClean(t, name, dir)
		require.Equal(t, 1, r.Configs)
		s = open(t, name, dir, store.Options{Retention: defaults})
		ti, err = s.Info("c")
		require.NoError(t, err)
		require.Equal(t, store.TopicConfig{MaxBytes: 1 << 20, Set: store.FieldMaxBytes}, ti.Config)
	})
}

// TestTrim: trims by seq, by id and by time remove the prefix before the
// position at once; a reader below the first event reads from it; a trim
// of everything leaves an empty topic whose next event continues the
// seqs; the folder checks clean and reopens.
func TestTrim(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		s := open(t, name, dir, store.Options{})
		ctx := context.Background()
		appendN(t, s, "t", 20, 10)
		all := readAll(t, s, "t", store.FromBeginning, 0)
		require.Len(t, all, 20)

		_, err := s.Trim(ctx, "t", store.TrimPoint{})
		require.ErrorIs(t, err, store.ErrInvalid)
		_, err = s.Trim(ctx, "missing", store.TrimPoint{Seq: 3})
		require.ErrorIs(t, err, store.ErrNotFound)

		n, err := s.Trim(ctx, "t", store.TrimPoint{Seq: 4})
		require.NoError(t, err)
		require.Equal(t, uint64(3), n)
		n, err = s.Trim(ctx, "t", store.TrimPoint{Seq: 2})
		require.NoError(t, err)
		require.Zero(t, n, "nothing before seq 2 is left")
		ti, err := s.Info("t")
		require.NoError(t, err)
		require.Equal(t, uint64(4), ti.FirstSeq)
		require.Equal(t, all[3].ID, ti.FirstID)
		require.Equal(t, uint64(17), ti.Count)
		got := readAll(t, s, "t", store.FromBeginning, 5)
		require.Equal(t, uint64(4), got[0].Seq, "a read below the first event starts at it")

		n, err = s.Trim(ctx, "t", store.TrimPoint{ID: all[7].ID})
		require.NoError(t, err)
		require.Equal(t, uint64(4), n)
		n, err = s.Trim(ctx, "t", store.TrimPoint{ID: store.At(time.Unix(0, int64(all[10].ID)))})
		require.NoError(t, err)
		require.Equal(t, uint64(3), n)
		ti, err = s.Info("t")
		require.NoError(t, err)
		require.Equal(t, uint64(11), ti.FirstSeq)

		// Everything: the topic is empty and keeps its last id and seq.
		n, err = s.Trim(ctx, "t", store.TrimPoint{Seq: 1000})
		require.NoError(t, err)
		require.Equal(t, uint64(10), n)
		ti, err = s.Info("t")
		require.NoError(t, err)
		require.Equal(t, store.TopicInfo{Name: "t", ID: ti.ID, Created: ti.Created, FirstSeq: 21, LastID: all[19].ID, LastSeq: 20,
			Effective: store.TopicConfig{DedupeWindow: store.DefaultDedupeWindow, Set: store.AllConfigFields}}, ti)
		p, err := s.Read("t", all[2].ID, 0)
		require.NoError(t, err)
		require.Empty(t, p.Events)
		require.Equal(t, all[19].ID+1, p.Next, "an emptied topic's reader moves past its last event")
		for _, seq := range []uint64{0, 5, 20, 21, 22} {
			pos, exhausted, err := store.SeqPosition(s, "t", seq)
			require.NoError(t, err)
			require.False(t, exhausted)
			require.Equal(t, all[19].ID+1, pos, "seq %d of an emptied topic is its end", seq)
		}
		n, err = s.Trim(ctx, "t", store.TrimPoint{Seq: 1000})
		require.NoError(t, err)
		require.Zero(t, n)

		require.NoError(t, s.Close())
		requireClean(t, name, dir)
		s = open(t, name, dir, store.Options{})
		ti2, err := s.Info("t")
		require.NoError(t, err)
		require.Equal(t, ti, ti2)
		res, err := s.Append(ctx, "t", events("after"), store.ExpectLastSeq(20))
		require.NoError(t, err)
		require.Equal(t, uint64(21), res.FirstSeq)
		ti, err = s.Info("t")
		require.NoError(t, err)
		require.Equal(t, uint64(21), ti.FirstSeq)
		require.Equal(t, res.FirstID, ti.FirstID)
		require.Equal(t, uint64(1), ti.Count)
		require.NoError(t, s.Close())
		requireClean(t, name, dir)
	})
}

// TestTrimSteps: a trim larger than TrimStepEvents is planned as several
// bounded steps, at most TrimPipelineSteps in a round, chained; a step at
// the bound removes exactly TrimStepEvents.
func TestTrimSteps(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.Options{UnsafeNoSync: true})
		const total = store.TrimStepEvents*(store.TrimPipelineSteps+1) + 500
		appendN(t, s, "s", total, 1)
		cmds, err := s.PlanTrim("s", store.TrimPoint{Seq: total})
		require.NoError(t, err)
		require.Len(t, cmds, store.TrimPipelineSteps)
		for i, c := range cmds {
			require.Equal(t, uint64(i*store.TrimStepEvents+1), c.Trim.FirstSeq)
			require.Equal(t, uint64((i+1)*store.TrimStepEvents+1), c.Trim.NewFirstSeq, "a step at the bound")
		}
		cmds, err = s.PlanTrim("s", store.TrimPoint{Seq: store.TrimStepEvents + 2})
		require.NoError(t, err)
		require.Len(t, cmds, 2, "one past the bound: a second step")
		require.Equal(t, uint64(store.TrimStepEvents+2), cmds[1].Trim.NewFirstSeq)

		n, err := s.Trim(context.Background(), "s", store.TrimPoint{Seq: total})
		require.NoError(t, err)
		require.Equal(t, uint64(total-1), n)
		ti, err := s.Info("s")
		require.NoError(t, err)
		require.Equal(t, uint64(total), ti.FirstSeq)
		require.Equal(t, uint64(1), ti.Count)
	})
}

// TestRetentionByAge: with the clock moved forward, events older than
// max age disappear in the background, oldest first.
func TestRetentionByAge(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		var clock fakeClock
		clock.ns.Store(int64(1_000 * time.Second))
		s := open(t, name, t.TempDir(), store.Options{Clock: clock.now, RetentionInterval: 5 * time.Millisecond})
		ctx := context.Background()
		_, err := s.SetTopicConfig(ctx, "a", store.TopicConfig{MaxAge: 10 * time.Second, Set: store.FieldMaxAge}, 0)
		require.NoError(t, err)
		for i := range 10 {
			clock.ns.Store(int64(1_000*time.Second + time.Duration(i)*time.Second))
			_, err := s.Append(ctx, "a", events(fmt.Sprint(i)), store.ExpectAny)
			require.NoError(t, err)
		}
		// At 1015 s the events of 1000 to 1004 s are older than 10 s.
		clock.ns.Store(int64(1_015 * time.Second))
		require.Eventually(t, func() bool {
			ti, err := s.Info("a")
			return err == nil && ti.FirstSeq == 6
		}, 10*time.Second, 5*time.Millisecond)
		got := readAll(t, s, "a", store.FromBeginning, 0)
		require.Equal(t, []string{"5", "6", "7", "8", "9"}, payloads(got))
		clock.ns.Store(int64(1_100 * time.Second))
		require.Eventually(t, func() bool {
			ti, err := s.Info("a")
			return err == nil && ti.Count == 0 && ti.FirstSeq == 11 && ti.LastSeq == 10
		}, 10*time.Second, 5*time.Millisecond)
	})
}

// TestRetentionUnderLoad: retention by events (per topic) and by bytes
// (server default) under concurrent appends and a follower: the store's
// seqs stay dense, the first seq moves up, the follower sees increasing
// seqs (skipping what retention removed before it read it), and the limits
// hold once appends stop; the folder checks clean and a restart keeps the
// config and continues.
func TestRetentionUnderLoad(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		opts := store.Options{UnsafeNoSync: true, RetentionInterval: time.Millisecond,
			Retention: store.TopicConfig{MaxBytes: 64 << 10}}
		s := open(t, name, dir, opts)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := s.SetTopicConfig(ctx, "ev", store.TopicConfig{MaxEvents: 100, Set: store.FieldMaxEvents}, 0)
		require.NoError(t, err)

		const total = 3000
		var wg sync.WaitGroup
		for _, topic := range []string{"ev", "by"} {
			wg.Go(func() {
				for i := range total / 10 {
					evs := make([]store.Event, 10)
					for j := range evs {
						evs[j].Payload = []byte(fmt.Sprintf("%0100d", i*10+j))
					}
					if _, err := s.Append(ctx, topic, evs, store.ExpectAny); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		// A follower of each topic, from the beginning.
		follow := func(topic string) <-chan []uint64 {
			out := make(chan []uint64, 1)
			go func() {
				var seqs []uint64
				from := store.FromBeginning
				for len(seqs) == 0 || seqs[len(seqs)-1] < total {
					p, err := s.Read(topic, from, 7)
					if errors.Is(err, store.ErrNotFound) {
						p.Next = from
					} else if err != nil {
						t.Error(err)
						break
					}
					for _, e := range p.Events {
						seqs = append(seqs, e.Seq)
					}
					from = p.Next
					if len(p.Events) == 0 {
						if err := s.Wait(ctx, topic, from); err != nil {
							t.Error(err)
							break
						}
					}
				}
				out <- seqs
			}()
			return out
		}
		followers := []<-chan []uint64{follow("ev"), follow("by")}
		wg.Wait()
		for _, f := range followers {
			seqs := <-f
			require.NotEmpty(t, seqs)
			for i := 1; i < len(seqs); i++ {
				require.Greater(t, seqs[i], seqs[i-1])
			}
			require.Equal(t, uint64(total), seqs[len(seqs)-1])
		}
		require.Eventually(t, func() bool {
			ev, err1 := s.Info("ev")
			by, err2 := s.Info("by")
			return err1 == nil && err2 == nil && ev.Count == 100 && ev.FirstSeq == total-99 && by.Bytes <= 64<<10 && by.Bytes > 60<<10
		}, 20*time.Second, 5*time.Millisecond)
		got := readAll(t, s, "ev", store.FromBeginning, 0)
		require.Len(t, got, 100)
		for i, e := range got {
			require.Equal(t, uint64(total-99+i), e.Seq)
		}
		require.NoError(t, s.Close())
		requireClean(t, name, dir)

		s = open(t, name, dir, opts)
		ti, err := s.Info("ev")
		require.NoError(t, err)
		require.Equal(t, uint64(100), ti.Effective.MaxEvents)
		appendN(t, s, "ev", 50, 1)
		require.Eventually(t, func() bool {
			ti, err := s.Info("ev")
			return err == nil && ti.Count == 100 && ti.LastSeq == total+50
		}, 20*time.Second, 5*time.Millisecond)
	})
}

// TestDeleteTopic: a delete frees the name at once (a new topic gets a new
// id and seqs from 1), removes the cursors, ends the waiters of the old
// topic with ErrTopicDeleted, and its events are reclaimed in the
// background; the folder checks clean.
func TestDeleteTopic(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		s, e := openWithEngine(t, name, dir, store.Options{})
		ctx := context.Background()
		require.ErrorIs(t, s.DeleteTopic(ctx, "d"), store.ErrNotFound)
		appendN(t, s, "d", 50, 100)
		old, err := s.Info("d")
		require.NoError(t, err)
		require.NoError(t, s.SetCursor(ctx, "d", "c", old.LastID))
		_, err = s.SetTopicConfig(ctx, "d", store.TopicConfig{MaxEvents: 1000, Set: store.FieldMaxEvents}, 0)
		require.NoError(t, err)

		waited := make(chan error, 2)
		go func() { waited <- s.Wait(ctx, "d", old.LastID+1) }()
		go func() { waited <- s.WaitTopic(ctx, "d", old.ID, old.LastID+1) }()
		// The waiters are registered before the delete or after it: either
		// way they end with ErrTopicDeleted (WaitTopic) or, for Wait by
		// name, ErrTopicDeleted or a wake-up at the new topic's creation.
		require.NoError(t, s.DeleteTopic(ctx, "d"))
		_, err = s.Info("d")
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.Read("d", 0, 0)
		require.ErrorIs(t, err, store.ErrNotFound)
		require.ErrorIs(t, s.WaitTopic(ctx, "d", old.ID, 0), store.ErrTopicDeleted)
		require.ErrorIs(t, s.DeleteTopic(ctx, "d"), store.ErrNotFound)

		res, err := s.Append(ctx, "d", events("new"), store.ExpectLastSeq(0))
		require.NoError(t, err)
		require.Equal(t, uint64(1), res.FirstSeq)
		for range 2 {
			select {
			case err := <-waited:
				if err != nil {
					require.ErrorIs(t, err, store.ErrTopicDeleted)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a waiter of the deleted topic was not woken")
			}
		}
		ti, err := s.Info("d")
		require.NoError(t, err)
		require.NotEqual(t, old.ID, ti.ID)
		require.Equal(t, store.TopicConfig{}, ti.Config, "the config went with the topic")
		_, err = s.GetCursor("d", "c")
		require.ErrorIs(t, err, store.ErrNotFound, "the cursors went with the topic")
		require.Equal(t, []string{"new"}, payloads(readAll(t, s, "d", 0, 0)))

		start := make([]byte, 8)
		for i := range 8 {
			start[i] = byte(old.ID >> (56 - 8*i))
		}
		end := make([]byte, 8)
		for i := range 8 {
			end[i] = byte((old.ID + 1) >> (56 - 8*i))
		}
		require.Eventually(t, func() bool {
			kvs, err := e.Scan(start, end, 1, 0)
			return err == nil && len(kvs) == 0
		}, 10*time.Second, 5*time.Millisecond, "the deleted topic's events are reclaimed")
		require.Eventually(t, func() bool {
			kvs, err := e.Scan([]byte{0xF7}, []byte{0xF8}, 1, 0)
			return err == nil && len(kvs) == 0
		}, 10*time.Second, 5*time.Millisecond, "and its reclaim record")
		require.NoError(t, s.Close())
		r := requireClean(t, name, dir)
		require.Zero(t, r.Reclaiming)
	})
}

// TestDeleteAndCreateInOneGroup: commands applied in one group (as a
// replica applies a batch of log entries) may delete a topic and create
// one of the same name after it.
func TestDeleteAndCreateInOneGroup(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		s := open(t, name, dir, store.Options{})
		res, err := s.ApplyCommitted([]store.CommittedEntry{{Index: 1, Time: 100, Commands: []store.Command{
			{Kind: store.CommandAppend, Topic: "g", Events: events("a", "b")},
		}}})
		require.NoError(t, err)
		require.NoError(t, res[0][0].Err)
		old, err := s.Info("g")
		require.NoError(t, err)
		res, err = s.ApplyCommitted([]store.CommittedEntry{{Index: 2, Time: 200, Commands: []store.Command{
			{Kind: store.CommandSetConfig, Topic: "g", Config: store.TopicConfig{MaxEvents: 5, Set: store.FieldMaxEvents}},
			{Kind: store.CommandDeleteTopic, Topic: "g", TopicID: old.ID},
			{Kind: store.CommandTrim, Topic: "g", Trim: store.TrimStep{TopicID: old.ID, FirstSeq: 1, NewFirstID: old.LastID, NewFirstSeq: 2}},
			{Kind: store.CommandAppend, Topic: "g", Events: events("c")},
			{Kind: store.CommandDeleteTopic, Topic: "g", TopicID: old.ID},
		}}})
		require.NoError(t, err)
		require.NoError(t, res[0][0].Err)
		require.NoError(t, res[0][1].Err)
		require.ErrorIs(t, res[0][2].Err, store.ErrNotFound, "the trim names the deleted topic")
		require.NoError(t, res[0][3].Err)
		require.ErrorIs(t, res[0][4].Err, store.ErrNotFound, "the new topic has another id")
		ti, err := s.Info("g")
		require.NoError(t, err)
		require.NotEqual(t, old.ID, ti.ID)
		require.Equal(t, uint64(1), ti.LastSeq)
		require.Equal(t, []string{"c"}, payloads(readAll(t, s, "g", 0, 0)))
		require.NoError(t, s.Close())
		requireClean(t, name, dir)
	})
}

// TestStaleTrim: a trim step planned on a state the topic has left fails
// with ErrStaleTrim and changes nothing.
func TestStaleTrim(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.Options{})
		appendN(t, s, "st", 5, 1)
		cmds, err := s.PlanTrim("st", store.TrimPoint{Seq: 100})
		require.NoError(t, err)
		require.Len(t, cmds, 1)
		require.Zero(t, cmds[0].Trim.NewFirstID, "the step empties the topic")
		appendN(t, s, "st", 1, 1) // an append after the plan
		res, err := s.ApplyCommitted([]store.CommittedEntry{{Index: 1, Time: 1, Commands: cmds}})
		require.NoError(t, err)
		require.ErrorIs(t, res[0][0].Err, store.ErrStaleTrim)
		require.ErrorIs(t, res[0][0].Err, store.ErrConflict)
		ti, err := s.Info("st")
		require.NoError(t, err)
		require.Equal(t, uint64(6), ti.Count)
	})
}

// TestTrimStepBytes: a step ends once it holds TrimStepBytes: events of
// exactly 1 MiB stored (key and value) make a step of 16 at the bound, and
// events one byte smaller one of 17.
func TestTrimStepBytes(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.Options{UnsafeNoSync: true})
		// Stored size: 16 key bytes, 5 of version and checksum, 1 of seq
		// and 1 of header count (seqs below 128, no headers), the payload.
		const exact = 1<<20 - 23
		for i, size := range []int{exact, exact - 1} {
			topic := fmt.Sprint("b", i)
			appendN(t, s, topic, 20, size)
			ti, err := s.Info(topic)
			require.NoError(t, err)
			require.Equal(t, uint64(20*(size+23)), ti.Bytes)
			cmds, err := s.PlanTrim(topic, store.TrimPoint{Seq: 21})
			require.NoError(t, err)
			want := uint64(store.TrimStepBytes/(1<<20) + 1 + i)
			require.Equal(t, want, cmds[0].Trim.NewFirstSeq, "size %d", size)
		}
	})
}
