package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// keyed returns events whose payload is their key ("" for no key).
func keyed(keys ...string) []store.Event {
	out := make([]store.Event, len(keys))
	for i, k := range keys {
		out[i] = store.Event{Payload: []byte("p-" + k), DedupeKey: k}
	}
	return out
}

const window = time.Minute

func dedupeOpts(clock *fakeClock) store.Options {
	return store.Options{Clock: clock.now, DedupeWindow: window}
}

// dedupeRecords counts the dedupe records in e (prefix 0xF8).
func dedupeRecords(t *testing.T, e engine.Engine) int {
	t.Helper()
	kvs, err := e.Scan([]byte{0xF8}, []byte{0xF9}, 1<<30, 0)
	require.NoError(t, err)
	return len(kvs)
}

// TestDedupe: a key stored within the window is not stored again, also
// within one append and across a restart; the answer names the original;
// an append of duplicates only ignores its (stale) expectation, a mixed
// one does not; keys are read back; once the window has passed the key is
// stored again.
func TestDedupe(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		clock := &fakeClock{}
		t0 := int64(1_000_000_000_000)
		clock.ns.Store(t0)
		s := open(t, name, dir, dedupeOpts(clock))
		ctx := context.Background()

		first, err := s.Append(ctx, "d", keyed("k1", "k2"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, store.AppendResult{FirstID: uint64(t0), FirstSeq: 1, Count: 2}, first)

		clock.ns.Add(int64(time.Second))
		res, err := s.Append(ctx, "d", keyed("k1"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, store.AppendResult{Duplicates: []store.Duplicate{{Index: 0, ID: uint64(t0), Seq: 1}}}, res)

		// The retry of a conditional append that succeeded succeeds.
		res, err = s.Append(ctx, "d", keyed("k2", "k1"), store.ExpectLastSeq(0))
		require.NoError(t, err)
		require.Equal(t, []store.Duplicate{{0, uint64(t0) + 1, 2}, {1, uint64(t0), 1}}, res.Duplicates)
		require.Zero(t, res.Count)

		// A key twice in one append, and an event without a key.
		now := clock.ns.Load()
		res, err = s.Append(ctx, "d", keyed("k3", "k3", ""), store.ExpectLastSeq(2))
		require.NoError(t, err)
		require.Equal(t, store.AppendResult{FirstID: uint64(now), FirstSeq: 3, Count: 2,
			Duplicates: []store.Duplicate{{Index: 1, ID: uint64(now), Seq: 3}}}, res)

		// Mixed: the expectation applies to the part stored.
		_, err = s.Append(ctx, "d", keyed("k1", "k4"), store.ExpectLastSeq(2))
		require.ErrorIs(t, err, store.ErrConflict)
		res, err = s.Append(ctx, "d", keyed("k1", "k4"), store.ExpectLastSeq(4))
		require.NoError(t, err)
		require.Equal(t, 1, res.Count)
		require.Equal(t, uint64(5), res.FirstSeq)
		require.Equal(t, []store.Duplicate{{0, uint64(t0), 1}}, res.Duplicates)

		all := readAll(t, s, "d", 0, 2)
		require.Len(t, all, 5)
		var keys []string
		for i, e := range all {
			require.Equal(t, uint64(i+1), e.Seq)
			keys = append(keys, e.DedupeKey)
		}
		require.Equal(t, []string{"k1", "k2", "k3", "", "k4"}, keys)

		// The window survives a restart.
		require.NoError(t, s.Close())
		s = open(t, name, dir, dedupeOpts(clock))
		res, err = s.Append(ctx, "d", keyed("k1", "k3"), store.ExpectAny)
		require.NoError(t, err)
		require.Zero(t, res.Count)
		require.Len(t, res.Duplicates, 2)

		// Past the window, a key is stored again.
		clock.ns.Store(t0 + int64(window) + 1)
		res, err = s.Append(ctx, "d", keyed("k1", "k3"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, 1, res.Count, "k1 expired, k3 (stored a second later) did not")
		require.Equal(t, []store.Duplicate{{1, uint64(now), 3}}, res.Duplicates)
		require.NoError(t, s.Close())

		r := checkEngine(t, name, dir, store.CheckOptions{}, nil)
		require.Empty(t, r.Problems)
		require.Empty(t, r.Warnings)
	})
}

// TestDedupeExpiryIsBounded: expired records are removed by later appends
// to the topic, at most DedupeExpireStep per commit, and the store keeps
// only the last window's records; a reopened store loads only those.
func TestDedupeExpiryIsBounded(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		clock := &fakeClock{}
		clock.ns.Store(1e12)
		s, e := openEngine(t, name, dir, dedupeOpts(clock))
		ctx := context.Background()
		n := store.DedupeExpireStep + 100
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("key-%d", i)
		}
		_, err := s.Append(ctx, "d", keyed(keys...), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, n, dedupeRecords(t, e))

		clock.ns.Add(int64(window) + int64(n) - 1) // every key but the last one expired
		_, err = s.Append(ctx, "d", keyed("fresh"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, 100+1, dedupeRecords(t, e), "one step removed")
		_, err = s.Append(ctx, "d", events("plain"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, 2, dedupeRecords(t, e), "the next step removed the rest")

		res, err := s.Append(ctx, "d", keyed(keys[0], keys[n-1], "fresh"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, 1, res.Count, "the expired key is stored again")
		require.Len(t, res.Duplicates, 2)
	})
}

// TestDedupeMemoryLimit: a topic remembers at most MaxDedupeKeys keys; the
// oldest are forgotten first, counted in Stats, and the limit holds after a
// restart too.
func TestDedupeMemoryLimit(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		clock := &fakeClock{}
		clock.ns.Store(1e12)
		opts := dedupeOpts(clock)
		opts.MaxDedupeKeys = 3
		s, e := openEngine(t, name, dir, opts)
		ctx := context.Background()
		_, err := s.Append(ctx, "d", keyed("a", "b"), store.ExpectAny)
		require.NoError(t, err)
		_, err = s.Append(ctx, "d", keyed("c", "d", "e"), store.ExpectAny) // at and past the limit
		require.NoError(t, err)
		require.Equal(t, uint64(2), s.Stats().DedupeForgotten)
		require.Equal(t, 3, dedupeRecords(t, e), "records follow memory")

		res, err := s.Append(ctx, "d", keyed("e", "c"), store.ExpectAny)
		require.NoError(t, err)
		require.Len(t, res.Duplicates, 2, "the newest three are remembered")
		require.NoError(t, s.Close())

		s = open(t, name, dir, opts)
		res, err = s.Append(ctx, "d", keyed("a", "c", "d", "e"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, 1, res.Count, "a was forgotten")
		require.Len(t, res.Duplicates, 3)
	})
}

// TestDedupeOff: with a negative window nothing is deduplicated, but keys
// are still stored with their events.
func TestDedupeOff(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s, e := openEngine(t, name, t.TempDir(), store.Options{DedupeWindow: -1})
		ctx := context.Background()
		for range 2 {
			res, err := s.Append(ctx, "d", keyed("k", "k"), store.ExpectAny)
			require.NoError(t, err)
			require.Equal(t, 2, res.Count)
			require.Empty(t, res.Duplicates)
		}
		all := readAll(t, s, "d", 0, 10)
		require.Len(t, all, 4)
		require.Equal(t, "k", all[3].DedupeKey)
		require.Zero(t, dedupeRecords(t, e))
	})
}

// TestDedupeKeyLimit: MaxDedupeKeyLen bytes of UTF-8 are accepted, one
// more byte or invalid UTF-8 is ErrInvalid.
func TestDedupeKeyLimit(t *testing.T) {
	s := open(t, engines.Names[0], t.TempDir(), store.Options{})
	ctx := context.Background()
	at := strings.Repeat("k", store.MaxDedupeKeyLen)
	res, err := s.Append(ctx, "d", keyed(at), store.ExpectAny)
	require.NoError(t, err)
	require.Equal(t, 1, res.Count)
	all := readAll(t, s, "d", 0, 10)
	require.Equal(t, at, all[0].DedupeKey)
	_, err = s.Append(ctx, "d", keyed(at+"k"), store.ExpectAny)
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.Append(ctx, "d", keyed("\xff"), store.ExpectAny)
	require.ErrorIs(t, err, store.ErrInvalid)
	require.NoError(t, store.ValidateDedupeKey(""))
}

// TestApplyCommittedDedupe: replicas decide duplicates alike from the
// leader's times, whether they apply the log at once or entry by entry
// with a restart in between, whatever their own clocks say.
func TestApplyCommittedDedupe(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		base := int64(1_700_000_000_000_000_000)
		cmd := func(keys ...string) store.Command {
			return store.Command{Kind: store.CommandAppend, Topic: "d", Events: keyed(keys...)}
		}
		log := []store.CommittedEntry{
			{Index: 1, Time: base, Commands: []store.Command{cmd("k1", "k2", "k1")}},
			{Index: 2, Time: base + 10, Commands: []store.Command{cmd("k1", "k3"), cmd("k3")}},
			{Index: 3, Time: base + int64(window) + 5, Commands: []store.Command{cmd("k1", "k2", "k3")}},
		}
		a, ea := openEngine(t, name, t.TempDir(), store.Options{DedupeWindow: window})
		resA, err := a.ApplyCommitted(log)
		require.NoError(t, err)

		dirB := t.TempDir()
		future := func() int64 { return base + int64(time.Hour) }
		b := open(t, name, dirB, store.Options{DedupeWindow: window, Clock: future})
		resB, err := b.ApplyCommitted(log[:2])
		require.NoError(t, err)
		require.NoError(t, b.Close())
		b2, eb := openEngine(t, name, dirB, store.Options{DedupeWindow: window, Clock: future})
		more, err := b2.ApplyCommitted(log[2:])
		require.NoError(t, err)
		resB = append(resB, more...)
		require.Equal(t, resA, resB)
		require.Equal(t, dump(t, ea), dump(t, eb))

		require.Equal(t, []store.Duplicate{{Index: 2, ID: uint64(base), Seq: 1}}, resA[0][0].Append.Duplicates)
		require.Equal(t, 1, resA[1][0].Append.Count)
		require.Zero(t, resA[1][1].Append.Count, "k3 of the same entry's first command")
		require.Equal(t, 2, resA[2][0].Append.Count, "k1 and k2 expired, k3 (10 ns younger) did not")
	})
}

// TestApplyCommittedLeaderWindow: a replica applies the dedupe window the
// leader put in the entry, not its own, so replicas with different
// --dedupe-window settings still decide alike.
func TestApplyCommittedLeaderWindow(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		base := int64(1_700_000_000_000_000_000)
		cmd := func(w time.Duration, keys ...string) store.Command {
			return store.Command{Kind: store.CommandAppend, Topic: "d", Events: keyed(keys...), DedupeWindow: w}
		}
		log := []store.CommittedEntry{
			{Index: 1, Time: base, Commands: []store.Command{cmd(time.Hour, "k1")}},
			{Index: 2, Time: base + int64(10*time.Minute), Commands: []store.Command{cmd(time.Hour, "k1")}},
			{Index: 3, Time: base + int64(20*time.Minute), Commands: []store.Command{cmd(-1, "k1")}},
		}
		var dumps [][]engine.KV
		for _, own := range []time.Duration{-1, time.Minute, 2 * time.Hour} {
			s, e := openEngine(t, name, t.TempDir(), store.Options{DedupeWindow: own})
			res, err := s.ApplyCommitted(log)
			require.NoError(t, err)
			require.Zero(t, res[1][0].Append.Count, "own window %v: k1 is within the leader's hour", own)
			require.Equal(t, 1, res[2][0].Append.Count, "own window %v: the leader turned dedupe off", own)
			dumps = append(dumps, dump(t, e))
		}
		require.Equal(t, dumps[0], dumps[1])
		require.Equal(t, dumps[0], dumps[2])
	})
}

// TestTopicDedupeWindow: a topic's own dedupe window (SetTopicConfig)
// overrides the store's, off included, and holds across a restart.
func TestTopicDedupeWindow(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		clock := &fakeClock{}
		clock.ns.Store(int64(1_000_000_000_000))
		s := open(t, name, dir, dedupeOpts(clock)) // the store's window: a minute
		ctx := context.Background()
		_, err := s.SetTopicConfig(ctx, "long", store.TopicConfig{DedupeWindow: time.Hour, Set: store.FieldDedupeWindow}, 0)
		require.NoError(t, err)
		_, err = s.SetTopicConfig(ctx, "off", store.TopicConfig{Set: store.FieldDedupeWindow}, 0)
		require.NoError(t, err)
		for _, topic := range []string{"long", "off", "plain"} {
			_, err := s.Append(ctx, topic, keyed("k"), store.ExpectAny)
			require.NoError(t, err)
		}
		clock.ns.Add(int64(10 * time.Minute))
		require.NoError(t, s.Close())
		s = open(t, name, dir, dedupeOpts(clock))
		for topic, stored := range map[string]int{"long": 0, "off": 1, "plain": 1} {
			res, err := s.Append(ctx, topic, keyed("k"), store.ExpectAny)
			require.NoError(t, err)
			require.Equal(t, stored, res.Count, "topic %s", topic)
		}
		ti, err := s.Info("plain")
		require.NoError(t, err)
		require.Equal(t, window, ti.Effective.DedupeWindow, "the store's window is the default a topic shows")
		ti, err = s.Info("long")
		require.NoError(t, err)
		require.Equal(t, time.Hour, ti.Effective.DedupeWindow)
	})
}
