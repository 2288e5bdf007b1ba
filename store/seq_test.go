package store_test

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/store"
)

// countingReader counts SeqPosition's reads.
type countingReader struct {
	*store.Store
	reads int
}

func (c *countingReader) Read(topic string, from uint64, limit int) (store.Page, error) {
	c.reads++
	return c.Store.Read(topic, from, limit)
}

// TestSeqPosition: every seq of a topic whose ids are spaced steadily, in
// bursts and with pauses up to 2^60 ns maps to its event's id, on every
// engine and after a reopen (reads from the engine, not the live tail);
// seqs outside the topic map to its first event and to its end; a steady
// topic needs a few reads, any topic at most 128.
func TestSeqPosition(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		clock := &fakeClock{}
		opts := store.DefaultOptions()
		opts.Clock = clock.now
		s := open(t, name, dir, opts)
		ctx := context.Background()

		// "steady": one event every 1ms. "bursty": runs of consecutive ids
		// (one Append) separated by pauses that grow to 2^60 ns.
		clock.ns.Store(1_000_000_000)
		for range 500 {
			clock.ns.Add(1_000_000)
			_, err := s.Append(ctx, "steady", events("e"), store.ExpectAny)
			require.NoError(t, err)
		}
		clock.ns.Store(1_000_000_000)
		for i := range 60 {
			clock.ns.Add(int64(1) << i)
			_, err := s.Append(ctx, "bursty", events(make([]string, 1+i%7)...), store.ExpectAny)
			require.NoError(t, err)
		}

		check := func(t *testing.T, s *store.Store, topic string, maxReads int) {
			all := readAll(t, s, topic, store.FromBeginning, 0)
			worst := 0
			for _, e := range all {
				c := &countingReader{Store: s}
				pos, exhausted, err := store.SeqPosition(c, topic, e.Seq)
				require.NoError(t, err)
				require.False(t, exhausted)
				require.Equal(t, e.ID, pos, "seq %d", e.Seq)
				worst = max(worst, c.reads)
			}
			require.LessOrEqual(t, worst, maxReads, "reads for one seq of %q", topic)

			pos, _, err := store.SeqPosition(s, topic, 0)
			require.NoError(t, err)
			require.Equal(t, all[0].ID, pos, "seq 0 is the first event")
			last := all[len(all)-1]
			for _, seq := range []uint64{last.Seq + 1, last.Seq + 100, math.MaxUint64} {
				pos, exhausted, err := store.SeqPosition(s, topic, seq)
				require.NoError(t, err)
				require.False(t, exhausted)
				require.Equal(t, last.ID+1, pos, "seq %d past the last is the end", seq)
			}
		}
		t.Run("tail", func(t *testing.T) {
			check(t, s, "steady", 6)
			check(t, s, "bursty", 128)
		})
		require.NoError(t, s.Close())
		s = open(t, name, dir, opts)
		t.Run("engine", func(t *testing.T) {
			check(t, s, "steady", 6)
			check(t, s, "bursty", 128)
		})

		_, _, err := store.SeqPosition(s, "absent", 1)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}
