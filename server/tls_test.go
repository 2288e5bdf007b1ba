package server_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/internal/testcerts"
	"github.com/goethe-log/goethe/internal/tlsconf"
	"github.com/goethe-log/goethe/server"
)

// dialT is client.Dial that closes the client when the test ends.
func dialT(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMutualTLS: a server with a client CA serves a client that presents
// a certificate of that CA, and refuses every other: one without a
// certificate, one with a certificate of another CA, one that does not
// trust the server's CA, and one in plaintext.
func TestMutualTLS(t *testing.T) {
	certs := testcerts.New(t)
	addr, _ := startSecureServer(t, server.Options{
		TLS:  tlsconf.Server(certs.Server.TLS, certs.CA.Pool()),
		Auth: server.NewAuth(testTokens(t)),
	})
	ctx := ctxT(t)

	good := dialT(t, addr, client.WithTLS(tlsconf.Client(certs.CA.Pool(), &certs.Client.TLS)), client.WithToken(tokAdmin))
	_, err := good.Produce(ctx, "orders", []client.EventData{{Payload: []byte("x")}})
	require.NoError(t, err)
	files := dialT(t, addr, client.WithTLSFiles(certs.CA.File, certs.Client.CertFile, certs.Client.KeyFile), client.WithToken(tokReader))
	info, err := files.Topic(ctx, "orders")
	require.NoError(t, err)
	require.EqualValues(t, 1, info.LastSeq)

	// The certificate is not a token: without one the call is refused.
	noToken := dialT(t, addr, client.WithTLS(tlsconf.Client(certs.CA.Pool(), &certs.Client.TLS)))
	_, err = noToken.Topic(ctx, "orders")
	require.ErrorIs(t, err, client.ErrUnauthenticated)

	other := testcerts.NewCA(t, t.TempDir(), "other-ca")
	otherClient := other.Client(t, t.TempDir(), "intruder")
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":            tlsconf.Client(certs.CA.Pool(), nil),
		"client certificate of another CA": tlsconf.Client(certs.CA.Pool(), &otherClient.TLS),
		"server not trusted":               tlsconf.Client(other.Pool(), &certs.Client.TLS),
	} {
		t.Run(name, func(t *testing.T) {
			c := dialT(t, addr, client.WithTLS(cfg), client.WithToken(tokAdmin))
			_, err := c.Topic(ctx, "orders")
			require.ErrorIs(t, err, client.ErrUnavailable, "%v", err)
		})
	}
	t.Run("plaintext", func(t *testing.T) {
		c := dialT(t, addr, client.WithToken(tokAdmin))
		_, err := c.Topic(ctx, "orders")
		require.ErrorIs(t, err, client.ErrUnavailable, "%v", err)
	})
}

// TestTLSVersions: the server speaks TLS 1.3 to a client that has it, 1.2
// to one that has no newer, and nothing older.
func TestTLSVersions(t *testing.T) {
	certs := testcerts.New(t)
	addr, _ := startSecureServer(t, server.Options{TLS: tlsconf.Server(certs.Server.TLS, nil)})
	for _, tc := range []struct {
		max  uint16
		want uint16 // 0: refused
	}{
		{tls.VersionTLS13, tls.VersionTLS13},
		{tls.VersionTLS12, tls.VersionTLS12},
		{tls.VersionTLS11, 0},
	} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{
			RootCAs: certs.CA.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tc.max, NextProtos: []string{"h2"}})
		if tc.want == 0 {
			require.Error(t, err, "TLS version %x", tc.max)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, conn.ConnectionState().Version)
		require.NoError(t, conn.Close())
	}
}

// TestTLSServerOnly: without a client CA any client that trusts the
// server is served, with or without a certificate.
func TestTLSServerOnly(t *testing.T) {
	certs := testcerts.New(t)
	addr, _ := startSecureServer(t, server.Options{TLS: tlsconf.Server(certs.Server.TLS, nil)})
	c := dialT(t, addr, client.WithTLSFiles(certs.CA.File, "", ""))
	_, err := c.Produce(ctxT(t), "t", []client.EventData{{Payload: []byte("x")}})
	require.NoError(t, err)
}

// TestTokenNotSentInPlaintext: over plaintext the client sends its token to
// a loopback address only; to any other address the call fails before
// anything is sent (the address here is redirected to the loopback server,
// which would have accepted the token).
func TestTokenNotSentInPlaintext(t *testing.T) {
	addr, _ := startSecureServer(t, server.Options{Auth: server.NewAuth(testTokens(t))})
	ctx := ctxT(t)
	toLocal := grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	})
	remote := dialT(t, "passthrough:///192.0.2.1:7420", client.WithToken(tokAdmin), client.WithDialOptions(toLocal))
	err := remote.Ping(ctx)
	require.ErrorIs(t, err, client.ErrUnauthenticated)
	require.ErrorContains(t, err, "not sent in plaintext")
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, codes.Unauthenticated, ce.Code())
	require.Empty(t, ce.Reason(), "the server did not answer")

	for _, a := range []string{addr, "passthrough:///" + addr} {
		local := dialT(t, a, client.WithToken(tokAdmin))
		require.NoError(t, local.Ping(ctx))
	}
	// localhost counts as loopback.
	remoteName := dialT(t, "passthrough:///localhost:7420", client.WithToken(tokAdmin), client.WithDialOptions(toLocal))
	require.NoError(t, remoteName.Ping(ctx))
}
