package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testcerts"
	"github.com/goethe-log/goethe/internal/tlsconf"
	"github.com/goethe-log/goethe/server"
)

func TestParseConfigSecurity(t *testing.T) {
	c, err := parseConfig([]string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem", "--auth-file", "a.json"}, env(), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, securityConfig{TLSCert: "c.pem", TLSKey: "k.pem", TLSClientCA: "ca.pem", AuthFile: "a.json"}, c.security)
	c, err = parseConfig(nil, env("GOETHE_TLS_CERT", "e.pem", "GOETHE_TLS_KEY", "ek.pem", "GOETHE_AUTH_FILE", "e.json"), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, securityConfig{TLSCert: "e.pem", TLSKey: "ek.pem", AuthFile: "e.json"}, c.security)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert needs --tls-key"},
		{[]string{"--tls-key", "k.pem"}, "--tls-key needs --tls-cert"},
		{[]string{"--tls-client-ca", "ca.pem"}, "--tls-client-ca needs --tls-cert"},
	} {
		_, err := parseConfig(tc.args, env(), &bytes.Buffer{})
		require.ErrorContains(t, err, tc.want)
	}
	var out bytes.Buffer
	_, err = parseConfig([]string{"-h"}, env(), &out)
	require.ErrorIs(t, err, errHelp)
	for _, f := range []string{"-tls-cert", "-tls-key", "-tls-client-ca", "-auth-file"} {
		require.Contains(t, out.String(), f)
	}
}

// TestSecurityStartFailures: a certificate or auth file that cannot be
// used stops the start with one line naming the flag.
func TestSecurityStartFailures(t *testing.T) {
	certs := testcerts.New(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a certificate"), 0o600))
	badAuth := filepath.Join(dir, "auth.json")
	require.NoError(t, os.WriteFile(badAuth, []byte(`{"tokens": [{"name": "a", "sha256": "abc"}]}`), 0o600))
	base := []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"--tls-cert " + filepath.Join(dir, "missing.pem"), []string{"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", certs.Server.KeyFile}},
		{"no such file", []string{"--tls-cert", certs.Server.CertFile, "--tls-key", filepath.Join(dir, "missing.pem")}},
		{"--tls-cert " + garbage, []string{"--tls-cert", garbage, "--tls-key", certs.Server.KeyFile}},
		{"private key does not match", []string{"--tls-cert", certs.Server.CertFile, "--tls-key", certs.Client.KeyFile}},
		{"--tls-client-ca " + garbage + ": " + garbage + ": tlsconf: no PEM certificate found",
			[]string{"--tls-cert", certs.Server.CertFile, "--tls-key", certs.Server.KeyFile, "--tls-client-ca", garbage}},
		{"--tls-client-ca " + filepath.Join(dir, "none.pem") + ": open none.pem: no such file",
			[]string{"--tls-cert", certs.Server.CertFile, "--tls-key", certs.Server.KeyFile, "--tls-client-ca", filepath.Join(dir, "none.pem")}},
		{"--auth-file " + badAuth + ": server: invalid auth file: token 1 (\"a\"): sha256 must be 64 hex digits", []string{"--auth-file", badAuth}},
		{"--auth-file " + filepath.Join(dir, "none.json") + ": open none.json: no such file", []string{"--auth-file", filepath.Join(dir, "none.json")}},
	} {
		runFails(t, tc.want, append(append([]string{}, base...), tc.args...)...)
	}
}

// writeAuthFile writes an auth file of entries and returns its path.
func writeAuthFile(t *testing.T, entries ...server.TokenEntry) string {
	t.Helper()
	b, err := json.Marshal(server.AuthFile{Tokens: entries})
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "auth.json")
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

// TestServeTLSAndTokens: with mutual TLS and an auth file, a client with
// the CA, its certificate and a token is served, within the token's
// permissions; the metrics port speaks the same TLS.
func TestServeTLSAndTokens(t *testing.T) {
	certs := testcerts.New(t)
	auth := writeAuthFile(t,
		server.TokenEntry{Name: "app", SHA256: server.HashToken("app-token"), Read: []string{"orders"}, Write: []string{"orders"}})
	in := launch(t, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json",
		"--tls-cert", certs.Server.CertFile, "--tls-key", certs.Server.KeyFile, "--tls-client-ca", certs.CA.File, "--auth-file", auth)
	var start map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(in.stderr.String(), "\n", 2)[0]), &start))
	require.Equal(t, true, start["tls"])
	require.Equal(t, true, start["mutual_tls"])
	require.Equal(t, auth, start["auth_file"])
	url, _ := start["metrics"].(string)
	require.True(t, strings.HasPrefix(url, "https://127.0.0.1:"), "%v", start)

	ctx := context.Background()
	c, err := client.Dial(in.addr, client.WithTLSFiles(certs.CA.File, certs.Client.CertFile, certs.Client.KeyFile), client.WithToken("app-token"))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Produce(ctx, "orders", []client.EventData{{Payload: []byte("x")}})
	require.NoError(t, err)
	_, err = c.Produce(ctx, "payroll", []client.EventData{{Payload: []byte("x")}})
	require.ErrorIs(t, err, client.ErrPermissionDenied)

	// Metrics over the same mutual TLS.
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconf.Client(certs.CA.Pool(), &certs.Client.TLS)}}
	res, err := httpc.Get(url)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(body), `grpc_code="PermissionDenied"`)
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconf.Client(certs.CA.Pool(), nil)}}
	if res, err := noCert.Get(url); err == nil {
		res.Body.Close()
		t.Fatal("metrics served to a client without a certificate")
	}
	code, body2 := get(t, "http://"+strings.TrimPrefix(url, "https://"))
	require.NotEqual(t, http.StatusOK, code, "no metrics in plaintext: %s", body2)
	require.Equal(t, 0, in.stop(t))
}

// TestAuthFileReloadOnSIGHUP: SIGHUP re-reads the auth file; a file that
// no longer loads keeps the tokens in force.
func TestAuthFileReloadOnSIGHUP(t *testing.T) {
	auth := writeAuthFile(t, server.TokenEntry{Name: "old", SHA256: server.HashToken("old-token"), Read: []string{"*"}})
	in := launch(t, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--auth-file", auth)
	ctx := context.Background()
	ping := func(token string) error {
		c, err := client.Dial(in.addr, client.WithToken(token))
		require.NoError(t, err)
		defer c.Close()
		return c.Ping(ctx)
	}
	require.NoError(t, ping("old-token"))

	require.NoError(t, os.WriteFile(auth, []byte("{broken"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(in.stderr.String(), "auth file not reloaded") }, 10*time.Second, time.Millisecond)
	require.NoError(t, ping("old-token"), "a broken file keeps the tokens in force")

	b, err := json.Marshal(server.AuthFile{Tokens: []server.TokenEntry{{Name: "new", SHA256: server.HashToken("new-token"), Read: []string{"*"}}}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(auth, b, 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(in.stderr.String(), "auth file reloaded") }, 10*time.Second, time.Millisecond)
	require.ErrorIs(t, ping("old-token"), client.ErrUnauthenticated)
	require.NoError(t, ping("new-token"))
}

// TestExposedListenWarns: listening beyond loopback without TLS or without
// tokens logs a warning for each; on loopback, or with both, nothing.
func TestExposedListenWarns(t *testing.T) {
	certs := testcerts.New(t)
	auth := writeAuthFile(t, server.TokenEntry{Name: "a", SHA256: server.HashToken("t"), Admin: []string{"*"}})
	const noTLS, noAuth, metricsNoTLS = "without TLS: tokens and events", "without --auth-file", "serving metrics on a non-loopback address without TLS"
	tlsFlags := []string{"--tls-cert", certs.Server.CertFile, "--tls-key", certs.Server.KeyFile}
	for _, tc := range []struct {
		name  string
		args  []string
		warns []string
	}{
		{"loopback", []string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, nil},
		{"all interfaces", []string{"--listen", "0.0.0.0:0", "--metrics-listen", "0.0.0.0:0"}, []string{noTLS, noAuth, metricsNoTLS}},
		{"all interfaces, tls", append([]string{"--listen", "0.0.0.0:0"}, tlsFlags...), []string{noAuth}},
		{"all interfaces, auth", []string{"--listen", "0.0.0.0:0", "--auth-file", auth}, []string{noTLS}},
		{"all interfaces, tls and auth", append([]string{"--listen", "0.0.0.0:0", "--metrics-listen", "0.0.0.0:0", "--auth-file", auth}, tlsFlags...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := launch(t, append([]string{"--data-dir", t.TempDir()}, tc.args...)...)
			out := in.stderr.String() // the warnings come before ready
			for _, w := range []string{noTLS, noAuth, metricsNoTLS} {
				if contains(tc.warns, w) {
					require.Contains(t, out, w)
					continue
				}
				require.NotContains(t, out, w)
			}
			require.Equal(t, len(tc.warns), strings.Count(out, "level=WARN"), out)
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// requirePrivate requires no file under dir to be readable, writable or
// runnable by group or others.
func requirePrivate(t *testing.T, dir string) (files int) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		info, err := d.Info()
		require.NoError(t, err)
		require.Zero(t, info.Mode().Perm()&0o077, "%s is %v", path, info.Mode())
		if !d.IsDir() {
			files++
		}
		return nil
	}))
	return files
}

// TestDataFilesPrivate: on every engine, after goethe has written, no file
// of the data folder is open to group or others; a folder made before
// (0644 files, 0755 folders) is made private at start.
func TestDataFilesPrivate(t *testing.T) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			in := launch(t, "--engine", name, "--data-dir", dir, "--listen", "127.0.0.1:0")
			c, err := client.Dial(in.addr)
			require.NoError(t, err)
			defer c.Close()
			ctx := context.Background()
			for i := range 50 {
				_, err := c.Produce(ctx, "t", []client.EventData{{Payload: bytes.Repeat([]byte{byte(i)}, 4096)}})
				require.NoError(t, err)
			}
			require.NoError(t, c.CommitCursor(ctx, "t", "c", 1))
			require.Greater(t, requirePrivate(t, dir), 1, "files were written")
			require.Equal(t, 0, in.stop(t))
			requirePrivate(t, dir)

			// As an older goethe left it.
			require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				require.NoError(t, err)
				mode := fs.FileMode(0o644)
				if d.IsDir() {
					mode = 0o755
				}
				return os.Chmod(path, mode)
			}))
			in = launch(t, "--engine", name, "--data-dir", dir, "--listen", "127.0.0.1:0")
			requirePrivate(t, dir)
			require.Equal(t, 0, in.stop(t))
		})
	}
}

func TestHashTokenCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, runHashToken(nil, strings.NewReader("abc\n"), &out, &errOut))
	require.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n", out.String())
	out.Reset()
	require.Equal(t, exitOK, runHashToken(nil, strings.NewReader("abc\r\nignored"), &out, &errOut), "the first line, CRLF dropped")
	require.Equal(t, server.HashToken("abc")+"\n", out.String())
	out.Reset()
	require.Equal(t, exitOK, runHashToken(nil, strings.NewReader("abc"), &out, &errOut), "no line end")
	require.Equal(t, server.HashToken("abc")+"\n", out.String())

	require.Equal(t, exitUsage, runHashToken(nil, strings.NewReader("\n"), &out, &errOut))
	require.Contains(t, errOut.String(), "no token on stdin")
	errOut.Reset()
	require.Equal(t, exitUsage, runHashToken([]string{"secret"}, strings.NewReader(""), &out, &errOut))
	require.Contains(t, errOut.String(), "the token is read from stdin")
}
