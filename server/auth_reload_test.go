package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// authFile is an auth file on disk that a test rewrites and reloads, as
// the server binary does on SIGHUP (cmd/goethe: LoadAuthFile, then
// Auth.Replace).
type authFile struct {
	t    *testing.T
	path string
	auth *server.Auth
}

func newAuthFile(t *testing.T, entries ...server.TokenEntry) *authFile {
	f := &authFile{t: t, path: filepath.Join(t.TempDir(), "auth.json")}
	f.write(entries...)
	toks, err := server.LoadAuthFile(f.path)
	require.NoError(t, err)
	f.auth = server.NewAuth(toks)
	return f
}

func (f *authFile) write(entries ...server.TokenEntry) {
	b, err := json.Marshal(server.AuthFile{Tokens: entries})
	require.NoError(f.t, err)
	require.NoError(f.t, os.WriteFile(f.path, b, 0o600))
}

// reload rewrites the file with entries and reloads it; it returns how
// many streams the reload ended.
func (f *authFile) reload(entries ...server.TokenEntry) int {
	f.t.Helper()
	f.write(entries...)
	toks, err := server.LoadAuthFile(f.path)
	require.NoError(f.t, err)
	return f.auth.Replace(toks)
}

var (
	entryAdmin  = server.TokenEntry{Name: "admin", SHA256: server.HashToken(tokAdmin), Admin: []string{"*"}}
	entryReader = server.TokenEntry{Name: "reader", SHA256: server.HashToken(tokReader), Read: []string{"orders*"}}
	entryWriter = server.TokenEntry{Name: "writer", SHA256: server.HashToken(tokWriter), Write: []string{"orders*"}}
)

// TestAuthReloadEndsFollowers: a following Consume idle at the end of its
// topic is ended by the reload that revokes it, without a new event to
// wake it: PERMISSION_DENIED (with the topic and permission) when its
// token may no longer read the topic, UNAUTHENTICATED when the token is
// gone. A reload that keeps its permission leaves it following.
func TestAuthReloadEndsFollowers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		after  []server.TokenEntry // the reader's entry changed or gone
		code   codes.Code
		reason string
	}{
		{"permission removed", []server.TokenEntry{{Name: "reader", SHA256: server.HashToken(tokReader), Read: []string{"other"}}},
			codes.PermissionDenied, goethev1.ReasonPermissionDenied},
		{"token removed", nil, codes.Unauthenticated, goethev1.ReasonUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAuthFile(t, entryAdmin, entryReader)
			addr, _ := startSecureServer(t, server.Options{Auth: f.auth})
			api := goethev1.NewGoetheClient(rawConn(t, addr, nil))
			ctx := ctxT(t)
			_, err := api.Produce(withAuth(ctx, bearer(tokAdmin)), oneEvent("orders"))
			require.NoError(t, err)

			s, err := api.Consume(withAuth(ctx, bearer(tokReader)), &goethev1.ConsumeRequest{Topic: "orders", Follow: true,
				Start: &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_BEGINNING}})
			require.NoError(t, err)
			res, err := s.Recv()
			require.NoError(t, err)
			require.Len(t, res.Events, 1)

			// A reload that keeps the reader's permission ends nothing.
			require.Zero(t, f.reload(entryAdmin, entryReader, entryWriter))
			_, err = api.Produce(withAuth(ctx, bearer(tokAdmin)), oneEvent("orders"))
			require.NoError(t, err)
			res, err = s.Recv()
			require.NoError(t, err, "still following")
			require.EqualValues(t, 2, res.Events[0].Seq)

			// The follower is idle at the end: the reload ends it.
			require.Equal(t, 1, f.reload(append([]server.TokenEntry{entryAdmin}, tc.after...)...))
			_, err = s.Recv()
			info := requireReason(t, err, tc.code, tc.reason)
			if tc.code == codes.PermissionDenied {
				require.Equal(t, map[string]string{"topic": "orders", "permission": "read"}, info.GetMetadata())
			}
		})
	}
}

// TestAuthReloadEndsFollowerOnDelivery: a follower that is receiving
// events when its token loses the permission gets no event written after
// the reload.
func TestAuthReloadEndsFollowerOnDelivery(t *testing.T) {
	f := newAuthFile(t, entryAdmin, entryReader)
	addr, _ := startSecureServer(t, server.Options{Auth: f.auth})
	api := goethev1.NewGoetheClient(rawConn(t, addr, nil))
	ctx := ctxT(t)
	s, err := api.Consume(withAuth(ctx, bearer(tokReader)), &goethev1.ConsumeRequest{Topic: "orders", Follow: true,
		Start: &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_BEGINNING}})
	require.NoError(t, err)
	_, err = api.Produce(withAuth(ctx, bearer(tokAdmin)), oneEvent("orders"))
	require.NoError(t, err)
	res, err := s.Recv()
	require.NoError(t, err)
	require.EqualValues(t, 1, res.Events[0].Seq)

	require.Equal(t, 1, f.reload(entryAdmin))
	for range 3 {
		_, err = api.Produce(withAuth(ctx, bearer(tokAdmin)), oneEvent("orders"))
		require.NoError(t, err)
	}
	_, err = s.Recv()
	requireReason(t, err, codes.Unauthenticated, goethev1.ReasonUnauthenticated)
}

// TestAuthReloadProduceStream: after a reload, a ProduceStream's requests
// are checked against the new tokens. A request to a topic the token may
// no longer write fails alone with PERMISSION_DENIED and the stream goes
// on (as any request the token may not write); a reload that removes the
// token ends the stream, idle or not, with UNAUTHENTICATED.
func TestAuthReloadProduceStream(t *testing.T) {
	f := newAuthFile(t, entryAdmin, entryWriter)
	addr, _ := startSecureServer(t, server.Options{Auth: f.auth})
	api := goethev1.NewGoetheClient(rawConn(t, addr, nil))
	ctx := ctxT(t)
	s, err := api.ProduceStream(withAuth(ctx, bearer(tokWriter)))
	require.NoError(t, err)
	send := func(id uint64, topic string) *goethev1.ProduceStreamResponse {
		t.Helper()
		require.NoError(t, s.Send(&goethev1.ProduceStreamRequest{RequestId: id, Produce: oneEvent(topic)}))
		res, err := s.Recv()
		require.NoError(t, err, "the stream stays open")
		require.Equal(t, id, res.GetRequestId())
		return res
	}
	require.NotNil(t, send(1, "orders.eu").GetResult())
	require.NotNil(t, send(2, "orders.us").GetResult())

	// The writer keeps orders.eu only.
	require.Zero(t, f.reload(entryAdmin, server.TokenEntry{Name: "writer", SHA256: server.HashToken(tokWriter), Write: []string{"orders.eu"}}))
	require.NotNil(t, send(3, "orders.eu").GetResult())
	failed := send(4, "orders.us").GetError()
	require.NotNil(t, failed)
	info := requireReason(t, status.ErrorProto(failed), codes.PermissionDenied, goethev1.ReasonPermissionDenied)
	require.Equal(t, map[string]string{"topic": "orders.us", "permission": "write"}, info.GetMetadata())
	require.NotNil(t, send(5, "orders.eu").GetResult())

	// The stream is idle: the reload that removes the token ends it.
	require.Equal(t, 1, f.reload(entryAdmin))
	_, err = s.Recv()
	requireReason(t, err, codes.Unauthenticated, goethev1.ReasonUnauthenticated)

	ti, err := api.GetTopic(withAuth(ctx, bearer(tokAdmin)), &goethev1.GetTopicRequest{Topic: "orders.us"})
	require.NoError(t, err)
	require.EqualValues(t, 1, ti.GetTopic().GetLastSeq(), "the refused request stored nothing")
}
