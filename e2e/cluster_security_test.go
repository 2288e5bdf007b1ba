package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goethesrv "github.com/goethe-log/goethe/server"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/goethe-log/goethe/internal/testcerts"
	"github.com/goethe-log/goethe/internal/tlsconf"
)

// TestSecureCluster runs three members with mutual TLS on the gRPC and
// the Raft ports and an auth file: writes made on any member with a
// writer's token are forwarded by followers with the peer token and read
// back on every member with a reader's token; a token without write
// permission is refused on a follower before anything is forwarded.
func TestSecureCluster(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "ca")
	serverCert := ca.Server(t, dir, "server")
	clientCert := ca.Client(t, dir, "client")

	authFile, peerToken := filepath.Join(dir, "auth.json"), filepath.Join(dir, "peer-token")
	writeAuthFile(t, authFile,
		goethesrv.TokenEntry{Name: "writer", SHA256: goethesrv.HashToken("writer-secret"), Write: []string{"*"}, Read: []string{"*"}},
		goethesrv.TokenEntry{Name: "reader", SHA256: goethesrv.HashToken("reader-secret"), Read: []string{"*"}},
		goethesrv.TokenEntry{Name: "peer", SHA256: goethesrv.HashToken("peer-secret"), Write: []string{"*"}, Admin: []string{"*"}})
	require.NoError(t, os.WriteFile(peerToken, []byte("peer-secret\n"), 0o600))

	ports := freeLoopback(t, 6)
	var peers, clients []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("n%d=%s", i+1, ports[2*i]))
		clients = append(clients, fmt.Sprintf("n%d=%s", i+1, ports[2*i+1]))
	}
	addrs := make([]string, 3)
	for i := range 3 {
		id := fmt.Sprintf("n%d", i+1)
		member := ca.Member(t, dir, id)
		s, _ := startProcess(t, "leveldb", t.TempDir(), "--listen", ports[2*i+1], "--node-id", id, "--raft-listen", ports[2*i],
			"--peers", strings.Join(peers, ","), "--peer-clients", strings.Join(clients, ","),
			"--tls-cert", serverCert.CertFile, "--tls-key", serverCert.KeyFile, "--tls-client-ca", ca.File, "--auth-file", authFile,
			"--raft-tls-cert", member.CertFile, "--raft-tls-key", member.KeyFile, "--raft-tls-ca", ca.File, "--peer-token-file", peerToken)
		addrs[i] = s.addr
	}
	for _, addr := range addrs {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsconf.Client(ca.Pool(), &clientCert.TLS))))
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "goethe.v1.Goethe"})
			return err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING
		}, startTimeout, pollEvery, "member at %s never knew a leader", addr)
		conn.Close()
	}

	ctl := func(addr, token string, args ...string) (string, error) {
		cmd := exec.Command(goethectlBin(), args...)
		cmd.Env = append(binEnv(), "GOETHE_SERVER="+addr, "GOETHE_TOKEN="+token,
			"GOETHE_TLS_CA="+ca.File, "GOETHE_TLS_CERT="+clientCert.CertFile, "GOETHE_TLS_KEY="+clientCert.KeyFile)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// One write on every member: two of them are followers, which forward.
	for i, addr := range addrs {
		out, err := ctl(addr, "writer-secret", "produce", "orders", fmt.Sprintf("from n%d", i+1))
		require.NoError(t, err, "member n%d: %s", i+1, out)
	}
	for i, addr := range addrs {
		require.Eventually(t, func() bool {
			out, err := ctl(addr, "reader-secret", "consume", "orders")
			return err == nil && out == "from n1\nfrom n2\nfrom n3\n"
		}, startTimeout, pollEvery, "member n%d did not apply the writes", i+1)
		out, err := ctl(addr, "reader-secret", "produce", "orders", "nope")
		require.Error(t, err)
		require.Contains(t, out, "permission denied", "member n%d", i+1)
	}
}
