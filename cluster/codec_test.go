package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/internal/race"
	"github.com/goethe-log/goethe/store"
)

// normalize makes decoded and original commands comparable: the codec does
// not keep the difference between a nil and an empty payload or header map.
func normalize(cmds []store.Command) []store.Command {
	out := make([]store.Command, len(cmds))
	for i, c := range cmds {
		if len(c.Events) > 0 {
			evs := make([]store.Event, len(c.Events))
			for j, e := range c.Events {
				if len(e.Payload) == 0 {
					e.Payload = nil
				}
				if len(e.Headers) == 0 {
					e.Headers = nil
				}
				evs[j] = e
			}
			c.Events = evs
		} else {
			c.Events = nil
		}
		out[i] = c
	}
	return out
}

func TestEntryRoundTrip(t *testing.T) {
	cmds := []store.Command{
		{Kind: store.CommandAppend, Topic: "orders", Expect: store.ExpectLastSeq(7), Events: []store.Event{
			{Payload: []byte("a"), Headers: map[string]string{"z": "1", "a": "", "m": "x\x00y"}},
			{},
		}},
		{Kind: store.CommandAppend, Topic: "t", Expect: store.ExpectLastSeq(0), Events: []store.Event{{Payload: []byte{0xFF}}}},
		{Kind: store.CommandAppend, Topic: "t", Events: []store.Event{{Payload: []byte("b")}}},
		{Kind: store.CommandAppend, Topic: "t", Expect: store.ExpectLastSeq(3), Events: []store.Event{
			{Payload: []byte("k"), DedupeKey: "order-17"}, {Payload: []byte("no key")},
		}},
		{Kind: store.CommandAppend, Topic: "w", DedupeWindow: 2 * time.Minute, Events: []store.Event{{Payload: []byte("c")}}},
		{Kind: store.CommandAppend, Topic: "w", DedupeWindow: -1, Expect: store.ExpectLastSeq(1), Events: []store.Event{{DedupeKey: "x"}}},
		{Kind: store.CommandSetCursor, Topic: "orders", Consumer: "billing", CursorID: 1<<64 - 1},
	}
	data := appendEntry(nil, 1_700_000_000_123_456_789, cmds)
	require.LessOrEqual(t, len(data), entrySize(cmds))
	now, got, err := decodeEntry(data)
	require.NoError(t, err)
	require.Equal(t, int64(1_700_000_000_123_456_789), now)
	require.Equal(t, normalize(cmds), normalize(got))
	require.Equal(t, data, appendEntry(nil, now, got), "the encoding is a function of the commands")

	for cut := range len(data) {
		_, _, err := decodeEntry(data[:cut])
		require.ErrorIs(t, err, ErrBadEntry, "cut at %d", cut)
	}
	_, _, err = decodeEntry(append(data, 0))
	require.ErrorIs(t, err, ErrBadEntry)
	require.Equal(t, byte(entryVersion1), data[0], "appends and cursors without a seq are version 1")
	bad := append([]byte{3}, data[1:]...)
	_, _, err = decodeEntry(bad)
	require.ErrorIs(t, err, ErrBadEntry)

	// An entry of a build before dedupe keys (flags 0 or 1) decodes as
	// before; the dedupe flag without a key is refused.
	old := []byte{1, 5, 1, byte(store.CommandAppend), 1, 't', 1, 3, 1, 0, 1, 'p'}
	_, got, err = decodeEntry(old)
	require.NoError(t, err)
	require.Equal(t, store.ExpectLastSeq(3), got[0].Expect)
	require.Equal(t, []byte("p"), got[0].Events[0].Payload)
	withFlag := []byte{1, 5, 1, byte(store.CommandAppend), 1, 't', 2, 1, 0, 1, 'p', 0}
	_, _, err = decodeEntry(withFlag)
	require.ErrorIs(t, err, ErrBadEntry)
}

// TestEntryOneAllocation: a proposal's entry is allocated once, not grown
// (workload (b) proposes 100 KB entries).
func TestEntryOneAllocation(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	evs := make([]store.Event, 1000)
	for i := range evs {
		evs[i].Payload = make([]byte, 100)
	}
	cmds := []store.Command{{Kind: store.CommandAppend, Topic: "t", DedupeWindow: -1, Events: evs}}
	allocs := testing.AllocsPerRun(10, func() { _ = appendEntry(nil, 1, cmds) })
	require.Equal(t, 1.0, allocs)
}

// TestEntryVersion2: the commands of topic config, trims and deletes, and
// cursors with a seq, round-trip in version-2 entries; a version-1 entry
// with one of the new kinds is refused.
func TestEntryVersion2(t *testing.T) {
	cmds := []store.Command{
		{Kind: store.CommandAppend, Topic: "t", Events: []store.Event{{Payload: []byte("b")}}},
		{Kind: store.CommandSetCursor, Topic: "t", Consumer: "c", CursorID: 5, CursorSeq: 3},
		{Kind: store.CommandSetConfig, Topic: "t", Config: store.TopicConfig{MaxAge: time.Hour, MaxBytes: 1 << 40, Set: store.FieldMaxAge | store.FieldMaxBytes}, Clear: store.FieldDedupeWindow},
		{Kind: store.CommandSetConfig, Topic: "u", Config: store.TopicConfig{MaxEvents: 9, DedupeWindow: time.Minute, Set: store.FieldMaxEvents | store.FieldDedupeWindow}},
		{Kind: store.CommandTrim, Topic: "t", Trim: store.TrimStep{TopicID: 4, FirstSeq: 1, NewFirstID: 1 << 63, NewFirstSeq: 10, Bytes: 12345}},
		{Kind: store.CommandDeleteTopic, Topic: "t", TopicID: 4},
	}
	data := appendEntry(nil, 42, cmds)
	require.LessOrEqual(t, len(data), entrySize(cmds))
	require.Equal(t, byte(entryVersion2), data[0])
	now, got, err := decodeEntry(data)
	require.NoError(t, err)
	require.Equal(t, int64(42), now)
	require.Equal(t, normalize(cmds), normalize(got))
	require.Equal(t, data, appendEntry(nil, now, got))
	for cut := range len(data) {
		_, _, err := decodeEntry(data[:cut])
		require.ErrorIs(t, err, ErrBadEntry, "cut at %d", cut)
	}

	for _, c := range cmds[2:] {
		one := appendEntry(nil, 1, []store.Command{c})
		one[0] = entryVersion1
		_, _, err := decodeEntry(one)
		require.ErrorIs(t, err, ErrBadEntry, "kind %d in version 1", c.Kind)
	}
	flags := appendEntry(nil, 1, []store.Command{{Kind: store.CommandSetConfig, Topic: "t"}})
	flags[len(flags)-2] = 0x80 // an unknown field flag
	_, _, err = decodeEntry(flags)
	require.ErrorIs(t, err, ErrBadEntry)
}

// FuzzEntry: any input decodes or fails with ErrBadEntry, never panics or
// allocates past its size; what decodes encodes back to the same bytes
// (headers sorted, so a canonical input) and decodes to the same commands.
func FuzzEntry(f *testing.F) {
	f.Add(appendEntry(nil, 5, []store.Command{{Kind: store.CommandAppend, Topic: "t", Events: []store.Event{{Payload: []byte("p"), Headers: map[string]string{"b": "2", "a": "1"}}}}}))
	f.Add(appendEntry(nil, 1, []store.Command{{Kind: store.CommandSetCursor, Topic: "t", Consumer: "c", CursorID: 9}}))
	f.Add(appendEntry(nil, 7, []store.Command{{Kind: store.CommandAppend, Topic: "t", Expect: store.ExpectLastSeq(2),
		Events: []store.Event{{Payload: []byte("p"), DedupeKey: "k1"}, {Payload: []byte("q")}}}}))
	f.Add([]byte{1, 0, 0})
	f.Add(appendEntry(nil, 7, []store.Command{{Kind: store.CommandAppend, Topic: "t", DedupeWindow: time.Minute, Events: []store.Event{{Payload: []byte("p")}}}}))
	f.Add(appendEntry(nil, 3, []store.Command{{Kind: store.CommandSetCursor, Topic: "t", Consumer: "c", CursorID: 9, CursorSeq: 2}}))
	f.Add(appendEntry(nil, 3, []store.Command{{Kind: store.CommandSetConfig, Topic: "t", Config: store.TopicConfig{MaxAge: 5, MaxEvents: 6, MaxBytes: 7, DedupeWindow: 8, Set: store.AllConfigFields}, Clear: store.FieldMaxAge}}))
	f.Add(appendEntry(nil, 3, []store.Command{{Kind: store.CommandTrim, Topic: "t", Trim: store.TrimStep{TopicID: 1, FirstSeq: 2, NewFirstID: 3, NewFirstSeq: 4, Bytes: 5}}}))
	f.Add(appendEntry(nil, 3, []store.Command{{Kind: store.CommandDeleteTopic, Topic: "t", TopicID: 1}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		now, cmds, err := decodeEntry(data)
		if err != nil {
			require.ErrorIs(t, err, ErrBadEntry)
			return
		}
		again := appendEntry(nil, now, cmds)
		require.LessOrEqual(t, len(again), entrySize(cmds), "entrySize bounds the entry")
		now2, cmds2, err := decodeEntry(again)
		require.NoError(t, err)
		require.Equal(t, now, now2)
		require.Equal(t, normalize(cmds), normalize(cmds2))
		require.Equal(t, again, appendEntry(nil, now2, cmds2))
	})
}
