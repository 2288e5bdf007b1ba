package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	goethesrv "github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// TestSIGHUPEndsRevokedFollower: a real goethe with --auth-file; a
// follower idle at the end of its topic is ended with PERMISSION_DENIED
// by the SIGHUP that reloads a file taking its permission away, and the
// server logs how many streams the reload ended.
func TestSIGHUPEndsRevokedFollower(t *testing.T) {
	authPath := filepath.Join(t.TempDir(), "auth.json")
	write := func(entries ...goethesrv.TokenEntry) { writeAuthFile(t, authPath, entries...) }
	ops := goethesrv.TokenEntry{Name: "ops", SHA256: goethesrv.HashToken("ops-secret"), Admin: []string{"*"}}
	write(ops, goethesrv.TokenEntry{Name: "billing", SHA256: goethesrv.HashToken("billing-secret"), Read: []string{"orders"}})
	s := startServer(t, "leveldb", filepath.Join(t.TempDir(), "data"), "--auth-file", authPath)

	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	api := goethev1.NewGoetheClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	as := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	_, err = api.Produce(as("ops-secret"), &goethev1.ProduceRequest{Topic: "orders",
		Events: []*goethev1.EventData{{Payload: []byte("created")}}})
	require.NoError(t, err)
	f, err := api.Consume(as("billing-secret"), &goethev1.ConsumeRequest{Topic: "orders", Follow: true})
	require.NoError(t, err)
	res, err := f.Recv()
	require.NoError(t, err)
	require.Equal(t, "created", string(res.Events[0].Payload))

	// billing may now read "invoices" only.
	write(ops, goethesrv.TokenEntry{Name: "billing", SHA256: goethesrv.HashToken("billing-secret"), Read: []string{"invoices"}})
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGHUP))
	_, err = f.Recv()
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Eventually(t, func() bool { return strings.Contains(s.stderr.String(), `"streams_ended":1`) }, startTimeout, pollEvery)
	s.stop()
}
