package client

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// wireCases are the requests the encoding tests write.
func wireCases() []struct {
	name   string
	id     uint64
	topic  string
	sends  [][]EventData // merged into one request
	expect *uint64
} {
	seven := uint64(7)
	big := make([]EventData, 50)
	for i := range big {
		big[i] = EventData{Payload: []byte(strings.Repeat("x", 100+i)), Headers: map[string]string{"i": fmt.Sprint(i)}}
	}
	return []struct {
		name   string
		id     uint64
		topic  string
		sends  [][]EventData
		expect *uint64
	}{
		{"one event", 1, "orders", [][]EventData{{{Payload: []byte("created")}}}, nil},
		{"empty payload and headers", 2, "tö/pic", [][]EventData{{{}, {Headers: map[string]string{"": "", "k": "v", "empty": ""}}}}, nil},
		{"expect zero", 1 << 40, "t", [][]EventData{{{Payload: []byte{0, 0xff}}}}, new(uint64)},
		{"expect seven, large", 3, "t", [][]EventData{big}, &seven},
		{"three sends merged", 4, "t", [][]EventData{{{Payload: []byte("a")}}, big[:3], {{Payload: []byte("z")}}}, nil},
		{"nothing", 0, "", nil, nil},
	}
}

func toProto(topic string, sends [][]EventData, expect *uint64) *goethev1.ProduceRequest {
	want := &goethev1.ProduceRequest{Topic: topic, ExpectedLastSeq: expect}
	for _, events := range sends {
		for _, e := range events {
			want.Events = append(want.Events, &goethev1.EventData{Payload: e.Payload, Headers: e.Headers})
		}
	}
	return want
}

// A Producer's request, its Sends' chunks behind a head (in the room the
// first one reserved, or in a buffer of its own), is what the generated
// code decodes as the same ProduceStreamRequest.
func TestRequestMessageMatchesProto(t *testing.T) {
	for _, c := range wireCases() {
		for _, room := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/room=%t", c.name, room), func(t *testing.T) {
				r := &request{tq: &topicQueue{name: c.topic}}
				if c.expect != nil {
					r.expect, r.hasExpect = *c.expect, true
				}
				for _, events := range c.sends {
					size, err := eventsSize(events, 0)
					require.NoError(t, err)
					reserve := 0
					if room {
						reserve = maxStreamHead + produceHeadSize(c.topic, c.expect)
					}
					ch, err := encodeChunk(events, size, reserve)
					require.NoError(t, err)
					require.Equal(t, size > 1024, ch.pooled != nil, "large chunks are pooled")
					r.chunks = append(r.chunks, ch)
					r.size += size
				}
				data, err := codec{}.Marshal(r.message(c.id))
				require.NoError(t, err)
				require.Empty(t, r.chunks, "the chunks went to the message")
				if room && len(c.sends) == 1 && len(c.sends[0]) < 3 {
					require.Len(t, data, 1, "a small Send is one buffer with its head")
				}

				var got goethev1.ProduceStreamRequest
				require.NoError(t, proto.Unmarshal(data.Materialize(), &got))
				data.Free()
				want := &goethev1.ProduceStreamRequest{RequestId: c.id, Produce: toProto(c.topic, c.sends, c.expect)}
				require.True(t, proto.Equal(want, &got), "want %v\ngot  %v", want, &got)
				require.NotNil(t, got.Produce, "produce is present even when empty")
			})
		}
	}
}

// The unary request is the generated code's ProduceRequest.
func TestEncodeProduceMatchesProto(t *testing.T) {
	for _, c := range wireCases() {
		t.Run(c.name, func(t *testing.T) {
			var events []EventData
			for _, s := range c.sends {
				events = append(events, s...)
			}
			req, err := encodeProduce(c.topic, events, c.expect)
			require.NoError(t, err)
			data, err := codec{}.Marshal(req)
			require.NoError(t, err)
			require.Nil(t, req.data, "the buffer went to gRPC")
			var got goethev1.ProduceRequest
			require.NoError(t, proto.Unmarshal(data.Materialize(), &got))
			data.Free()
			want := toProto(c.topic, c.sends, c.expect)
			require.True(t, proto.Equal(want, &got), "want %v\ngot  %v", want, &got)
		})
	}
}

func TestEncodeRefusesInvalidUTF8(t *testing.T) {
	_, err := encodeProduce("a\xffb", nil, nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.True(t, IsReason(err, goethev1.ReasonInvalidName))
	_, err = encodeProduce("t", []EventData{{}, {Headers: map[string]string{"\xff": "v"}}}, nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.Contains(t, err.Error(), "event 1")
	_, err = eventsSize([]EventData{{Headers: map[string]string{"k": "\xff"}}}, 0)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.True(t, IsReason(err, goethev1.ReasonInvalidArgument))
}

// eventsSize counts an event as the server does: payload plus header keys
// and values.
func TestEventsSizeLimit(t *testing.T) {
	ev := []EventData{{Payload: make([]byte, 6), Headers: map[string]string{"ab": "cd"}}} // 10 bytes
	_, err := eventsSize(ev, 10)
	require.NoError(t, err)
	_, err = eventsSize(append([]EventData{{}}, ev...), 9)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.True(t, IsReason(err, goethev1.ReasonLimitExceeded))
	require.Contains(t, err.Error(), "event 1 is 10 bytes (payload and headers), the limit is 9")
}

// The hand decoder reads what the generated code encodes: results, errors
// with details, batched answers in more, and unknown fields.
func TestDecodeProduceAnswersMatchesProto(t *testing.T) {
	st, err := status.New(codes.FailedPrecondition, "expected last seq 7, actual 4").WithDetails(
		&errdetails.ErrorInfo{Domain: goethev1.ErrorDomain, Reason: goethev1.ReasonExpectedLastSeqMismatch, Metadata: map[string]string{"actual_last_seq": "4"}})
	require.NoError(t, err)
	res := &goethev1.ProduceResponse{FirstId: 1_700_000_000_000_000_123, FirstSeq: 9, Count: 3}
	result := &goethev1.ProduceStreamResponse{RequestId: 42, Outcome: &goethev1.ProduceStreamResponse_Result{Result: res}}
	failed := &goethev1.ProduceStreamResponse{RequestId: 43, Outcome: &goethev1.ProduceStreamResponse_Error{Error: st.Proto()}}
	wantRes := ProduceResult{FirstID: 1_700_000_000_000_000_123, FirstSeq: 9, Count: 3}

	b, err := proto.Marshal(result)
	require.NoError(t, err)
	b = append(b, 0xa0, 0x06, 0x01) // field 100, varint 1: unknown, skipped
	var a produceAnswers
	require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:5]), mem.SliceBuffer(b[5:])}, &a))
	require.Equal(t, []answer{{id: 42, result: true, res: wantRes}}, a.list)

	b, err = proto.Marshal(failed)
	require.NoError(t, err)
	require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &a))
	require.Len(t, a.list, 1)
	require.Equal(t, uint64(43), a.list[0].id)
	require.False(t, a.list[0].result)
	require.True(t, proto.Equal(st.Proto(), a.list[0].status))
	var ce *ConflictError
	require.ErrorAs(t, fromStatus(status.FromProto(a.list[0].status)), &ce)
	require.Equal(t, uint64(4), ce.ActualLastSeq)

	// Batched: the top-level answer first, then more's in order, whatever
	// the order of the fields on the wire.
	batched := &goethev1.ProduceStreamResponse{RequestId: 44, Outcome: &goethev1.ProduceStreamResponse_Result{Result: res},
		More: []*goethev1.ProduceStreamAnswer{
			{RequestId: 45, Outcome: &goethev1.ProduceStreamAnswer_Error{Error: st.Proto()}},
			{RequestId: 46, Outcome: &goethev1.ProduceStreamAnswer_Result{Result: &goethev1.ProduceResponse{FirstId: 5, FirstSeq: 6, Count: 1}}},
		}}
	b, err = proto.Marshal(batched)
	require.NoError(t, err)
	more, err := proto.Marshal(&goethev1.ProduceStreamResponse{More: batched.More})
	require.NoError(t, err)
	top, err := proto.Marshal(&goethev1.ProduceStreamResponse{RequestId: 44, Outcome: batched.Outcome})
	require.NoError(t, err)
	for _, b := range [][]byte{b, append(more, top...)} {
		require.NoError(t, a.decode(b))
		require.Len(t, a.list, 3)
		require.Equal(t, answer{id: 44, result: true, res: wantRes}, a.list[0])
		require.Equal(t, uint64(45), a.list[1].id)
		require.True(t, proto.Equal(st.Proto(), a.list[1].status))
		require.Equal(t, answer{id: 46, result: true, res: ProduceResult{FirstID: 5, FirstSeq: 6, Count: 1}}, a.list[2])
	}

	b, err = proto.Marshal(&goethev1.ProduceStreamResponse{RequestId: 47})
	require.NoError(t, err)
	require.NoError(t, a.decode(b))
	require.Equal(t, []answer{{id: 47}}, a.list, "no outcome")

	require.Error(t, a.decode([]byte{0x12, 0x05, 0x08}), "truncated")
	require.Error(t, a.decode([]byte{0x22, 0x03, 0x12, 0x05, 0x08}), "truncated in more")

	// A unary ProduceResponse.
	b, err = proto.Marshal(res)
	require.NoError(t, err)
	var r ProduceResult
	require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &r))
	require.Equal(t, wantRes, r)
}
