package store

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
)

// TestReadsFormatV1: a folder of format 1 (events without a checksum)
// opens, its events read, new events carry checksums, and its format record
// is raised to 2 so that an older build refuses it.
func TestReadsFormatV1(t *testing.T) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			e, err := engines.Open(name, dir)
			require.NoError(t, err)
			m := topicMeta{id: 1, name: "old", created: 5, firstID: 100, firstSeq: 1, lastID: 100, lastSeq: 1}
			var b engine.Batch
			b.Put(formatKey, []byte{formatV1})
			b.Put(topicIDKey, putUint64(nil, 2))
			b.Put(catalogKey("old"), putUint64(nil, 1))
			b.Put(metaKey(1), m.encodeV1(nil))
			b.Put(eventKey(1, 100), append([]byte{valueVersion, 1, 0}, "v1 event"...))
			require.NoError(t, e.Write(&b, true))

			s, err := Open(e, Options{})
			require.NoError(t, err)
			v, err := e.Get(formatKey)
			require.NoError(t, err)
			require.Equal(t, []byte{FormatVersion, formatV1}, v, "format 3, upgraded from 1")
			ti, err := s.Info("old")
			require.NoError(t, err)
			require.Equal(t, uint64(eventKeyLen+3+len("v1 event")), ti.Bytes, "a meta value of version 1: bytes counted at open")

			res, err := s.Append(context.Background(), "old", []Event{{Payload: []byte("v2 event")}}, ExpectLastSeq(1))
			require.NoError(t, err)
			require.Equal(t, uint64(2), res.FirstSeq)
			p, err := s.Read("old", FromBeginning, 10)
			require.NoError(t, err)
			require.Len(t, p.Events, 2)
			require.Equal(t, "v1 event", string(p.Events[0].Payload))
			require.Equal(t, "v2 event", string(p.Events[1].Payload))
			raw, err := e.Get(eventKey(1, res.FirstID))
			require.NoError(t, err)
			require.Equal(t, byte(eventVersion), raw[0], "new events carry a checksum")
			require.NoError(t, s.Close())

			// Reopened, the folder still reads its format-1 events.
			e, err = engines.Open(name, dir)
			require.NoError(t, err)
			s, err = Open(e, Options{})
			require.NoError(t, err)
			p, err = s.Read("old", FromBeginning, 10)
			require.NoError(t, err)
			require.Len(t, p.Events, 2)
			require.NoError(t, s.Close())
		})
	}
}

// TestReadsFormatV2: a folder of format 2 (metadata without bytes, no
// config or dedupe records) opens, counts its bytes, takes topic configs
// and dedupe keys, and its record is raised to 3 (kept {3, 1} for a
// folder that began at version 1) before any of them is written.
func TestReadsFormatV2(t *testing.T) {
	for _, name := range engines.Names {
		for _, rec := range [][]byte{{formatV2}, {formatV2, formatV1}} {
			t.Run(name, func(t *testing.T) {
				e, err := engines.Open(name, t.TempDir())
				require.NoError(t, err)
				k := eventKey(1, 100)
				m := topicMeta{id: 1, name: "old", created: 5, firstID: 100, firstSeq: 1, lastID: 100, lastSeq: 1}
				var b engine.Batch
				b.Put(formatKey, rec)
				b.Put(topicIDKey, putUint64(nil, 2))
				b.Put(catalogKey("old"), putUint64(nil, 1))
				b.Put(metaKey(1), m.encodeV1(nil))
				v := appendEventValue(nil, k, 1, nil, []byte("v2 event"))
				b.Put(k, v)
				require.NoError(t, e.Write(&b, true))

				s, err := Open(e, Options{})
				require.NoError(t, err)
				got, err := e.Get(formatKey)
				require.NoError(t, err)
				require.Equal(t, append([]byte{FormatVersion}, rec[1:]...), got)
				ti, err := s.Info("old")
				require.NoError(t, err)
				require.Equal(t, uint64(len(k)+len(v)), ti.Bytes)
				ctx := context.Background()
				_, err = s.SetTopicConfig(ctx, "old", TopicConfig{MaxEvents: 10, Set: FieldMaxEvents}, 0)
				require.NoError(t, err)
				res, err := s.Append(ctx, "old", []Event{{Payload: []byte("v3 event"), DedupeKey: "k"}}, ExpectLastSeq(1))
				require.NoError(t, err)
				require.Equal(t, uint64(2), res.FirstSeq)
				p, err := s.Read("old", FromBeginning, 10)
				require.NoError(t, err)
				require.Len(t, p.Events, 2)
				require.Equal(t, "k", p.Events[1].DedupeKey)
				require.NoError(t, s.Close())
			})
		}
	}
}

// TestAtBoundaries: the time seek neither wraps nor overflows.
func TestAtBoundaries(t *testing.T) {
	maxNano := time.Unix(0, math.MaxInt64) // 2262-04-11T23:47:16.854775807Z
	cases := []struct {
		t    time.Time
		want uint64
	}{
		{time.Unix(-1, 0), 0},
		{time.Unix(0, 0), 0},
		{time.Unix(0, 1), 1},
		{time.Unix(1_700_000_000, 5), 1_700_000_000_000_000_005},
		{maxNano, math.MaxInt64},
		{maxNano.Add(time.Nanosecond), math.MaxInt64 + 1},
		{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), uint64(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC).Unix()) * 1e9},
		{time.Unix(18_446_744_073, 709_551_614), math.MaxUint64 - 1},
		{time.Unix(18_446_744_073, 709_551_615), math.MaxUint64},
		{time.Unix(18_446_744_073, 709_551_616), math.MaxUint64},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxUint64},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), math.MaxUint64},
	}
	for _, c := range cases {
		require.Equal(t, c.want, At(c.t), "%s", c.t)
	}
}
