package client

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// The hand decoder agrees with the generated code on what the server
// sends.
func TestDecodeBatchMatchesProto(t *testing.T) {
	resp := &goethev1.ConsumeResponse{Topic: "tö/pic"}
	for i := range 300 {
		ev := &goethev1.Event{Id: uint64(1_700_000_000_000_000_000 + i), Seq: uint64(i + 1)}
		if i%3 != 0 {
			ev.Payload = []byte(fmt.Sprintf("payload %d", i))
		}
		if i%4 == 0 {
			ev.Headers = map[string]string{"k": fmt.Sprint(i), "": "empty key", "empty value": ""}
		}
		resp.Events = append(resp.Events, ev)
	}
	skipped := &goethev1.ConsumeResponse{Topic: "t", Skipped: 1 << 40, Events: resp.Events[:2]}
	for _, m := range []*goethev1.ConsumeResponse{resp, {Topic: "t"}, {}, skipped, {Skipped: 3}} {
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		var got batch
		require.NoError(t, got.decode(b))
		requireBatch(t, m, got.events)
		require.Equal(t, m.GetSkipped(), got.skipped)

		// Through the codec, as gRPC calls it.
		var viaCodec batch
		require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &viaCodec))
		requireBatch(t, m, viaCodec.events)
	}
}

func requireBatch(t *testing.T, want *goethev1.ConsumeResponse, got []Event) {
	t.Helper()
	require.Len(t, got, len(want.Events))
	for i, w := range want.Events {
		g := got[i]
		require.Equal(t, want.Topic, g.Topic)
		require.Equal(t, w.Id, g.ID)
		require.Equal(t, w.Seq, g.Seq)
		require.Equal(t, time.Unix(0, int64(w.Id)), g.Time)
		require.Equal(t, string(w.Payload), string(g.Payload))
		require.Equal(t, w.DedupeKey, g.DedupeKey)
		if len(w.Headers) == 0 {
			require.Empty(t, g.Headers)
		} else {
			require.Equal(t, w.Headers, g.Headers)
		}
	}
}

// Unknown fields are skipped, fields may come in any order, a repeated
// scalar's last value wins: what protobuf requires of a decoder.
func TestDecodeBatchUnknownFieldsAndOrder(t *testing.T) {
	var ev []byte
	ev = protowire.AppendTag(ev, 3, protowire.BytesType)
	ev = protowire.AppendBytes(ev, []byte("body"))
	ev = protowire.AppendTag(ev, 99, protowire.VarintType) // unknown
	ev = protowire.AppendVarint(ev, 7)
	ev = protowire.AppendTag(ev, 2, protowire.VarintType)
	ev = protowire.AppendVarint(ev, 1)
	ev = protowire.AppendTag(ev, 2, protowire.VarintType) // last wins
	ev = protowire.AppendVarint(ev, 5)
	ev = protowire.AppendTag(ev, 1, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, 42)
	var entry []byte
	entry = protowire.AppendTag(entry, 2, protowire.BytesType)
	entry = protowire.AppendString(entry, "v")
	entry = protowire.AppendTag(entry, 1, protowire.BytesType)
	entry = protowire.AppendString(entry, "k")
	ev = protowire.AppendTag(ev, 4, protowire.BytesType)
	ev = protowire.AppendBytes(ev, entry)
	ev = protowire.AppendTag(ev, 98, protowire.Fixed32Type) // unknown
	ev = protowire.AppendFixed32(ev, 1)

	var msg []byte
	msg = protowire.AppendTag(msg, 2, protowire.BytesType)
	msg = protowire.AppendBytes(msg, ev)
	msg = protowire.AppendTag(msg, 50, protowire.BytesType) // unknown
	msg = protowire.AppendString(msg, "future field")
	msg = protowire.AppendTag(msg, 1, protowire.BytesType) // topic after the events
	msg = protowire.AppendString(msg, "t")

	var want goethev1.ConsumeResponse
	require.NoError(t, proto.Unmarshal(msg, &want))
	var got batch
	require.NoError(t, got.decode(msg))
	requireBatch(t, &want, got.events)
	require.Equal(t, uint64(5), got.events[0].Seq)
}

func TestDecodeBatchMalformed(t *testing.T) {
	good, err := proto.Marshal(&goethev1.ConsumeResponse{Topic: "t", Events: []*goethev1.Event{
		{Id: 1, Seq: 1, Payload: []byte("abc"), Headers: map[string]string{"k": "v"}},
	}})
	require.NoError(t, err)
	for n := 1; n < len(good); n++ {
		var b batch
		if err := b.decode(good[:n]); err != nil {
			require.ErrorIs(t, err, errMalformed)
		}
	}
	var b batch
	require.ErrorIs(t, b.decode([]byte{0xff}), errMalformed)
}

// Payloads of one batch share a buffer, but appending to one never
// overwrites the next.
func TestDecodeBatchPayloadsAreCapped(t *testing.T) {
	b, err := proto.Marshal(&goethev1.ConsumeResponse{Topic: "t", Events: []*goethev1.Event{
		{Id: 1, Payload: []byte("aa")}, {Id: 2, Payload: []byte("bb")},
	}})
	require.NoError(t, err)
	var got batch
	require.NoError(t, got.decode(b))
	first, second := got.events[0], got.events[1]
	_ = append(first.Payload, "XXXXXXXX"...)
	require.Equal(t, "bb", string(second.Payload))
	require.Equal(t, "aa", string(first.Payload))

	// Decoding the next batch into the same value leaves events already
	// handed out intact.
	require.NoError(t, got.decode(b))
	require.Equal(t, "aa", string(first.Payload))
}
