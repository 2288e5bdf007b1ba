package cluster_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/internal/testcerts"
	"github.com/goethe-log/goethe/store"
)

// Members with certificates of the cluster's CA replicate over mutual TLS;
// a peer without a certificate, with one of another CA, or speaking plain
// TCP, is refused by the Raft port.
func TestTLSTransport(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "cluster-ca")
	certs := map[string]tls.Certificate{}
	for i := range 3 {
		id := fmt.Sprintf("n%d", i+1)
		certs[id] = ca.Member(t, dir, id).TLS
	}
	c := newCluster(t, "leveldb", 3, func(cfg *cluster.Config) {
		cfg.TLS = cluster.MemberTLS(certs[cfg.ID], ca.Pool())
	})
	l := c.node(c.waitLeader(10 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last uint64
	for i := range 10 {
		_, idx, err := l.Append(ctx, "tls", evs(fmt.Sprintf("e%d", i)), store.ExpectAny)
		require.NoError(t, err)
		last = idx
	}
	c.waitConverged(last)
	for _, n := range c.running() {
		require.Len(t, readTopic(t, n.st, "tls"), 10)
	}

	addr := c.peers[0].Addr
	stranger := testcerts.NewCA(t, dir, "other-ca").Member(t, dir, "stranger").TLS
	for name, cfg := range map[string]*tls.Config{
		"no certificate":        {RootCAs: ca.Pool()},
		"another CA's":          {RootCAs: ca.Pool(), Certificates: []tls.Certificate{stranger}},
		"not trusting the node": {Certificates: []tls.Certificate{certs["n1"]}},
	} {
		t.Run(name, func(t *testing.T) { requireRefused(t, addr, cfg) })
	}
	t.Run("plain TCP", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		// A Raft RPC type byte and garbage: not a TLS client hello.
		_, _ = conn.Write([]byte{0, 1, 2, 3, 4, 5, 6, 7})
		_, err = conn.Read(make([]byte, 64))
		require.Error(t, err)
	})
}

// requireRefused dials addr with cfg and requires the TLS connection to
// fail, at the handshake or at the first read (TLS 1.3 reports a refused
// client certificate after the client's side of the handshake is done).
func requireRefused(t *testing.T, addr string, cfg *tls.Config) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, _ = conn.Write([]byte{0})
	_, err = conn.Read(make([]byte, 64))
	require.Error(t, err)
}
