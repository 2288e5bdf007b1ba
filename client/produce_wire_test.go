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

// The hand encoder writes what the generated code decodes as the same
// ProduceStreamRequest, small (plain buffer) and large (pooled buffer).
func TestEncodeProduceMatchesProto(t *testing.T) {
	seven := uint64(7)
	big := make([]EventData, 50)
	for i := range big {
		big[i] = EventData{Payload: []byte(strings.Repeat("x", 100+i)), Headers: map[string]string{"i": fmt.Sprint(i)}}
	}
	cases := []struct {
		name   string
		id     uint64
		topic  string
		events []EventData
		expect *uint64
	}{
		{"one event", 1, "orders", []EventData{{Payload: []byte("created")}}, nil},
		{"empty payload and headers", 2, "tö/pic", []EventData{{}, {Headers: map[string]string{"": "", "k": "v", "empty": ""}}}, nil},
		{"expect zero", 1 << 40, "t", []EventData{{Payload: []byte{0, 0xff}}}, new(uint64)},
		{"expect seven, large", 3, "t", big, &seven},
		{"nothing", 0, "", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, size, err := encodeProduce(c.id, c.topic, c.events, c.expect)
			require.NoError(t, err)
			data, err := codec{}.Marshal(req)
			require.NoError(t, err)
			require.Nil(t, req.data, "the buffer went to gRPC")
			require.Equal(t, size, data.Len())

			var got goethev1.ProduceStreamRequest
			require.NoError(t, proto.Unmarshal(data.Materialize(), &got))
			data.Free()
			want := &goethev1.ProduceStreamRequest{RequestId: c.id, Produce: &goethev1.ProduceRequest{Topic: c.topic, ExpectedLastSeq: c.expect}}
			for _, e := range c.events {
				want.Produce.Events = append(want.Produce.Events, &goethev1.EventData{Payload: e.Payload, Headers: e.Headers})
			}
			require.True(t, proto.Equal(want, &got), "want %v\ngot  %v", want, &got)
			require.NotNil(t, got.Produce, "produce is present even when empty")
		})
	}
}

func TestEncodeProduceRefusesInvalidUTF8(t *testing.T) {
	_, _, err := encodeProduce(1, "a\xffb", nil, nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, _, err = encodeProduce(1, "t", []EventData{{}, {Headers: map[string]string{"\xff": "v"}}}, nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.Contains(t, err.Error(), "event 1")
	_, _, err = encodeProduce(1, "t", []EventData{{Headers: map[string]string{"k": "\xff"}}}, nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
}

// The hand decoder reads what the generated code encodes: results, errors
// with details, and unknown fields.
func TestDecodeProduceAnswerMatchesProto(t *testing.T) {
	st, err := status.New(codes.FailedPrecondition, "expected last seq 7, actual 4").WithDetails(
		&errdetails.ErrorInfo{Reason: "EXPECTED_LAST_SEQ_MISMATCH", Metadata: map[string]string{"actual_last_seq": "4"}})
	require.NoError(t, err)
	result := &goethev1.ProduceStreamResponse{RequestId: 42, Outcome: &goethev1.ProduceStreamResponse_Result{
		Result: &goethev1.ProduceResponse{FirstId: 1_700_000_000_000_000_123, FirstSeq: 9, Count: 3}}}
	failed := &goethev1.ProduceStreamResponse{RequestId: 43, Outcome: &goethev1.ProduceStreamResponse_Error{Error: st.Proto()}}

	b, err := proto.Marshal(result)
	require.NoError(t, err)
	b = append(b, 0xa0, 0x06, 0x01) // field 100, varint 1: unknown, skipped
	var a produceAnswer
	require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:5]), mem.SliceBuffer(b[5:])}, &a))
	require.Equal(t, produceAnswer{id: 42, result: true, res: ProduceResult{FirstID: 1_700_000_000_000_000_123, FirstSeq: 9, Count: 3}}, a)

	b, err = proto.Marshal(failed)
	require.NoError(t, err)
	require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &a))
	require.Equal(t, uint64(43), a.id)
	require.False(t, a.result)
	require.True(t, proto.Equal(st.Proto(), a.status))
	var ce *ConflictError
	require.ErrorAs(t, wrapError(status.FromProto(a.status).Err()), &ce)
	require.Equal(t, uint64(4), ce.ActualLastSeq)

	b, err = proto.Marshal(&goethev1.ProduceStreamResponse{RequestId: 44})
	require.NoError(t, err)
	require.NoError(t, a.decode(b))
	require.Equal(t, produceAnswer{id: 44}, a, "no outcome")

	require.Error(t, a.decode([]byte{0x12, 0x05, 0x08}), "truncated")
}
