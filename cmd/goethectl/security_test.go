package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/internal/testcerts"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/internal/tlsconf"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// ctlEnv runs goethectl args with the environment vars (and $GOETHE_SERVER
// addr).
func ctlEnv(t *testing.T, addr string, vars map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == serverEnv {
			return addr
		}
		return vars[k]
	}
	code := run(t.Context(), args, &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: getenv})
	return result{code, stdout.String(), stderr.String()}
}

// TestTLSAndToken runs goethectl against a real server with mutual TLS and
// tokens: every command works with the CA, the client certificate and a
// token of the right permissions, given by flags or by the environment,
// and each missing piece fails with one line that says what to check.
func TestTLSAndToken(t *testing.T) {
	certs := testcerts.New(t)
	toks, err := server.NewTokens([]server.TokenEntry{
		{Name: "ops", SHA256: server.HashToken("ops-token"), Admin: []string{"*"}},
		{Name: "reader", SHA256: server.HashToken("reader-token"), Read: []string{"orders"}},
	})
	require.NoError(t, err)
	addr, _ := testutil.StartServer(t, "leveldb", t.TempDir(), store.DefaultOptions(), server.Options{
		TLS: tlsconf.Server(certs.Server.TLS, certs.CA.Pool()), Auth: server.NewAuth(toks)})
	tlsFlags := []string{"--tls-ca", certs.CA.File, "--tls-cert", certs.Client.CertFile, "--tls-key", certs.Client.KeyFile}
	tlsEnv := map[string]string{tlsCAEnv: certs.CA.File, tlsCertEnv: certs.Client.CertFile, tlsKeyEnv: certs.Client.KeyFile}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	okRun := func(r result) string {
		t.Helper()
		require.Equal(t, exitOK, r.code, r.stderr)
		return r.stdout
	}
	failRun := func(r result) string {
		t.Helper()
		require.Equal(t, exitError, r.code, r.stdout)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
		return r.stderr
	}

	// Flags, globals before the command and after it.
	okRun(ctlEnv(t, addr, nil, append(append([]string{}, tlsFlags...), "--token", "ops-token", "produce", "orders", "a", "b")...))
	okRun(ctlEnv(t, addr, nil, append([]string{"produce", "orders", "c", "--token", "ops-token"}, tlsFlags...)...))
	// The environment, GOETHE_TOKEN included.
	ops := with(tlsEnv, tokenEnv, "ops-token")
	require.Contains(t, okRun(ctlEnv(t, addr, ops, "topics")), "orders")
	require.Contains(t, okRun(ctlEnv(t, addr, ops, "topic", "orders")), "3")
	okRun(ctlEnv(t, addr, ops, "cursor", "set", "orders", "billing", "beginning"))
	okRun(ctlEnv(t, addr, ops, "cursor", "get", "orders", "billing"))
	out := okRun(ctlEnv(t, addr, with(tlsEnv, tokenEnv, "reader-token"), "consume", "orders"))
	require.Equal(t, 3, strings.Count(out, "\n"), out)
	// A flag wins over the environment.
	okRun(ctlEnv(t, addr, with(tlsEnv, tokenEnv, "wrong"), "topic", "orders", "--token", "ops-token"))

	// The reader may not write, nor read another topic.
	reader := with(tlsEnv, tokenEnv, "reader-token")
	require.Contains(t, failRun(ctlEnv(t, addr, reader, "produce", "orders", "x")), `the token may not do this: permission denied: write on topic "orders"`)
	require.Contains(t, failRun(ctlEnv(t, addr, reader, "topic", "payroll")), `read on topic "payroll"`)
	okRun(ctlEnv(t, addr, ops, "produce", "payroll", "x"))
	require.NotContains(t, okRun(ctlEnv(t, addr, reader, "topics")), "payroll", "topics lists only what the token may read")

	// No token, an unknown token.
	require.Contains(t, failRun(ctlEnv(t, addr, tlsEnv, "topics")), "wants a valid token (--token or $GOETHE_TOKEN)")
	require.Contains(t, failRun(ctlEnv(t, addr, with(tlsEnv, tokenEnv, "guess"), "topics")), "unknown bearer token")
	// TLS without the CA, without a client certificate, in plaintext.
	require.Contains(t, failRun(ctlEnv(t, addr, with(ops, tlsCAEnv, ""), "topics")), "TLS handshake failed")
	// (TLS 1.3 refuses a missing client certificate after the client's
	// side of the handshake: the error the client sees varies.)
	failRun(ctlEnv(t, addr, with(ops, tlsCertEnv, "", tlsKeyEnv, ""), "topics"))
	failRun(ctlEnv(t, addr, map[string]string{tokenEnv: "ops-token"}, "topics"))

	// A certificate without its key is a usage error.
	r := ctlEnv(t, addr, ops, "topics", "--tls-key", "")
	require.Equal(t, exitUsage, r.code, r.stderr)
	require.Contains(t, r.stderr, "--tls-cert and --tls-key go together")
	// A CA file that is not one names it.
	require.Contains(t, failRun(ctlEnv(t, addr, with(ops, tlsCAEnv, certs.Client.KeyFile), "topics")), "CA file: "+certs.Client.KeyFile)

	// bench takes the same global flags.
	r = ctlEnv(t, addr, ops, "bench", "--producers", "2", "--events", "100", "--mode", "stream")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Regexp(t, `produce +100 `, r.stdout)
}

func TestUsageNamesSecurityFlags(t *testing.T) {
	var stdout strings.Builder
	require.Equal(t, exitOK, run(t.Context(), []string{"help"}, &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &strings.Builder{}, getenv: noEnv}))
	for _, f := range []string{"--tls-ca FILE", "--tls-cert FILE", "--tls-key FILE", "--token TOKEN", "$GOETHE_TOKEN"} {
		require.Contains(t, stdout.String(), f)
	}
}

func TestExplainAuth(t *testing.T) {
	// The client's own refusal to send a token in plaintext has no reason.
	err := explain(status.Error(codes.Unauthenticated, "goethe: the token is not sent in plaintext to an address that is not loopback: connect with TLS"), "h:1")
	require.EqualError(t, err, "the token is not sent in plaintext to an address that is not loopback: connect with TLS")
	err = explain(withReason(codes.Unauthenticated, "unauthenticated: unknown bearer token", goethev1.ReasonUnauthenticated, nil), "h:1")
	require.EqualError(t, err, "the server at h:1 wants a valid token (--token or $GOETHE_TOKEN): unauthenticated: unknown bearer token")
	err = explain(withReason(codes.PermissionDenied, `permission denied: write on topic "a"`, goethev1.ReasonPermissionDenied, nil), "h:1")
	require.EqualError(t, err, `the token may not do this: permission denied: write on topic "a"`)
	err = explain(status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`), "h:1")
	require.EqualError(t, err, "cannot reach a goethe server at h:1: TLS handshake failed: certificate signed by unknown authority (check --tls-ca, --tls-cert and --tls-key)")
}
