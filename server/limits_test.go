package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// gauge reads a metric of m without labels.
func gauge(t *testing.T, m *server.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		mt := mf.GetMetric()[0]
		if mt.GetGauge() != nil {
			return mt.GetGauge().GetValue()
		}
		return mt.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// fillTopic stores mib MiB of 1 KiB events in topic.
func fillTopic(t *testing.T, ts *testServer, topic string, mib int) int {
	t.Helper()
	batch := make([]client.EventData, 1024)
	for i := range batch {
		batch[i].Payload = make([]byte, 1024)
	}
	for range mib {
		_, err := ts.c.Produce(ctxT(t), topic, batch)
		require.NoError(t, err)
	}
	return mib * len(batch)
}

// stalledFollower opens a following Consume of topic on a connection of
// its own with small HTTP/2 windows, and never reads: the server's Send
// soon waits for flow control. It returns the stream, to be read later.
func stalledFollower(t *testing.T, ts *testServer, topic string) goethev1.Goethe_ConsumeClient {
	t.Helper()
	return stalledConsume(t, ts, &goethev1.ConsumeRequest{Topic: topic, Follow: true})
}

// stalledConsume is stalledFollower for any request.
func stalledConsume(t *testing.T, ts *testServer, req *goethev1.ConsumeRequest) goethev1.Goethe_ConsumeClient {
	t.Helper()
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := goethev1.NewGoetheClient(conn).Consume(ctx, req)
	require.NoError(t, err)
	_, err = st.Header()
	require.NoError(t, err)
	return st
}

// A follower that does not read is ended with RESOURCE_EXHAUSTED
// (SLOW_CONSUMER) after SlowConsumerTimeout; its client sees the status
// after the events that were already on their way. A follower that waits
// at the end of the topic for longer is not slow: it reads all it is sent.
func TestSlowConsumerEnded(t *testing.T) {
	metrics := server.NewMetrics(server.MetricsOptions{Engine: "leveldb"})
	ts := startServer(t, "leveldb", server.Options{SlowConsumerTimeout: 300 * time.Millisecond, Metrics: metrics})
	total := fillTopic(t, ts, "big", 8)

	idle, err := ts.c.Subscribe(ctxT(t), "idle", client.ConsumeOptions{Follow: true})
	require.NoError(t, err)
	defer idle.Close()

	st := stalledFollower(t, ts, "big")
	require.Eventually(t, func() bool { return gauge(t, metrics, "goethe_consume_open_streams") == 2 }, 20*time.Second, time.Millisecond)
	// The stalled stream ends by itself; the idle one stays.
	require.Eventually(t, func() bool { return gauge(t, metrics, "goethe_consume_open_streams") == 1 }, 20*time.Second, time.Millisecond)

	n := 0
	for {
		resp, err := st.Recv()
		if err != nil {
			requireReason(t, err, codes.ResourceExhausted, goethev1.ReasonSlowConsumer)
			require.Contains(t, err.Error(), "--slow-consumer-timeout")
			break
		}
		n += len(resp.Events)
	}
	t.Logf("the stalled follower got %d of %d events before its end", n, total)
	require.Less(t, n, total)

	// Idle longer than the timeout at the end of its topic, then fed.
	requireNoEvent(t, idle, time.Second)
	ts.produce("idle", "late")
	// requireNoEvent left a Next pending; a new subscription reads it all.
	sub, err := ts.c.Subscribe(ctxT(t), "idle", client.ConsumeOptions{Follow: true})
	require.NoError(t, err)
	defer sub.Close()
	require.Equal(t, "late", string(next(t, sub).Payload))
	require.Equal(t, float64(2), gauge(t, metrics, "goethe_consume_open_streams"))
}

// Stop with a stalled follower: the follower's stream ends at once, its
// connection is closed after StopGrace, a Produce in flight still
// completes and is acknowledged, and Stop reports a graceful stop (before
// this, it waited for ctx and reported the stop cut short).
func TestStopWithStalledFollower(t *testing.T) {
	ts := startFaultServer(t, "leveldb", server.Options{StopGrace: 200 * time.Millisecond, Metrics: server.NewMetrics(server.MetricsOptions{Engine: "leveldb"})})
	fillTopic(t, ts, "big", 8)
	stalledFollower(t, ts, "big")
	// The first page went out (Send returned); the next Send waits for a
	// client that never reads.
	require.Eventually(t, func() bool {
		return gauge(t, ts.opts.Metrics, "goethe_consume_sent_events_total") > 0
	}, 20*time.Second, time.Millisecond)

	release := ts.fault.BlockWrites()
	produced := make(chan error, 1)
	go func() {
		_, err := ts.c.Produce(ctxT(t), "big", []client.EventData{{Payload: []byte("in flight")}})
		produced <- err
	}()
	require.Eventually(t, func() bool { return ts.fault.Waiting() == 1 }, 20*time.Second, time.Millisecond)

	stopped := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { stopped <- ts.srv.Stop(ctx) }()
	release()
	require.NoError(t, <-produced, "the Produce in flight is acknowledged")
	require.NoError(t, <-stopped, "a stalled follower does not make the stop cut short")
	require.NoError(t, ctx.Err())
}

// One connection opens at most MaxConcurrentStreams calls at once: the
// next waits until one ends.
func TestMaxConcurrentStreams(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{MaxConcurrentStreams: 3})
	open := func(ctx context.Context) (goethev1.Goethe_ConsumeClient, error) {
		st, err := ts.raw.Consume(ctx, &goethev1.ConsumeRequest{Topic: "t", Follow: true})
		if err != nil {
			return nil, err
		}
		_, err = st.Header()
		return st, err
	}
	cancels := make([]context.CancelFunc, 3)
	for i := range cancels {
		ctx, cancel := context.WithCancel(ctxT(t))
		cancels[i] = cancel
		_, err := open(ctx)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
	defer cancel()
	_, err := open(ctx)
	requireCode(t, err, codes.DeadlineExceeded, "a fourth stream on the connection waits")

	cancels[0]()
	_, err = open(ctxT(t))
	require.NoError(t, err, "a stream ended makes room")
	for _, c := range cancels {
		c()
	}
}

// The server serves at most MaxConnections connections; the next waits
// until one closes.
func TestMaxConnections(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{MaxConnections: 1})
	dial := func() *grpc.ClientConn {
		conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		return conn
	}
	call := func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := goethev1.NewGoetheClient(conn).GetTopic(ctx, &goethev1.GetTopicRequest{Topic: "t"})
		if status.Code(err) == codes.NotFound {
			return nil
		}
		return err
	}
	a, b := dial(), dial()
	defer b.Close()
	require.NoError(t, call(ctxT(t), a))
	ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
	defer cancel()
	requireCode(t, call(ctx, b), codes.DeadlineExceeded, "a second connection waits")
	require.NoError(t, a.Close())
	require.NoError(t, call(ctxT(t), b), "a closed connection makes room")
}

// A connection that does not complete its handshake within
// HandshakeTimeout is closed by the server.
func TestHandshakeTimeout(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{HandshakeTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", ts.addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = io.ReadAll(c) // the server's SETTINGS, then its close
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server kept a silent connection: %v", err)
}

// The server's keepalive parameters are in force: a connection with no
// call open for MaxConnectionIdle is closed by the server (GOAWAY), and
// the client's connection goes idle.
func TestMaxConnectionIdle(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{MaxConnectionIdle: 200 * time.Millisecond})
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	_, err = goethev1.NewGoetheClient(conn).GetTopic(ctxT(t), &goethev1.GetTopicRequest{Topic: "t"})
	requireCode(t, err, codes.NotFound)
	require.Equal(t, connectivity.Ready, conn.GetState())
	require.Eventually(t, func() bool { return conn.GetState() == connectivity.Idle }, 20*time.Second, time.Millisecond)
}

// Stop with a ProduceStream whose client does not read its answers: the
// stream answers what it can during StopGrace, then gives up its Sends;
// every request it handed to the log completes, and Stop reports a
// graceful stop instead of waiting for ctx.
func TestStopWithNonReadingProducer(t *testing.T) {
	ts := startFaultServer(t, "leveldb", server.Options{StopGrace: 200 * time.Millisecond})
	ts.produce("t", "e0")
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	require.NoError(t, err)
	defer conn.Close()
	s := openRawStream(t, ctxT(t), conn)
	// 1,400 refused requests, whose answers (about 150 bytes each) are
	// more than the 64 KiB window and the server's 64 KiB write quota
	// hold, so the server's Send waits; the receive loop still reaches the
	// last request (it needs 1,400 - MaxStreamInFlight answers sent).
	bad := rawStreamRequest(1, rawProduce("t\xff", rawEvent([]byte("x"))))
	for range 1400 {
		s.send(bad)
	}
	release := ts.fault.BlockWrites()
	s.send(rawStreamRequest(2, rawProduce("t", rawEvent([]byte("last")))))
	// Its write held: the session has handed it to the log. (Its budget
	// alone is taken by the codec before the session sees it; a Stop
	// between the two gives it back on the receive loop, maybe after Stop
	// has returned.)
	require.Eventually(t, func() bool { return ts.fault.Waiting() == 1 }, 20*time.Second, time.Millisecond,
		"the server took the last request")

	stopped := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { stopped <- ts.srv.Stop(ctx) }()
	release()
	require.NoError(t, <-stopped, "a producer that does not read does not make the stop cut short")
	require.NoError(t, ctx.Err())
	require.Equal(t, int64(0), ts.srv.InflightBytes())
}
