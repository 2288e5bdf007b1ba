package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
)

// TestConfigCodec: config values round-trip, and damaged ones are refused.
func TestConfigCodec(t *testing.T) {
	for _, c := range []TopicConfig{
		{},
		{MaxAge: time.Hour, Set: FieldMaxAge},
		{MaxAge: 0, MaxEvents: 0, Set: FieldMaxAge | FieldMaxEvents},
		{MaxAge: 1, MaxEvents: 2, MaxBytes: 3, DedupeWindow: 4, Set: AllConfigFields},
		{MaxBytes: 1 << 62, Set: FieldMaxBytes},
	} {
		got, err := decodeConfig(encodeConfig(nil, &c))
		require.NoError(t, err)
		require.Equal(t, c, got)
	}
	for _, bad := range [][]byte{nil, {valueVersion}, {2, 0}, {valueVersion, 0x10}, {valueVersion, byte(FieldMaxAge)}, {valueVersion, 0, 1}} {
		_, err := decodeConfig(bad)
		require.ErrorIs(t, err, ErrCorrupted, "%x", bad)
	}
}

// TestCursorValueVersions: a cursor value without a seq (older builds)
// and one with a seq both decode.
func TestCursorValueVersions(t *testing.T) {
	id, up, seq, err := decodeCursorSeq(encodeCursor(7, 8, 0))
	require.NoError(t, err)
	require.Equal(t, []uint64{7, 8, 0}, []uint64{id, uint64(up), seq})
	id, up, seq, err = decodeCursorSeq(encodeCursor(7, 8, 9))
	require.NoError(t, err)
	require.Equal(t, []uint64{7, 8, 9}, []uint64{id, uint64(up), seq})
	_, _, _, err = decodeCursorSeq(append(encodeCursor(7, 8, 9), 1))
	require.ErrorIs(t, err, ErrCorrupted)
}

// TestReclaimResumesAfterRestart: a folder left with a deleted topic's
// records and its reclaim record (a store stopped before its reclaim
// finished) is reclaimed once a store opens it, in steps of at most
// ReclaimStepEvents, and checks clean meanwhile and after.
func TestReclaimResumesAfterRestart(t *testing.T) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			e, err := engines.Open(name, dir)
			require.NoError(t, err)
			s, err := Open(e, Options{UnsafeNoSync: true})
			require.NoError(t, err)
			const n = ReclaimStepEvents + 5
			evs := make([]Event, n)
			_, err = s.Append(context.Background(), "r", evs, ExpectAny)
			require.NoError(t, err)
			ti, err := s.Info("r")
			require.NoError(t, err)
			require.NoError(t, s.Close())

			// The state a delete leaves before its reclaim ran.
			e, err = engines.Open(name, dir)
			require.NoError(t, err)
			var b engine.Batch
			b.Delete(catalogKey("r"))
			b.Delete(metaKey(ti.ID))
			b.Put(reclaimKey(ti.ID), []byte{valueVersion})
			require.NoError(t, e.Write(&b, true))
			r, err := Check(e, CheckOptions{})
			require.NoError(t, err)
			require.True(t, r.Clean(), "%+v", r.Problems)
			require.Equal(t, uint64(n), r.Reclaiming)

			s, err = Open(e, Options{})
			require.NoError(t, err)
			defer s.Close()
			require.Eventually(t, func() bool {
				kvs, err := e.Scan([]byte{prefixReclaim}, []byte{prefixReclaim + 1}, 1, 0)
				return err == nil && len(kvs) == 0
			}, 20*time.Second, 5*time.Millisecond)
			kvs, err := e.Scan(eventKey(ti.ID, 0), topicEnd(ti.ID), 1, 0)
			require.NoError(t, err)
			require.Empty(t, kvs)
			require.Equal(t, uint64(n), s.Stats().Reclaimed)
			require.NoError(t, s.Close())
		})
	}
}

// TestCheckFindsBytesMismatch: goethe check reports metadata whose bytes
// do not match the topic's records, and a reclaim record of a topic that
// still exists.
func TestCheckFindsBytesMismatch(t *testing.T) {
	dir := t.TempDir()
	e, err := engines.Open("pebble", dir)
	require.NoError(t, err)
	s, err := Open(e, Options{})
	require.NoError(t, err)
	_, err = s.Append(context.Background(), "m", []Event{{Payload: []byte("x")}}, ExpectAny)
	require.NoError(t, err)
	ti, err := s.Info("m")
	require.NoError(t, err)
	require.NoError(t, s.Close())
	e, err = engines.Open("pebble", dir)
	require.NoError(t, err)
	defer e.Close()
	m := topicMeta{id: ti.ID, name: "m", created: ti.Created.UnixNano(), firstID: ti.FirstID, firstSeq: 1, lastID: ti.LastID, lastSeq: 1, bytes: ti.Bytes + 1}
	var b engine.Batch
	b.Put(metaKey(ti.ID), m.encode(nil))
	b.Put(reclaimKey(ti.ID), []byte{valueVersion})
	b.Put(configKey(ti.ID), []byte{9})
	require.NoError(t, e.Write(&b, true))
	r, err := Check(e, CheckOptions{})
	require.NoError(t, err)
	require.Equal(t, 3, r.ProblemCount, "%+v", r.Problems)
}

// FuzzLifecycleRecords: config, meta and cursor values decode or fail with
// ErrCorrupted, never panic; what decodes encodes back to a value that
// decodes the same.
func FuzzLifecycleRecords(f *testing.F) {
	c := TopicConfig{MaxAge: time.Hour, MaxEvents: 5, Set: FieldMaxAge | FieldMaxEvents}
	f.Add(encodeConfig(nil, &c))
	m := topicMeta{id: 3, name: "t", created: 9, firstID: 10, firstSeq: 1, lastID: 12, lastSeq: 3, bytes: 99}
	f.Add(m.encode(nil))
	f.Add(m.encodeV1(nil))
	f.Add(encodeCursor(7, 8, 9))
	f.Add([]byte{valueVersion, 0xFF})
	f.Fuzz(func(t *testing.T, v []byte) {
		if c, err := decodeConfig(v); err == nil {
			again, err := decodeConfig(encodeConfig(nil, &c))
			require.NoError(t, err)
			require.Equal(t, c, again)
		} else {
			require.ErrorIs(t, err, ErrCorrupted)
		}
		if m, err := decodeMeta(5, v); err == nil {
			again, err := decodeMeta(5, m.encode(nil))
			require.NoError(t, err)
			if m.noBytes {
				m.noBytes = false // encode writes version 2, with bytes 0
			}
			require.Equal(t, m, again)
		} else {
			require.ErrorIs(t, err, ErrCorrupted)
		}
		if id, up, seq, err := decodeCursorSeq(v); err == nil {
			id2, up2, seq2, err := decodeCursorSeq(encodeCursor(id, up, seq))
			require.NoError(t, err)
			require.Equal(t, []uint64{id, uint64(up), seq}, []uint64{id2, uint64(up2), seq2})
		} else {
			require.ErrorIs(t, err, ErrCorrupted)
		}
	})
}

// TestDeleteWakesWaiters: readers blocked at the end of a topic, by name
// (Wait) and by id (WaitTopic), return ErrTopicDeleted when it is deleted,
// and a new topic of the same name does not wake them with nil.
func TestDeleteWakesWaiters(t *testing.T) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			e, err := engines.Open(name, t.TempDir())
			require.NoError(t, err)
			s, err := Open(e, Options{})
			require.NoError(t, err)
			defer s.Close()
			ctx := context.Background()
			_, err = s.Append(ctx, "w", []Event{{Payload: []byte("x")}}, ExpectAny)
			require.NoError(t, err)
			ti, err := s.Info("w")
			require.NoError(t, err)
			tp, err := s.lookup("w")
			require.NoError(t, err)

			done := make(chan error, 2)
			go func() { done <- s.Wait(ctx, "w", ti.LastID+1) }()
			go func() { done <- s.WaitTopic(ctx, "w", ti.ID, ti.LastID+1) }()
			require.Eventually(t, func() bool {
				sig := tp.tail.signal.Load()
				return sig != nil && sig.waiters.Load() == 2
			}, 10*time.Second, time.Millisecond, "both readers block")
			require.NoError(t, s.DeleteTopic(ctx, "w"))
			_, err = s.Append(ctx, "w", []Event{{Payload: []byte("new")}}, ExpectAny)
			require.NoError(t, err)
			for range 2 {
				require.ErrorIs(t, <-done, ErrTopicDeleted)
			}
		})
	}
}
