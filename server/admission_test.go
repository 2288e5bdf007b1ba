package server_test

import (
	"context"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// rawCodec sends and receives messages as the bytes given: requests that
// no proto library would encode (invalid UTF-8, millions of events) reach
// the server as a hostile client would send them.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// invokeRaw calls a unary method with raw request bytes and returns the
// raw response.
func invokeRaw(ctx context.Context, conn *grpc.ClientConn, method string, req []byte) ([]byte, error) {
	var resp []byte
	err := conn.Invoke(ctx, "/goethe.v1.Goethe/"+method, &req, &resp, grpc.ForceCodecV2(rawCodec{}))
	return resp, err
}

// Hand encoders of the API's messages (spec/goethe/v1/goethe.proto).

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

// rawEvent encodes an EventData with payload and headers (key, value, ...).
func rawEvent(payload []byte, headers ...string) []byte {
	var b []byte
	if len(payload) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, payload)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		var e []byte
		e = appendString(e, 1, headers[i])
		e = appendString(e, 2, headers[i+1])
		b = appendMessage(b, 2, e)
	}
	return b
}

// rawProduce encodes a ProduceRequest of topic and events.
func rawProduce(topic string, events ...[]byte) []byte {
	b := appendString(nil, 1, topic)
	for _, e := range events {
		b = appendMessage(b, 2, e)
	}
	return b
}

// rawEmptyEvents encodes a ProduceRequest of n empty events.
func rawEmptyEvents(topic string, n int) []byte {
	b := appendString(make([]byte, 0, 2*n+len(topic)+2), 1, topic)
	for range n {
		b = append(b, 0x12, 0x00) // field 2, length 0
	}
	return b
}

// rawStreamRequest encodes a ProduceStreamRequest of id and produce parts.
func rawStreamRequest(id uint64, parts ...[]byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, id)
	for _, p := range parts {
		b = appendMessage(b, 2, p)
	}
	return b
}

// rawStream opens a ProduceStream that sends raw requests and decodes the
// answers.
type rawStream struct {
	t  *testing.T
	cs grpc.ClientStream
}

func openRawStream(t *testing.T, ctx context.Context, conn *grpc.ClientConn) *rawStream {
	desc := &grpc.StreamDesc{StreamName: "ProduceStream", ServerStreams: true, ClientStreams: true}
	cs, err := conn.NewStream(ctx, desc, "/goethe.v1.Goethe/ProduceStream", grpc.ForceCodecV2(rawCodec{}))
	require.NoError(t, err)
	return &rawStream{t: t, cs: cs}
}

func (s *rawStream) send(req []byte) { require.NoError(s.t, s.cs.SendMsg(&req)) }

func (s *rawStream) recv() *goethev1.ProduceStreamResponse {
	var b []byte
	require.NoError(s.t, s.cs.RecvMsg(&b))
	var r goethev1.ProduceStreamResponse
	require.NoError(s.t, proto.Unmarshal(b, &r))
	return &r
}

// requireAnswerReason requires a stream answer to be an error with code
// and reason.
func requireAnswerReason(t *testing.T, r *goethev1.ProduceStreamResponse, id uint64, code codes.Code, reason string) {
	t.Helper()
	require.Equal(t, id, r.GetRequestId())
	require.NotNil(t, r.GetError(), "answer %d is not an error: %v", id, r)
	requireReason(t, status.FromProto(r.GetError()).Err(), code, reason)
}

// The event limits hold while decoding, at and past each boundary, for
// unary and stream requests, over hand-encoded requests; a refused request
// holds no budget afterwards.
func TestDecodeLimits(t *testing.T) {
	ts := startServer(t, "leveldb", limits) // MaxEventBytes 1000, MaxBatchEvents 100
	ctx := ctxT(t)
	ok := func(req []byte) {
		t.Helper()
		_, err := invokeRaw(ctx, ts.conn, "Produce", req)
		require.NoError(t, err)
	}
	over := func(req []byte, msg string) {
		t.Helper()
		_, err := invokeRaw(ctx, ts.conn, "Produce", req)
		requireReason(t, err, codes.InvalidArgument, goethev1.ReasonLimitExceeded)
		require.Contains(t, err.Error(), msg)
	}
	ok(rawEmptyEvents("t", 100))
	over(rawEmptyEvents("t", 101), "101 events, the limit is 100")
	ok(rawProduce("t", rawEvent(make([]byte, 1000))))
	over(rawProduce("t", rawEvent(make([]byte, 1001))), "event 0 is 1001 bytes")
	// Headers count: 900 + 50 + 50 is at the limit, one more byte is over.
	ok(rawProduce("t", rawEvent(make([]byte, 900), strings.Repeat("k", 50), strings.Repeat("v", 50))))
	over(rawProduce("t", rawEvent(nil), rawEvent(make([]byte, 900), strings.Repeat("k", 50), strings.Repeat("v", 51))),
		"event 1 is 1001 bytes")

	// A stream request whose produce comes in two parts (decoding merges
	// them; the second has no topic): the events of both count.
	s := openRawStream(t, ctx, ts.conn)
	s.send(rawStreamRequest(1, rawEmptyEvents("t", 60), rawEmptyEvents("", 40)[2:]))
	r := s.recv()
	require.Nil(t, r.GetError(), "%v", r)
	require.Equal(t, uint32(100), r.GetResult().GetCount())
	s.send(rawStreamRequest(2, rawEmptyEvents("t", 60), rawEmptyEvents("", 41)[2:]))
	requireAnswerReason(t, s.recv(), 2, codes.InvalidArgument, goethev1.ReasonLimitExceeded)
	s.send(rawStreamRequest(3, rawProduce("t", rawEvent(make([]byte, 1001)))))
	requireAnswerReason(t, s.recv(), 3, codes.InvalidArgument, goethev1.ReasonLimitExceeded)
	s.send(rawStreamRequest(4, rawProduce("t", rawEvent([]byte("after")))))
	r = s.recv()
	require.Equal(t, uint64(4), r.GetRequestId())
	require.Nil(t, r.GetError(), "the stream goes on after refused requests: %v", r)
	require.NoError(t, s.cs.CloseSend())
	var b []byte
	require.ErrorIs(t, s.cs.RecvMsg(&b), io.EOF)

	require.Equal(t, int64(0), ts.srv.InflightBytes(), "every request gave its budget back")
	require.Len(t, ts.readAll("t", client.ConsumeOptions{}), 100+1+1+100+1)
}

// A Produce of two million empty events, 4 MB on the wire, is refused
// before it is decoded: the server allocates about the request's bytes,
// not the hundreds of MB that two million decoded events would take. (The
// issue's case: 31M events in 62 MB peaked at 2.9 GB; see the e2e soak.)
// Not parallel, so that the allocation counter sees this call alone.
func TestDecodeLimitsBeforeMaterialising(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{MaxEventBytes: 1000, MaxBatchEvents: 100, MaxRequestBytes: 64 << 20})
	req := rawEmptyEvents("t", 2_000_000)
	allocated := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.TotalAlloc
	}
	before := allocated()
	_, err := invokeRaw(ctxT(t), ts.conn, "Produce", req)
	grown := allocated() - before
	requireReason(t, err, codes.InvalidArgument, goethev1.ReasonLimitExceeded)
	require.Contains(t, err.Error(), "2000000 events, the limit is 100")
	t.Logf("refusing %d MB of empty events allocated %.1f MB (client and server)", len(req)>>20, float64(grown)/(1<<20))
	// The client's and the server's copies of the 4 MB, and buffers.
	require.Less(t, grown, uint64(8*len(req)), "allocated %d MB", grown>>20)
}

// Invalid UTF-8 in any string field of any request answers
// INVALID_ARGUMENT (gRPC alone answers INTERNAL), and changes nothing.
func TestInvalidUTF8(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{})
	ts.produce("t", "e1")
	ctx := ctxT(t)
	bad := "t\xff"
	unary := []struct {
		name, method string
		req          []byte
	}{
		{"produce topic", "Produce", rawProduce(bad, rawEvent([]byte("x")))},
		{"produce header key", "Produce", rawProduce("t", rawEvent([]byte("x"), bad, "v"))},
		{"produce header value", "Produce", rawProduce("t", rawEvent([]byte("x"), "k", bad))},
		{"commit cursor consumer", "CommitCursor", appendString(appendString(nil, 1, "t"), 2, bad)},
		{"get cursor topic", "GetCursor", appendString(appendString(nil, 1, bad), 2, "c")},
		{"get topic", "GetTopic", appendString(nil, 1, bad)},
		{"list topics page token", "ListTopics", appendString(nil, 2, bad)},
	}
	for _, c := range unary {
		_, err := invokeRaw(ctx, ts.conn, c.method, c.req)
		requireReason(t, err, codes.InvalidArgument, goethev1.ReasonInvalidArgument)
		require.Contains(t, err.Error(), "UTF-8", c.name)
	}

	// Consume: the stream ends with the status.
	desc := &grpc.StreamDesc{StreamName: "Consume", ServerStreams: true}
	cs, err := ts.conn.NewStream(ctx, desc, "/goethe.v1.Goethe/Consume", grpc.ForceCodecV2(rawCodec{}))
	require.NoError(t, err)
	req := appendString(nil, 1, bad)
	require.NoError(t, cs.SendMsg(&req))
	require.NoError(t, cs.CloseSend())
	var b []byte
	err = cs.RecvMsg(&b)
	requireReason(t, err, codes.InvalidArgument, goethev1.ReasonInvalidArgument)

	// ProduceStream: the request is answered, the stream goes on.
	s := openRawStream(t, ctx, ts.conn)
	s.send(rawStreamRequest(7, rawProduce(bad, rawEvent([]byte("x")))))
	requireAnswerReason(t, s.recv(), 7, codes.InvalidArgument, goethev1.ReasonInvalidArgument)
	s.send(rawStreamRequest(8, rawProduce("t", rawEvent([]byte("e2")))))
	require.Nil(t, s.recv().GetError())
	require.NoError(t, s.cs.CloseSend())

	require.Equal(t, []string{"e1", "e2"}, payloads(ts.readAll("t", client.ConsumeOptions{})))
	require.Equal(t, int64(0), ts.srv.InflightBytes())
}

// Past the in-flight budget a Produce answers RESOURCE_EXHAUSTED
// (MEMORY_BUDGET) without being read: a new call at the door, a request of
// a stream opened before by the codec; the budget is held until the
// append completes and then given back.
func TestMemoryBudget(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		// MaxRequestBytes is raised to MinRequestBytes(1000), about 68 KB;
		// the budget takes one request of 50 KB, not two.
		opts := server.Options{MaxEventBytes: 1000, MaxBatchEvents: 100, MaxRequestBytes: 1, MaxInflightBytes: int64(server.MinRequestBytes(1000))}
		ts := startFaultServer(t, engine, opts)
		ts.produce("t", "e0") // the topic exists: its creation is not blocked below
		ctx := ctxT(t)
		big := rawProduce("t", repeatEvents(56, 900)...)
		require.Greater(t, 2*len(big), server.MinRequestBytes(1000))

		// Opened before the budget is held (its HEADERS go out on the
		// connection before the blocked Produce's), so past the door.
		s := openRawStream(t, ctx, ts.conn)
		release := ts.fault.BlockWrites()
		held := make(chan error, 1)
		go func() {
			_, err := invokeRaw(ctx, ts.conn, "Produce", big)
			held <- err
		}()
		require.Eventually(t, func() bool { return ts.fault.Waiting() == 1 }, 20e9, 1e6)
		require.Equal(t, int64(len(big)), ts.srv.InflightBytes(), "the blocked Produce holds its encoded size")

		_, err := invokeRaw(ctx, ts.conn, "Produce", big)
		requireReason(t, err, codes.ResourceExhausted, goethev1.ReasonMemoryBudget)
		require.Contains(t, err.Error(), "--max-inflight-bytes")
		require.Contains(t, err.Error(), "retry later")

		s.send(rawStreamRequest(1, big))
		requireAnswerReason(t, s.recv(), 1, codes.ResourceExhausted, goethev1.ReasonMemoryBudget)

		release()
		require.NoError(t, <-held)
		require.Equal(t, int64(0), ts.srv.InflightBytes())

		// With the budget back, both go through; a stream request holds
		// the budget until its append completes.
		_, err = invokeRaw(ctx, ts.conn, "Produce", big)
		require.NoError(t, err)
		release = ts.fault.BlockWrites()
		s.send(rawStreamRequest(2, big))
		require.Eventually(t, func() bool { return ts.fault.Waiting() == 1 }, 20e9, 1e6)
		require.Equal(t, int64(len(rawStreamRequest(2, big))), ts.srv.InflightBytes())
		release()
		r := s.recv()
		require.Equal(t, uint64(2), r.GetRequestId())
		require.Nil(t, r.GetError(), "%v", r)
		require.NoError(t, s.cs.CloseSend())
		require.Equal(t, int64(0), ts.srv.InflightBytes())
		require.Len(t, ts.readAll("t", client.ConsumeOptions{}), 1+3*56)
	})
}

func repeatEvents(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = rawEvent(make([]byte, size))
	}
	return out
}

// Many concurrent Produces past the budget: every one is either stored or
// refused with MEMORY_BUDGET, never anything else, and the budget is all
// given back.
func TestMemoryBudgetConcurrent(t *testing.T) {
	opts := server.Options{MaxEventBytes: 1000, MaxBatchEvents: 100, MaxRequestBytes: 1, MaxInflightBytes: int64(server.MinRequestBytes(1000))}
	ts := startServer(t, "leveldb", opts)
	big := rawProduce("t", repeatEvents(56, 900)...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, refused := 0, 0
	for range 16 {
		wg.Go(func() {
			for range 5 {
				_, err := invokeRaw(ctxT(t), ts.conn, "Produce", big)
				mu.Lock()
				if err == nil {
					stored++
				} else {
					refused++
					requireReason(t, err, codes.ResourceExhausted, goethev1.ReasonMemoryBudget)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("stored %d, refused %d", stored, refused)
	require.Equal(t, 80, stored+refused)
	require.Positive(t, stored)
	require.Equal(t, int64(0), ts.srv.InflightBytes())
	require.Len(t, ts.readAll("t", client.ConsumeOptions{}), stored*56)
}
