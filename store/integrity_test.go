package store_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// rawEvents returns the event records of the store's folder, read with the
// engine alone: every key below the system prefixes.
func rawEvents(t *testing.T, e engine.Engine) []engine.KV {
	t.Helper()
	kvs, err := e.Scan(nil, []byte{0xF0}, 1000, 0)
	require.NoError(t, err)
	return kvs
}

// rewrite puts kv back into e with value changed by f.
func rewrite(t *testing.T, e engine.Engine, kv engine.KV, f func(v []byte)) {
	t.Helper()
	v := bytes.Clone(kv.Value)
	f(v)
	var b engine.Batch
	b.Put(kv.Key, v)
	require.NoError(t, e.Write(&b, true))
}

// TestDamagedEventIsDataLoss: a stored event changed on disk (one flipped
// payload byte, one flipped seq byte) fails the read that meets it with
// ErrCorrupted; it is never served changed, and the events before it still
// read.
func TestDamagedEventIsDataLoss(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		s := open(t, name, dir, store.Options{})
		res, err := s.Append(context.Background(), "t", events("first", "second", "third"), store.ExpectAny)
		require.NoError(t, err)
		require.NoError(t, s.Close())

		e, err := engines.Open(name, dir)
		require.NoError(t, err)
		kvs := rawEvents(t, e)
		require.Len(t, kvs, 3)
		rewrite(t, e, kvs[1], func(v []byte) { v[len(v)-1] ^= 0x01 }) // "second" → "secone"
		require.NoError(t, e.Close())

		s = open(t, name, dir, store.Options{})
		_, err = s.Read("t", store.FromBeginning, 10)
		require.ErrorIs(t, err, store.ErrCorrupted)
		require.Contains(t, err.Error(), "checksum mismatch")
		p, err := s.Read("t", store.FromBeginning, 1)
		require.NoError(t, err)
		require.Equal(t, []string{"first"}, payloads(p.Events))
		p, err = s.Read("t", store.After(res.FirstID+1), 10)
		require.NoError(t, err, "the events after the damaged one still read")
		require.Equal(t, []string{"third"}, payloads(p.Events))
		require.NoError(t, s.Close())
	})
}

// TestOpenChecksTopicEnds: a store refuses to open when a topic's metadata
// and its events disagree (the last event lost, damaged, or followed by
// another), saying what is wrong.
func TestOpenChecksTopicEnds(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, e engine.Engine, kvs []engine.KV)
		says   string
	}{
		{"last event missing", func(t *testing.T, e engine.Engine, kvs []engine.KV) {
			var b engine.Batch
			b.Delete(kvs[len(kvs)-1].Key)
			require.NoError(t, e.Write(&b, true))
		}, "that event is missing"},
		{"last event damaged", func(t *testing.T, e engine.Engine, kvs []engine.KV) {
			rewrite(t, e, kvs[len(kvs)-1], func(v []byte) { v[len(v)-1] ^= 0x80 })
		}, "does not read back"},
		{"an event past the last", func(t *testing.T, e engine.Engine, kvs []engine.KV) {
			last := kvs[len(kvs)-1]
			// The next id: the key plus one, carried (a last byte of
			// 0xFF, one run in 256, wrapped before it instead).
			k := bytes.Clone(last.Key)
			for i := len(k) - 1; i >= 0; i-- {
				if k[i]++; k[i] != 0 {
					break
				}
			}
			var b engine.Batch
			b.Put(k, last.Value)
			require.NoError(t, e.Write(&b, true))
		}, "follows it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEngine(t, func(t *testing.T, name string) {
				dir := t.TempDir()
				s := open(t, name, dir, store.Options{})
				_, err := s.Append(context.Background(), "t", events("a", "b"), store.ExpectAny)
				require.NoError(t, err)
				require.NoError(t, s.Close())

				e, err := engines.Open(name, dir)
				require.NoError(t, err)
				c.damage(t, e, rawEvents(t, e))
				_, err = store.Open(e, store.Options{})
				require.ErrorIs(t, err, store.ErrCorrupted)
				require.Contains(t, err.Error(), `topic "t"`)
				require.Contains(t, err.Error(), c.says)
				require.NoError(t, e.Close())
			})
		})
	}
}

// With MustExist an engine that holds no log is refused, and left as it
// was: Open writes nothing into it.
func TestMustExist(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		e, err := engines.Open(name, t.TempDir())
		require.NoError(t, err)
		defer e.Close()
		_, err = store.Open(e, store.Options{MustExist: true})
		require.ErrorIs(t, err, store.ErrCorrupted)
		kvs, err := e.Scan(nil, nil, 1, 0)
		require.NoError(t, err)
		require.Empty(t, kvs)
	})
}
