package server_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

func keyedData(keys ...string) []*goethev1.EventData {
	out := make([]*goethev1.EventData, len(keys))
	for i, k := range keys {
		out[i] = &goethev1.EventData{Payload: []byte("p-" + k), DedupeKey: k}
	}
	return out
}

// consumeRaw reads a Consume stream to its end and returns its events and
// the error it ended with (nil for OK).
func consumeRaw(ctx context.Context, t *testing.T, c goethev1.GoetheClient, req *goethev1.ConsumeRequest) ([]*goethev1.Event, error) {
	t.Helper()
	stream, err := c.Consume(ctx, req)
	require.NoError(t, err)
	var evs []*goethev1.Event
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, resp.Events...)
	}
}

// TestProduceDedupe: a Produce and a ProduceStream request answer
// duplicates with the original id and seq; a retry of a conditional
// produce that succeeded succeeds; consumers see the keys.
func TestProduceDedupe(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		ctx := ctxT(t)
		zero := uint64(0)
		req := &goethev1.ProduceRequest{Topic: "d", Events: keyedData("a", "b", "a"), ExpectedLastSeq: &zero}
		first, err := ts.raw.Produce(ctx, req)
		require.NoError(t, err)
		require.Equal(t, uint32(2), first.Count)
		require.Len(t, first.Duplicates, 1)
		require.Equal(t, uint32(2), first.Duplicates[0].Index)
		require.Equal(t, first.FirstId, first.Duplicates[0].Id)
		require.Equal(t, uint64(1), first.Duplicates[0].Seq)

		again, err := ts.raw.Produce(ctx, req) // the retry, with its now stale expectation
		require.NoError(t, err)
		require.Zero(t, again.Count)
		require.Zero(t, again.FirstId)
		require.Len(t, again.Duplicates, 3)
		require.Equal(t, first.FirstId+1, again.Duplicates[1].Id)

		stream, err := ts.raw.ProduceStream(ctx)
		require.NoError(t, err)
		require.NoError(t, stream.Send(&goethev1.ProduceStreamRequest{RequestId: 1,
			Produce: &goethev1.ProduceRequest{Topic: "d", Events: keyedData("b", "c")}}))
		resp, err := stream.Recv()
		require.NoError(t, err)
		ok := resp.GetResult()
		require.NotNil(t, ok, "%v", resp)
		require.Equal(t, uint32(1), ok.Count)
		require.Equal(t, uint64(3), ok.FirstSeq)
		require.Equal(t, []uint64{2}, []uint64{ok.Duplicates[0].Seq})
		require.NoError(t, stream.CloseSend())

		evs, err := consumeRaw(ctx, t, ts.raw, &goethev1.ConsumeRequest{Topic: "d"})
		require.NoError(t, err)
		require.Len(t, evs, 3)
		require.Equal(t, []string{"a", "b", "c"}, []string{evs[0].DedupeKey, evs[1].DedupeKey, evs[2].DedupeKey})
	})
}

// TestDedupeKeyLimits: a key of store.MaxDedupeKeyLen bytes is taken, one
// byte more is INVALID_ARGUMENT; the key counts towards MaxEventBytes, in
// the admission scan and in validation alike.
func TestDedupeKeyLimits(t *testing.T) {
	const max = 1000
	ts := startServer(t, "leveldb", server.Options{MaxEventBytes: max})
	ctx := ctxT(t)
	key := strings.Repeat("k", store.MaxDedupeKeyLen)
	_, err := ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "d", Events: keyedData(key)})
	require.NoError(t, err)
	_, err = ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "d", Events: keyedData(key + "k")})
	requireReason(t, err, codes.InvalidArgument, goethev1.ReasonInvalidArgument)

	at := &goethev1.EventData{Payload: make([]byte, max-len(key)), DedupeKey: key}
	_, err = ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "d", Events: []*goethev1.EventData{at}})
	require.NoError(t, err)
	past := &goethev1.EventData{Payload: make([]byte, max-len(key)+1), DedupeKey: key}
	_, err = ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "d", Events: []*goethev1.EventData{past}})
	requireReason(t, err, codes.InvalidArgument, goethev1.ReasonLimitExceeded)
}

// TestConsumeUntil: until_seq, until_id and until_time end a stream with
// OK after the last event at or before the bound, with and without
// follow, at once when the next event is past it.
func TestConsumeUntil(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		ctx := ctxT(t)
		res := ts.produce("u", "1", "2", "3", "4", "5")
		seqs := func(evs []*goethev1.Event) []uint64 {
			var out []uint64
			for _, e := range evs {
				out = append(out, e.Seq)
			}
			return out
		}
		cases := []struct {
			name  string
			req   *goethev1.ConsumeRequest
			wantN int
		}{
			{"until_seq", &goethev1.ConsumeRequest{Until: &goethev1.ConsumeRequest_UntilSeq{UntilSeq: 3}}, 3},
			{"until_seq past the end", &goethev1.ConsumeRequest{Until: &goethev1.ConsumeRequest_UntilSeq{UntilSeq: 9}}, 5},
			{"until_id", &goethev1.ConsumeRequest{Until: &goethev1.ConsumeRequest_UntilId{UntilId: res[1].FirstID}}, 2},
			{"until_id between events", &goethev1.ConsumeRequest{Until: &goethev1.ConsumeRequest_UntilId{UntilId: res[3].FirstID - 1}}, 3},
			{"until_time", &goethev1.ConsumeRequest{Until: &goethev1.ConsumeRequest_UntilTime{
				UntilTime: timestamppb.New(time.Unix(0, int64(res[3].FirstID)))}}, 4},
			{"next event past the bound", &goethev1.ConsumeRequest{Until: &goethev1.ConsumeRequest_UntilId{UntilId: res[0].FirstID - 1}}, 0},
			{"following, bound reached", &goethev1.ConsumeRequest{Follow: true, Until: &goethev1.ConsumeRequest_UntilSeq{UntilSeq: 5}}, 5},
			{"following from the end, bound behind", &goethev1.ConsumeRequest{Follow: true,
				Start: &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_END},
				Until: &goethev1.ConsumeRequest_UntilSeq{UntilSeq: 2}}, 0},
			{"following from the end, time bound passed", &goethev1.ConsumeRequest{Follow: true,
				Start: &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_END},
				Until: &goethev1.ConsumeRequest_UntilTime{UntilTime: timestamppb.New(time.Unix(0, int64(res[4].FirstID)))}}, 0},
			{"limit first", &goethev1.ConsumeRequest{Limit: 2, Until: &goethev1.ConsumeRequest_UntilSeq{UntilSeq: 4}}, 2},
		}
		for _, c := range cases {
			c.req.Topic = "u"
			evs, err := consumeRaw(ctx, t, ts.raw, c.req)
			require.NoError(t, err, c.name)
			want := []uint64{}
			for i := range c.wantN {
				want = append(want, uint64(i+1))
			}
			require.Equal(t, want, append([]uint64{}, seqs(evs)...), c.name)
		}

		// Following, the stream waits for the bound and ends there.
		stream, err := ts.raw.Consume(ctx, &goethev1.ConsumeRequest{Topic: "u", Follow: true,
			Start: &goethev1.ConsumeRequest_AfterSeq{AfterSeq: 4}, Until: &goethev1.ConsumeRequest_UntilSeq{UntilSeq: 7}})
		require.NoError(t, err)
		got := recvSeqs(t, stream, 1)
		ts.produce("u", "6", "7", "8")
		got = append(got, recvSeqs(t, stream, 2)...)
		require.Equal(t, []uint64{5, 6, 7}, got)
		_, err = stream.Recv()
		require.ErrorIs(t, err, io.EOF)

		// A time bound in the near future ends a follower at the end once
		// it has passed (and UntilTimeGrace after it).
		evs, err := consumeRaw(ctx, t, ts.raw, &goethev1.ConsumeRequest{Topic: "u", Follow: true,
			Start: &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_END},
			Until: &goethev1.ConsumeRequest_UntilTime{UntilTime: timestamppb.New(time.Now().Add(100 * time.Millisecond))}})
		require.NoError(t, err)
		require.Empty(t, evs)
	})
}

// recvSeqs receives until it has n events and returns their seqs.
func recvSeqs(t *testing.T, stream grpc.ServerStreamingClient[goethev1.ConsumeResponse], n int) []uint64 {
	t.Helper()
	var out []uint64
	for len(out) < n {
		resp, err := stream.Recv()
		require.NoError(t, err)
		for _, e := range resp.Events {
			out = append(out, e.Seq)
		}
	}
	return out
}
