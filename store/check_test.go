package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// checkFolder fills a store in dir: topic "a" with five events (seqs 1–5)
// and a cursor at its third, topic "b" with three. It returns a's append
// result.
func checkFolder(t *testing.T, name, dir string) store.AppendResult {
	t.Helper()
	s := open(t, name, dir, store.Options{})
	ctx := context.Background()
	evs := events("one", "two", "three", "four", "five")
	evs[1].Headers = map[string]string{"k": "v", "z": "y"}
	res, err := s.Append(ctx, "a", evs, store.ExpectAny)
	require.NoError(t, err)
	_, err = s.Append(ctx, "b", events("x", "y", "z"), store.ExpectAny)
	require.NoError(t, err)
	require.NoError(t, s.SetCursor(ctx, "a", "reader", res.FirstID+2))
	require.NoError(t, s.Close())
	return res
}

// checkEngine opens dir's engine, lets damage change it, and runs Check.
func checkEngine(t *testing.T, name, dir string, opts store.CheckOptions, damage func(e engine.Engine)) *store.CheckReport {
	t.Helper()
	e, err := engines.Open(name, dir)
	require.NoError(t, err)
	defer e.Close()
	if damage != nil {
		damage(e)
	}
	r, err := store.Check(e, opts)
	require.NoError(t, err)
	return r
}

func write(t *testing.T, e engine.Engine, f func(b *engine.Batch)) {
	t.Helper()
	var b engine.Batch
	f(&b)
	require.NoError(t, e.Write(&b, true))
}

// TestCheckCleanFolder: a folder written by the store is clean, and the
// report counts what is in it.
func TestCheckCleanFolder(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		res := checkFolder(t, name, dir)
		r := checkEngine(t, name, dir, store.CheckOptions{}, nil)
		require.True(t, r.Clean(), "%+v", r.Problems)
		require.Empty(t, r.Problems)
		require.Empty(t, r.Warnings)
		require.Equal(t, store.FormatVersion, r.Format)
		require.Equal(t, uint64(8), r.Events)
		require.Equal(t, 1, r.Cursors)
		require.Len(t, r.Topics, 2)
		a := r.Topics[0]
		require.Equal(t, "a", a.Name)
		require.Equal(t, uint64(5), a.Events)
		require.Equal(t, uint64(1), a.FirstSeq)
		require.Equal(t, uint64(5), a.LastSeq)
		require.Equal(t, res.FirstID, a.FirstID)
		require.Equal(t, res.FirstID+4, a.LastID)
		require.Equal(t, uint64(5), a.RecordedLastSeq)
		require.Greater(t, a.Bytes, uint64(5*16))
		require.Equal(t, a.Bytes+r.Topics[1].Bytes, r.Bytes)
		require.Equal(t, "b", r.Topics[1].Name)
		require.Equal(t, uint64(3), r.Topics[1].Events)
	})
}

// TestCheckFindsDamage: each kind of damage is a problem that names the
// topic and the seq, and says what the operator can do.
func TestCheckFindsDamage(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, e engine.Engine, a []engine.KV, res store.AppendResult)
		topic  string
		seq    uint64
		says   string
	}{
		{"flipped byte in an event", func(t *testing.T, e engine.Engine, a []engine.KV, _ store.AppendResult) {
			rewrite(t, e, a[2], func(v []byte) { v[len(v)-1] ^= 0x01 })
		}, "a", 3, "checksum mismatch"},
		{"flipped byte in an event's seq", func(t *testing.T, e engine.Engine, a []engine.KV, _ store.AppendResult) {
			rewrite(t, e, a[1], func(v []byte) { v[5] ^= 0x04 })
		}, "a", 2, "checksum mismatch"},
		{"event deleted in the middle", func(t *testing.T, e engine.Engine, a []engine.KV, _ store.AppendResult) {
			write(t, e, func(b *engine.Batch) { b.Delete(a[2].Key) })
		}, "a", 3, "seqs 3 to 3 are missing"},
		{"first event deleted", func(t *testing.T, e engine.Engine, a []engine.KV, _ store.AppendResult) {
			write(t, e, func(b *engine.Batch) { b.Delete(a[0].Key) })
		}, "a", 1, "the first event has seq 2, but the metadata records the topic starting at seq 1"},
		{"last event deleted", func(t *testing.T, e engine.Engine, a []engine.KV, _ store.AppendResult) {
			write(t, e, func(b *engine.Batch) { b.Delete(a[4].Key) })
		}, "a", 5, "its metadata records last seq 5"},
		{"seq repeated", func(t *testing.T, e engine.Engine, a []engine.KV, _ store.AppendResult) {
			// The last event replaced by one with seq 4, in format 1 (no
			// checksum), which the upgraded folder's record allows.
			write(t, e, func(b *engine.Batch) {
				b.Put([]byte{0xF0}, []byte{store.FormatVersion, 1})
				b.Put(a[4].Key, []byte{1, 4, 0, 'x'})
			})
		}, "a", 4, "seq 4 repeats or goes back"},
		{"event past the metadata", func(t *testing.T, e engine.Engine, a []engine.KV, _ store.AppendResult) {
			key := append([]byte{}, a[4].Key...)
			key[15]++ // the next id; ids are consecutive within an Append
			write(t, e, func(b *engine.Batch) {
				b.Put([]byte{0xF0}, []byte{store.FormatVersion, 1})
				b.Put(key, []byte{1, 6, 0, 'x'})
			})
		}, "a", 6, "its metadata records last seq 5"},
		{"event without checksum in a format-2 folder", func(t *testing.T, e engine.Engine, a []engine.KV, _ store.AppendResult) {
			write(t, e, func(b *engine.Batch) { b.Put(a[1].Key, []byte{1, 2, 0, 'x'}) })
		}, "a", 2, "no checksum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEngine(t, func(t *testing.T, name string) {
				dir := t.TempDir()
				res := checkFolder(t, name, dir)
				e, err := engines.Open(name, dir)
				require.NoError(t, err)
				a := rawEvents(t, e)[:5] // topic a has id 1: its events come first
				tc.damage(t, e, a, res)
				r, err := store.Check(e, store.CheckOptions{})
				require.NoError(t, err)
				require.NoError(t, e.Close())
				require.False(t, r.Clean())
				require.NotEmpty(t, r.Problems)
				p := r.Problems[0]
				require.Equal(t, tc.topic, p.Topic, "%+v", r.Problems)
				require.Equal(t, tc.seq, p.Seq, "%+v", r.Problems)
				require.Contains(t, p.What, tc.says, "%+v", r.Problems)
				require.NotEmpty(t, p.Fix)
				for _, q := range r.Problems {
					require.NotEqual(t, "b", q.Topic, "topic b is intact: %+v", q)
				}
			})
		})
	}
}

// TestCheckCursorPastEnd: a cursor past the topic's end is one a client may
// set (CommitCursor takes any id), so check warns of it and stays clean.
func TestCheckCursorPastEnd(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		res := checkFolder(t, name, dir)
		e, err := engines.Open(name, dir)
		require.NoError(t, err)
		s, err := store.Open(e, store.Options{})
		require.NoError(t, err)
		require.NoError(t, s.SetCursor(context.Background(), "a", "late", res.FirstID+1000))
		require.NoError(t, s.Close())
		e, err = engines.Open(name, dir) // the store closed it
		require.NoError(t, err)
		r, err := store.Check(e, store.CheckOptions{})
		require.NoError(t, err)
		require.NoError(t, e.Close())
		require.True(t, r.Clean(), "%+v", r.Problems)
		require.Len(t, r.Warnings, 1)
		require.Equal(t, "a", r.Warnings[0].Topic)
		require.Contains(t, r.Warnings[0].What, `the cursor of consumer "late" is at event id`)
	})
}

// TestCheckFolderLevelDamage: damage outside a topic's events.
func TestCheckFolderLevelDamage(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(b *engine.Batch)
		problem string // "" for none
		warning string // "" for none
	}{
		{"unknown prefix", func(b *engine.Batch) { b.Put([]byte{0xF9, 'x'}, []byte("?")) }, "", "prefix 0xf9"},
		{"events of no topic", func(b *engine.Batch) {
			b.Put([]byte{0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 1}, []byte("?"))
		}, "under topic id 99, which has no metadata", ""},
		{"catalog without metadata", func(b *engine.Batch) {
			b.Put([]byte{0xF1, 'c'}, []byte{0, 0, 0, 0, 0, 0, 0, 2})
		}, "topic id 2 is also the id of topic", ""},
		{"metadata missing", func(b *engine.Batch) { b.Delete([]byte{0xF2, 0, 0, 0, 0, 0, 0, 0, 2}) }, "in the catalog but has no metadata", ""},
		{"unknown format", func(b *engine.Batch) { b.Put([]byte{0xF0}, []byte{9}) }, "a version this build does not read", ""},
		{"cursor of no topic", func(b *engine.Batch) {
			b.Put([]byte{0xF3, 0, 0, 0, 0, 0, 0, 0, 7, 'c'}, []byte{1, 1, 1})
		}, "which does not exist", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEngine(t, func(t *testing.T, name string) {
				dir := t.TempDir()
				checkFolder(t, name, dir)
				r := checkEngine(t, name, dir, store.CheckOptions{}, func(e engine.Engine) { write(t, e, tc.damage) })
				if tc.problem == "" {
					require.True(t, r.Clean(), "%+v", r.Problems)
				} else {
					require.False(t, r.Clean())
					require.Contains(t, fmt.Sprint(r.Problems), tc.problem)
				}
				if tc.warning == "" {
					require.Empty(t, r.Warnings)
				} else {
					require.Contains(t, fmt.Sprint(r.Warnings), tc.warning)
				}
			})
		})
	}
}

// TestCheckEmptyEngine: an engine with nothing in it is a problem, unless
// the caller says the folder may be new.
func TestCheckEmptyEngine(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		r := checkEngine(t, name, dir, store.CheckOptions{}, nil)
		require.False(t, r.Clean())
		require.Contains(t, r.Problems[0].What, "holds no data at all")
		r = checkEngine(t, name, dir, store.CheckOptions{AllowEmpty: true}, nil)
		require.True(t, r.Clean())
	})
}

// TestCheckPaging: the result does not depend on the page size, also at a
// page that ends exactly on a topic's last event, and at pages bounded by
// bytes.
func TestCheckPaging(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		checkFolder(t, name, dir)
		want := checkEngine(t, name, dir, store.CheckOptions{}, nil)
		for _, o := range []store.CheckOptions{{PageEvents: 1}, {PageEvents: 4}, {PageEvents: 5}, {PageEvents: 6}, {PageEvents: 8}, {PageEvents: 9}, {PageBytes: 1}} {
			got := checkEngine(t, name, dir, o, nil)
			require.Equal(t, want.Topics, got.Topics, "%+v", o)
			require.Equal(t, want.Events, got.Events, "%+v", o)
			require.Equal(t, want.Cursors, got.Cursors, "%+v", o)
			require.True(t, got.Clean(), "%+v: %+v", o, got.Problems)
		}
	})
}

// TestCheckMaxFindings: the report keeps at most MaxFindings problems and
// counts them all.
func TestCheckMaxFindings(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		checkFolder(t, name, dir)
		e, err := engines.Open(name, dir)
		require.NoError(t, err)
		for _, kv := range rawEvents(t, e)[:3] {
			rewrite(t, e, kv, func(v []byte) { v[len(v)-1] ^= 0xFF })
		}
		require.NoError(t, e.Close())
		for _, max := range []int{3, 2} { // at the count of problems, and under it
			r := checkEngine(t, name, dir, store.CheckOptions{MaxFindings: max}, nil)
			require.Equal(t, 3, r.ProblemCount)
			require.Len(t, r.Problems, max)
		}
		r := checkEngine(t, name, dir, store.CheckOptions{}, nil)
		require.Len(t, r.Problems, 3, "the default keeps them all")
	})
}

// badBlock wraps a real engine with the fault an adapter reports for a
// block that fails its checksum: every Scan whose page would hold the key
// bad fails with engine.ErrCorrupted.
type badBlock struct {
	engine.Engine
	bad []byte
}

func (b badBlock) Scan(start, end []byte, limit, maxBytes int) ([]engine.KV, error) {
	kvs, err := b.Engine.Scan(start, end, limit, maxBytes)
	for _, kv := range kvs {
		if bytes.Equal(kv.Key, b.bad) {
			return nil, fmt.Errorf("%w: block checksum mismatch (injected)", engine.ErrCorrupted)
		}
	}
	return kvs, err
}

// TestCheckEngineReportsDamage: damage the engine itself reports while
// Check reads a topic is a problem naming the topic and where it stopped;
// the check goes on with the next topic.
func TestCheckEngineReportsDamage(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		checkFolder(t, name, dir)
		e, err := engines.Open(name, dir)
		require.NoError(t, err)
		defer e.Close()
		a := rawEvents(t, e)[:5]
		r, err := store.Check(badBlock{e, a[2].Key}, store.CheckOptions{PageEvents: 1})
		require.NoError(t, err)
		require.Equal(t, 1, r.ProblemCount, "%+v", r.Problems)
		p := r.Problems[0]
		require.Equal(t, "a", p.Topic)
		require.Equal(t, uint64(3), p.Seq)
		require.Contains(t, p.What, "the engine reports damaged data reading on after seq 2")
		require.Len(t, r.Topics, 2)
		require.Equal(t, uint64(2), r.Topics[0].Events, "a's events before the damage")
		require.Equal(t, uint64(3), r.Topics[1].Events, "b is read whole")
	})
}

// BenchmarkCheck measures Check over a folder of checkEvents events of 100
// bytes in 10 topics, per engine: ns/op is one whole check; events/s is
// reported too.
func BenchmarkCheck(b *testing.B) {
	const checkEvents, topics, batch = 100_000, 10, 1000
	for _, name := range engines.Names {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			e, err := engines.Open(name, dir)
			require.NoError(b, err)
			s, err := store.Open(e, store.Options{UnsafeNoSync: true})
			require.NoError(b, err)
			evs := make([]store.Event, batch)
			for i := range evs {
				evs[i] = store.Event{Payload: bytes.Repeat([]byte{'x'}, 100)}
			}
			for i := range checkEvents / batch {
				_, err := s.Append(context.Background(), fmt.Sprintf("t%d", i%topics), evs, store.ExpectAny)
				require.NoError(b, err)
			}
			require.NoError(b, s.Close())
			e, err = engines.Open(name, dir)
			require.NoError(b, err)
			defer e.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r, err := store.Check(e, store.CheckOptions{})
				require.NoError(b, err)
				require.True(b, r.Clean())
				require.Equal(b, uint64(checkEvents), r.Events)
			}
			b.ReportMetric(float64(checkEvents*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
