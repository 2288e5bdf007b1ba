package server_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/goethe-log/goethe/server"
)

// TestKeepaliveTooManyPings: a client pinging more often than
// KeepaliveMinTime allows gets a GOAWAY ENHANCE_YOUR_CALM
// "too_many_pings", and its connection is closed; one pinging at the
// allowed rate keeps its connection (each ping answered).
func TestKeepaliveTooManyPings(t *testing.T) {
	const minTime = 50 * time.Millisecond
	ts := startServer(t, "leveldb", server.Options{KeepaliveMinTime: minTime, MaxConnectionIdle: time.Hour})

	t.Run("allowed rate", func(t *testing.T) {
		h := dialH2(t, ts.addr)
		for i := range 5 {
			// The rate under test: each ping at least 4 × minTime after
			// the last one's answer (a ticker could deliver two ticks
			// close together on a loaded machine).
			time.Sleep(4 * minTime)
			data := [8]byte{byte(i)}
			require.NoError(t, h.fr.WritePing(false, data))
			for answered := false; !answered; {
				switch f := h.next().(type) {
				case *http2.GoAwayFrame:
					t.Fatalf("GOAWAY %v %q at an allowed rate", f.ErrCode, f.DebugData())
				case *http2.PingFrame:
					answered = f.IsAck() && f.Data == data
				}
			}
		}
	})
	t.Run("too often", func(t *testing.T) {
		h := dialH2(t, ts.addr)
		for i := range 10 { // back to back: the server tolerates 2 strikes
			require.NoError(t, h.fr.WritePing(false, [8]byte{byte(i)}))
		}
		var got *goAway
		h.requireClosed(func(f http2.Frame) {
			if g, ok := f.(*http2.GoAwayFrame); ok {
				got = &goAway{g.ErrCode, string(g.DebugData())}
			}
		})
		require.Equal(t, &goAway{http2.ErrCodeEnhanceYourCalm, "too_many_pings"}, got)
	})
}

// TestKeepaliveIdleConnectionClosed: a connection with no call open for
// MaxConnectionIdle gets a GOAWAY (NO_ERROR, "max_idle") and is closed.
func TestKeepaliveIdleConnectionClosed(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{MaxConnectionIdle: 100 * time.Millisecond})
	h := dialH2(t, ts.addr)
	var got []goAway
	h.requireClosed(func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			got = append(got, goAway{f.ErrCode, string(f.DebugData())})
		case *http2.PingFrame:
			if !f.IsAck() { // the GOAWAY's ping: answered, as a live client does
				require.NoError(t, h.fr.WritePing(true, f.Data))
			}
		}
	})
	require.NotEmpty(t, got)
	for _, g := range got {
		require.Equal(t, goAway{http2.ErrCodeNo, "max_idle"}, g)
	}
}

// TestKeepaliveDeadPeerDropped: a peer that completed the handshake and
// then never answers the server's pings is dropped once KeepaliveTime of
// silence and KeepaliveTimeout for the ping's answer have passed (gRPC
// pings no more often than every second, so KeepaliveTime is 1 s). The
// client reads only to see the connection end; it answers nothing, which
// is all the server can tell of a dead peer.
func TestKeepaliveDeadPeerDropped(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{KeepaliveTime: time.Second, KeepaliveTimeout: 100 * time.Millisecond,
		MaxConnectionIdle: time.Hour})
	h := dialH2(t, ts.addr)
	pings := 0
	h.requireClosed(func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.PingFrame:
			if !f.IsAck() {
				pings++
			}
		case *http2.GoAwayFrame:
			t.Fatalf("a dead peer is dropped by keepalive, not drained: GOAWAY %v %q", f.ErrCode, f.DebugData())
		}
	})
	require.Equal(t, 1, pings, "one unanswered ping, then the close")
}
