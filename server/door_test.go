package server_test

import (
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// doorOptions: MaxRequestBytes and the budget are MinRequestBytes(16 KiB),
// 128 KiB.
func doorOptions() server.Options {
	const maxEvent = 16 << 10
	return server.Options{MaxEventBytes: maxEvent, MaxBatchEvents: 100, MaxRequestBytes: 1,
		MaxInflightBytes: int64(server.MinRequestBytes(maxEvent))}
}

// holdBudget blocks the engine's writes and starts a Produce of req that
// waits in them, holding its encoded size of the budget until the returned
// release.
func holdBudget(t *testing.T, ts *testServer, req []byte) (release func()) {
	t.Helper()
	unblock := sync.OnceFunc(ts.fault.BlockWrites())
	t.Cleanup(unblock) // a failed test does not leave Stop waiting on the write
	held := make(chan error, 1)
	go func() {
		_, err := invokeRaw(ctxT(t), ts.conn, "Produce", req)
		held <- err
	}()
	require.Eventually(t, func() bool { return ts.fault.Waiting() == 1 }, 20e9, 1e6)
	require.Equal(t, int64(len(req)), ts.srv.InflightBytes())
	return func() {
		unblock()
		require.NoError(t, <-held)
		require.Eventually(t, func() bool { return ts.srv.InflightBytes() == 0 }, 20e9, 1e6)
	}
}

// TestDoorRefusesBeforeReading: while the in-flight budget is exhausted
// (less than DoorFreeBytes free), a new Produce is refused with
// RESOURCE_EXHAUSTED (MEMORY_BUDGET, with its ErrorInfo) as soon as its
// HEADERS arrive: a raw HTTP/2 client that announces a request of 100 KB
// (within MaxRequestBytes) and sends 1 KB of it, never the rest, gets the
// refusal and a RST_STREAM; without the door the server would wait for
// the rest of the body. A new ProduceStream is refused alike; once the
// budget is given back, both are taken.
func TestDoorRefusesBeforeReading(t *testing.T) {
	m := server.NewMetrics(server.MetricsOptions{Engine: "leveldb"})
	opts := doorOptions()
	opts.Metrics = m
	ts := startFaultServer(t, "leveldb", opts)
	ts.produce("t", "e0")                                                     // the topic exists: its creation is not blocked below
	release := holdBudget(t, ts, rawProduce("t", repeatEvents(5, 16_000)...)) // 80 KB of 128 KiB
	require.Less(t, ts.srv.Options().MaxInflightBytes-ts.srv.InflightBytes(), int64(server.DoorFreeBytes))

	h := dialH2(t, ts.addr)
	h.headers(1, goethev1.Goethe_Produce_FullMethodName)
	const announced = 100_000
	require.Less(t, announced, ts.srv.Options().MaxRequestBytes)
	require.NoError(t, h.fr.WriteData(1, false, append(messagePrefix(announced), make([]byte, 1000)...)))
	var answer map[string]string
	reset := false
	for answer == nil || !reset {
		switch f := h.next().(type) {
		case *http2.HeadersFrame:
			require.Equal(t, uint32(1), f.StreamID)
			require.True(t, f.StreamEnded(), "a trailers-only answer")
			answer = decodeHeaders(t, f)
		case *http2.RSTStreamFrame:
			require.Equal(t, uint32(1), f.StreamID)
			reset = true
		case *http2.DataFrame:
			t.Fatalf("DATA on stream %d: the call was answered", f.StreamID)
		}
	}
	requireReason(t, statusOfHeaders(t, answer), codes.ResourceExhausted, goethev1.ReasonMemoryBudget)

	s := openRawStream(t, ctxT(t), ts.conn)
	var b []byte
	requireReason(t, s.cs.RecvMsg(&b), codes.ResourceExhausted, goethev1.ReasonMemoryBudget)
	_, err := invokeRaw(ctxT(t), ts.conn, "Produce", rawProduce("t", rawEvent([]byte("small"))))
	requireReason(t, err, codes.ResourceExhausted, goethev1.ReasonMemoryBudget)
	require.Contains(t, err.Error(), "refused this call before reading it")
	require.Equal(t, 3.0, gathered(t, m, "goethe_admission_door_refusals_total"), "the raw Produce, the stream, the small Produce")

	release()
	_, err = invokeRaw(ctxT(t), ts.conn, "Produce", rawProduce("t", rawEvent([]byte("small"))))
	require.NoError(t, err)
	s = openRawStream(t, ctxT(t), ts.conn)
	s.send(rawStreamRequest(1, rawProduce("t", rawEvent([]byte("streamed")))))
	require.Nil(t, s.recv().GetError())
	require.NoError(t, s.cs.CloseSend())
}

// TestDoorClosedAfterRefusal: with more than DoorFreeBytes free, a request
// too large for what is left is read and refused by the codec; from then
// until bytes are given back, new calls are refused at the door, small
// ones too; the next release opens it.
func TestDoorClosedAfterRefusal(t *testing.T) {
	ts := startFaultServer(t, "leveldb", doorOptions())
	ts.produce("t", "e0")
	release := holdBudget(t, ts, rawProduce("t", repeatEvents(3, 16_000)...)) // 48 KB of 128 KiB
	small := rawProduce("t", rawEvent([]byte("small")))
	require.GreaterOrEqual(t, ts.srv.Options().MaxInflightBytes-ts.srv.InflightBytes(), int64(server.DoorFreeBytes))

	// The door is open: a new stream is let in.
	s := openRawStream(t, ctxT(t), ts.conn)
	s.send(rawStreamRequest(1, small))
	_, err := invokeRaw(ctxT(t), ts.conn, "Produce", rawProduce("t", repeatEvents(6, 16_000)...))
	requireReason(t, err, codes.ResourceExhausted, goethev1.ReasonMemoryBudget)
	require.NotContains(t, err.Error(), "before reading it", "refused by the codec, after reading")

	_, err = invokeRaw(ctxT(t), ts.conn, "Produce", small)
	requireReason(t, err, codes.ResourceExhausted, goethev1.ReasonMemoryBudget)
	require.Contains(t, err.Error(), "refused this call before reading it")

	release() // also completes the stream's request 1, whose release opens the door
	require.Nil(t, s.recv().GetError())
	require.NoError(t, s.cs.CloseSend())
	_, err = invokeRaw(ctxT(t), ts.conn, "Produce", small)
	require.NoError(t, err)
}

// statusOfHeaders is the gRPC status of a trailers-only answer's fields,
// its details (grpc-status-details-bin) included.
func statusOfHeaders(t *testing.T, h map[string]string) error {
	t.Helper()
	require.Equal(t, "200", h[":status"])
	bin := h["grpc-status-details-bin"]
	require.NotEmpty(t, bin, "the refusal carries its details: %v", h)
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(bin, "="))
	require.NoError(t, err)
	var p spb.Status
	require.NoError(t, proto.Unmarshal(b, &p))
	require.Equal(t, h["grpc-status"], strconv.Itoa(int(p.Code)))
	return status.FromProto(&p).Err()
}
