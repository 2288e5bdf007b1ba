package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// TestUnknownMethodNeedsAdminAll: a method the rules do not name (one added
// to the service later) is refused to every token
// but one with admin over "*", so that a new RPC is closed until it gets a
// rule.
func TestUnknownMethodNeedsAdminAll(t *testing.T) {
	toks, err := NewTokens([]TokenEntry{
		{Name: "all", SHA256: HashToken("all"), Admin: []string{"*"}},
		{Name: "prefix", SHA256: HashToken("prefix"), Admin: []string{"a*"}, Read: []string{"*"}, Write: []string{"*"}},
	})
	require.NoError(t, err)
	const future = "/" + ServiceName + "/PurgeEverything"
	all := toks.byHash[sha256.Sum256([]byte("all"))]
	prefix := toks.byHash[sha256.Sum256([]byte("prefix"))]
	require.NoError(t, all.check(future, &goethev1.GetTopicRequest{Topic: "a"}))
	require.ErrorIs(t, prefix.check(future, &goethev1.GetTopicRequest{Topic: "a"}), errPermissionDenied)
	for m := range methodRules {
		require.True(t, guarded(m), m)
	}
	require.False(t, guarded("/grpc.health.v1.Health/Check"))
	require.False(t, guarded("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"))
	// A request of an unexpected type is refused, not waved through.
	err = prefix.check(goethev1.Goethe_ProduceStream_FullMethodName, &goethev1.GetTopicRequest{Topic: "a"})
	require.True(t, errors.Is(err, errPermissionDenied), "%v", err)
}

// BenchmarkAuthorize is the guard's cost per call: the digest of the
// token, the map lookup and the pattern match, over n tokens with a few
// patterns each.
func BenchmarkAuthorize(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			entries := make([]TokenEntry, n)
			for i := range entries {
				entries[i] = TokenEntry{Name: fmt.Sprint("t", i), SHA256: HashToken(fmt.Sprint("token-", i)),
					Read: []string{"orders", "audit.*", fmt.Sprint("team-", i, ".*")}, Write: []string{fmt.Sprint("team-", i, ".*")}}
			}
			toks, err := NewTokens(entries)
			require.NoError(b, err)
			a := NewAuth(toks)
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer token-0"))
			req := &goethev1.ProduceRequest{Topic: "team-0.payments"}
			b.ReportAllocs()
			for b.Loop() {
				g, _, err := a.authenticate(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := g.check(goethev1.Goethe_Produce_FullMethodName, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
