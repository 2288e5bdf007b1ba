package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/internal/testcerts"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/internal/tlsconf"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// TestTokenErrors: with a server that checks tokens, each client call
// fails with ErrUnauthenticated without a valid token and
// ErrPermissionDenied without the permission, with the reason and the
// topic; Topics lists what the token may read; a Producer whose stream
// meets a topic it may not write fails that Future with
// ErrPermissionDenied.
func TestTokenErrors(t *testing.T) {
	certs := testcerts.New(t)
	toks, err := server.NewTokens([]server.TokenEntry{
		{Name: "app", SHA256: server.HashToken("app"), Read: []string{"a*"}, Write: []string{"a*"}},
		{Name: "ops", SHA256: server.HashToken("ops"), Admin: []string{"*"}},
	})
	require.NoError(t, err)
	addr, _ := testutil.StartServer(t, "leveldb", t.TempDir(), store.DefaultOptions(),
		server.Options{TLS: tlsconf.Server(certs.Server.TLS, nil), Auth: server.NewAuth(toks)})
	dial := func(opts ...client.Option) *client.Client {
		c, err := client.Dial(addr, append([]client.Option{client.WithTLS(tlsconf.Client(certs.CA.Pool(), nil))}, opts...)...)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev := []client.EventData{{Payload: []byte("x")}}
	ops := dial(client.WithToken("ops"))
	for _, topic := range []string{"a1", "b1"} {
		_, err := ops.Produce(ctx, topic, ev)
		require.NoError(t, err)
	}

	_, err = dial().Topic(ctx, "a1")
	require.ErrorIs(t, err, client.ErrUnauthenticated)
	require.True(t, client.IsReason(err, goethev1.ReasonUnauthenticated))

	app := dial(client.WithToken("app"))
	_, err = app.Produce(ctx, "b1", ev)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, goethev1.ReasonPermissionDenied, ce.Reason())
	require.Equal(t, map[string]string{"topic": "b1", "permission": "write"}, ce.Metadata())

	var names []string
	for ti, err := range app.Topics(ctx, 1) {
		require.NoError(t, err)
		names = append(names, ti.Name)
	}
	require.Equal(t, []string{"a1"}, names)

	p, err := app.NewProducer(ctx)
	require.NoError(t, err)
	defer p.Close()
	res, err := p.Produce(ctx, "a1", ev)
	require.NoError(t, err)
	require.EqualValues(t, 2, res.FirstSeq)
	_, err = p.Produce(ctx, "b1", ev)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
}
