package server

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// TestUnknownMethodNeedsAdminAll: a method the rules do not name (one added
// to the service later, such as a topic delete) is refused to every token
// but one with admin over "*", so that a new RPC is closed until it gets a
// rule.
func TestUnknownMethodNeedsAdminAll(t *testing.T) {
	toks, err := NewTokens([]TokenEntry{
		{Name: "all", SHA256: HashToken("all"), Admin: []string{"*"}},
		{Name: "prefix", SHA256: HashToken("prefix"), Admin: []string{"a*"}, Read: []string{"*"}, Write: []string{"*"}},
	})
	require.NoError(t, err)
	const future = "/" + ServiceName + "/DeleteTopic"
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
