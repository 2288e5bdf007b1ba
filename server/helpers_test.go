package server_test

import (
	"context"
	"errors"
	"math"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engine/faultengine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// forEachEngine runs f as a subtest per engine, each in its own folder.
func forEachEngine(t *testing.T, f func(t *testing.T, engine string)) {
	for _, name := range engines.Names {
		t.Run("engine="+name, func(t *testing.T) {
			t.Parallel()
			f(t, name)
		})
	}
}

// testServer is a real server on a loopback listener over a real engine.
type testServer struct {
	t      *testing.T
	engine string
	dir    string
	opts   server.Options
	// withFaults wraps the engine in a faultengine.Engine, fault.
	withFaults bool
	fault      *faultengine.Engine
	// storeOpts, if set, are the store's options; else its defaults.
	storeOpts *store.Options

	st     *store.Store // the server's Log; the test closes it after Stop
	srv    *server.Server
	served chan error
	addr   string

	c    *client.Client
	conn *grpc.ClientConn
	raw  goethev1.GoetheClient
}

func startServer(t *testing.T, engine string, opts server.Options) *testServer {
	ts := &testServer{t: t, engine: engine, dir: t.TempDir(), opts: opts}
	ts.start()
	t.Cleanup(func() {
		if ts.srv != nil {
			ts.stop()
		}
	})
	return ts
}

// startFaultServer is startServer over an engine wrapped in a
// faultengine.Engine, ts.fault, with no fault armed.
func startFaultServer(t *testing.T, engine string, opts server.Options) *testServer {
	ts := &testServer{t: t, engine: engine, dir: t.TempDir(), opts: opts, withFaults: true}
	ts.start()
	t.Cleanup(func() {
		if ts.srv != nil {
			ts.fault.Disarm()
			ts.stop()
		}
	})
	return ts
}

func (ts *testServer) start() {
	t := ts.t
	t.Helper()
	e, err := engines.Open(ts.engine, ts.dir)
	require.NoError(t, err)
	if ts.withFaults {
		ts.fault = faultengine.Wrap(e)
		e = ts.fault
	}
	sopts := store.DefaultOptions()
	if ts.storeOpts != nil {
		sopts = *ts.storeOpts
	}
	ts.st, err = store.Open(e, sopts)
	require.NoError(t, err)
	ts.srv, err = server.New(ts.st, ts.opts)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ts.addr = lis.Addr().String()
	ts.served = make(chan error, 1)
	go func(srv *server.Server) { ts.served <- srv.Serve(lis) }(ts.srv)

	ts.c, err = client.Dial(ts.addr)
	require.NoError(t, err)
	ts.conn, err = grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	require.NoError(t, err)
	ts.raw = goethev1.NewGoetheClient(ts.conn)
}

// stop stops the server gracefully, requires Serve to have returned nil,
// and closes the store.
func (ts *testServer) stop() {
	t := ts.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, ts.srv.Stop(ctx))
	select {
	case err := <-ts.served:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after Stop")
	}
	require.NoError(t, ts.st.Close())
	require.NoError(t, ts.c.Close())
	require.NoError(t, ts.conn.Close())
	ts.srv = nil
}

// restart stops the server, closing its store, and serves the same folder
// again on a new port.
func (ts *testServer) restart() {
	ts.stop()
	ts.start()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// produce stores payloads one Produce each and returns the results.
func (ts *testServer) produce(topic string, payloads ...string) []client.ProduceResult {
	ts.t.Helper()
	out := make([]client.ProduceResult, len(payloads))
	for i, p := range payloads {
		r, err := ts.c.Produce(ctxT(ts.t), topic, []client.EventData{{Payload: []byte(p)}})
		require.NoError(ts.t, err)
		out[i] = r
	}
	return out
}

// readAll consumes topic without following and returns the events.
func (ts *testServer) readAll(topic string, opts client.ConsumeOptions) []client.Event {
	ts.t.Helper()
	var evs []client.Event
	for ev, err := range ts.c.Consume(ctxT(ts.t), topic, opts) {
		require.NoError(ts.t, err)
		evs = append(evs, ev)
	}
	return evs
}

func payloads(evs []client.Event) []string {
	if len(evs) == 0 {
		return nil
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.Payload)
	}
	return out
}

// requireCode requires err to be a gRPC status error with code.
func requireCode(t *testing.T, err error, code codes.Code, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	st, ok := status.FromError(err)
	require.True(t, ok, "not a status error: %v", err)
	require.Equal(t, code.String(), st.Code().String(), "error: %v", err)
}

// next reads one event or fails after a while.
func next(t *testing.T, sub *client.Subscription) client.Event {
	t.Helper()
	type res struct {
		ev  client.Event
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ev, err := sub.Next()
		ch <- res{ev, err}
	}()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		return r.ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	return client.Event{}
}

// requireNoEvent requires sub to deliver nothing for a short while. It
// leaves a Next pending, so the subscription must not be read again.
func requireNoEvent(t *testing.T, sub *client.Subscription, wait time.Duration) {
	t.Helper()
	ch := make(chan error, 1)
	go func() {
		ev, err := sub.Next()
		if err == nil {
			err = errors.New("unexpected event " + string(ev.Payload))
		}
		ch <- err
	}()
	select {
	case err := <-ch:
		if !errors.Is(err, context.Canceled) {
			require.NoError(t, err)
		}
	case <-time.After(wait):
	}
}

// requireReason requires err to be a status with code and an ErrorInfo in
// the Goethe domain with reason.
func requireReason(t *testing.T, err error, code codes.Code, reason string) *errdetails.ErrorInfo {
	t.Helper()
	requireCode(t, err, code)
	info := errorInfo(t, status.Convert(err))
	require.Equal(t, reason, info.Reason, "%v", err)
	return info
}

// errorInfo returns st's one ErrorInfo detail, in the Goethe domain.
func errorInfo(t *testing.T, st *status.Status) *errdetails.ErrorInfo {
	t.Helper()
	require.Len(t, st.Details(), 1, "%v", st)
	info, ok := st.Details()[0].(*errdetails.ErrorInfo)
	require.True(t, ok, "%v", st.Details()[0])
	require.Equal(t, goethev1.ErrorDomain, info.Domain)
	return info
}
