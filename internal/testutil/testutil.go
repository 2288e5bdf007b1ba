// Package testutil holds small helpers shared by the tests of several
// packages. Nothing in it is used outside tests.
package testutil

import (
	"bytes"
	"context"
	"net"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/server"
	"github.com/goethe-log/goethe/store"
)

// SyncBuffer is a bytes.Buffer that one goroutine may write (a subprocess's
// output, a server's log) while another reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns a copy of what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ServerLabels are the pprof labels of every goroutine that StartServer's
// server and store start (gRPC's connection and handler goroutines, the
// store's writer), so that a CPU profile of a test or benchmark running
// client and server in one process tells the server's share:
// go tool pprof -tagfocus goethe=server.
var ServerLabels = pprof.Labels("goethe", "server")

// StartServer serves the store in dir (a fresh one for t.TempDir()) on
// engine on a 127.0.0.1 port and returns the address and the store (for its counters).
// When the test ends the server stops gracefully, Serve must have
// returned cleanly, and the store is closed.
func StartServer(tb testing.TB, engine, dir string, sopts store.Options, opts server.Options) (addr string, st *store.Store) {
	tb.Helper()
	pprof.Do(context.Background(), ServerLabels, func(context.Context) {
		addr, st = startServer(tb, engine, dir, sopts, opts)
	})
	return addr, st
}

func startServer(tb testing.TB, engine, dir string, sopts store.Options, opts server.Options) (string, *store.Store) {
	tb.Helper()
	e, err := engines.Open(engine, dir)
	require.NoError(tb, err)
	st, err := store.Open(e, sopts)
	require.NoError(tb, err)
	srv, err := server.New(st, opts)
	if err != nil {
		_ = st.Close()
		require.NoError(tb, err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(tb, srv.Stop(ctx))
		require.NoError(tb, <-served)
		// The server does not own the store: whoever opened it closes it,
		// once no call of the server can use it.
		require.NoError(tb, st.Close())
	})
	return lis.Addr().String(), st
}

// FlipEventByte damages the i-th event record of e (events are the keys
// below 0xF0, in key order) by flipping a bit of its value's last byte,
// synced, as damage on disk would. It requires at least want event records
// in e, so that a test states what it damages.
func FlipEventByte(t testing.TB, e engine.Engine, want, i int) {
	t.Helper()
	kvs, err := e.Scan(nil, []byte{0xF0}, want+1, 0)
	require.NoError(t, err)
	require.Len(t, kvs, want)
	v := bytes.Clone(kvs[i].Value)
	v[len(v)-1] ^= 0x01
	var b engine.Batch
	b.Put(kvs[i].Key, v)
	require.NoError(t, e.Write(&b, true))
}
