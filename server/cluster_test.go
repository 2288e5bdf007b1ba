package server_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// A single node ignores GetTopic's linearizable (its reads are
// linearizable anyway) and refuses membership changes with
// FAILED_PRECONDITION, NOT_CLUSTERED.
func TestSingleNodeClusterCalls(t *testing.T) {
	ts := startServer(t, "leveldb", server.Options{})
	ctx := context.Background()
	r, err := ts.c.Produce(ctx, "t", []client.EventData{{Payload: []byte("x")}})
	require.NoError(t, err)
	ti, err := ts.c.Topic(ctx, "t", client.Linearizable())
	require.NoError(t, err)
	require.Equal(t, r.FirstSeq, ti.LastSeq)

	_, err = ts.c.AddClusterMember(ctx, client.ClusterMember{ID: "n4", RaftAddress: "127.0.0.1:7524", ClientAddress: "127.0.0.1:7424"})
	requireReason(t, err, codes.FailedPrecondition, goethev1.ReasonNotClustered)
	_, err = ts.c.RemoveClusterMember(ctx, "n3")
	requireReason(t, err, codes.FailedPrecondition, goethev1.ReasonNotClustered)
}
