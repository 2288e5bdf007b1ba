package e2e

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/goethe-log/goethe/internal/testcerts"
	"github.com/goethe-log/goethe/internal/tlsconf"
)

// TestSecureServer runs the binaries as an operator would: goethe
// hash-token makes the auth file's hashes from tokens on stdin; goethe
// serves with mutual TLS and the auth file; goethectl reaches it with the
// CA, its certificate and a token from $GOETHE_TOKEN, within the token's
// permissions; SIGHUP reloads the auth file; health needs no token; and no
// file of the data folder is readable by other users.
func TestSecureServer(t *testing.T) {
	certs := testcerts.New(t)
	hash := func(token string) string {
		cmd := exec.Command(goetheBin(), "hash-token")
		cmd.Env = binEnv()
		cmd.Stdin = strings.NewReader(token + "\n")
		out, err := cmd.Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	writeAuth := func(path string, entries ...map[string]any) {
		b, err := json.Marshal(map[string]any{"tokens": entries})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o600))
	}
	authFile := filepath.Join(t.TempDir(), "auth.json")
	writeAuth(authFile,
		map[string]any{"name": "ops", "sha256": hash("ops-secret"), "admin": []string{"*"}},
		map[string]any{"name": "billing", "sha256": hash("billing-secret"), "read": []string{"orders"}})

	dataDir := filepath.Join(t.TempDir(), "data")
	s := &server{t: t, stderr: &syncBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(goetheBin(), "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--log-format", "json",
		"--tls-cert", certs.Server.CertFile, "--tls-key", certs.Server.KeyFile, "--tls-client-ca", certs.CA.File, "--auth-file", authFile)
	s.cmd.Env = binEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.stderr, s.stderr
	require.NoError(t, s.cmd.Start())
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.kill)
	require.Eventually(t, func() bool { s.addr = s.listenAddr(); return s.addr != "" }, startTimeout, pollEvery, "%s", s.stderr)

	// Health over TLS, without a token.
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsconf.Client(certs.CA.Pool(), &certs.Client.TLS))))
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "goethe.v1.Goethe"})
		return err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, startTimeout, pollEvery)

	ctl := func(token string, args ...string) (string, error) {
		cmd := exec.Command(goethectlBin(), args...)
		cmd.Env = append(binEnv(), "GOETHE_SERVER="+s.addr, "GOETHE_TOKEN="+token,
			"GOETHE_TLS_CA="+certs.CA.File, "GOETHE_TLS_CERT="+certs.Client.CertFile, "GOETHE_TLS_KEY="+certs.Client.KeyFile)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := ctl("ops-secret", "produce", "orders", "created", "paid")
	require.NoError(t, err, out)
	out, err = ctl("billing-secret", "consume", "orders")
	require.NoError(t, err, out)
	require.Equal(t, "created\npaid\n", out)
	out, err = ctl("billing-secret", "produce", "orders", "refund")
	require.Error(t, err)
	require.Equal(t, "goethectl: the token may not do this: permission denied: write on topic \"orders\"\n", out)
	out, err = ctl("nobody", "topics")
	require.Error(t, err)
	require.Contains(t, out, "wants a valid token")

	// The operator revokes billing and reloads.
	writeAuth(authFile, map[string]any{"name": "ops", "sha256": hash("ops-secret"), "admin": []string{"*"}})
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(s.stderr.String(), "auth file reloaded") }, startTimeout, pollEvery)
	out, err = ctl("billing-secret", "topics")
	require.Error(t, err)
	require.Contains(t, out, "unknown bearer token")

	s.stop()
	require.NoError(t, filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		info, err := d.Info()
		require.NoError(t, err)
		require.Zero(t, info.Mode().Perm()&0o077, "%s is %v", path, info.Mode())
		return nil
	}))
}
