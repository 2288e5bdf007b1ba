package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/store"
)

// TestLifecycleReplicates: topic config, trims, retention (proposed by the
// leader) and deletes, called on the leader and on a follower (forwarded),
// are applied identically on the three members: their engines converge to
// the same records, and each serves the same topics.
func TestLifecycleReplicates(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := newServed(t, name)
		leader := s.waitLeader(10 * time.Second)
		follower := (leader + 1) % 3
		ld, fl := s.logs[leader], s.logs[follower]
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		for i := range 30 {
			_, err := ld.Append(ctx, "keep", evs(fmt.Sprint(i)), store.ExpectAny)
			require.NoError(t, err)
			_, err = ld.Append(ctx, "gone", evs(fmt.Sprint(i)), store.ExpectAny)
			require.NoError(t, err)
		}
		third := readTopic(t, s.nodes[leader].st, "keep")[2]
		require.NoError(t, fl.SetCursor(ctx, "keep", "c", third.ID))

		// Config through the follower; retention by the leader.
		ti, err := fl.SetTopicConfig(ctx, "keep", store.TopicConfig{MaxEvents: 20, Set: store.FieldMaxEvents}, 0)
		require.NoError(t, err)
		require.Equal(t, uint64(20), ti.Config.MaxEvents)
		require.Eventually(t, func() bool { return mustInfo(t, ld, "keep").Count == 20 }, 20*time.Second, 10*time.Millisecond)

		// A trim through the follower, another on the leader.
		n, err := fl.Trim(ctx, "keep", store.TrimPoint{Seq: 15})
		require.NoError(t, err)
		require.Equal(t, uint64(4), n)
		n, err = ld.Trim(ctx, "keep", store.TrimPoint{ID: mustInfo(t, ld, "keep").FirstID + 1})
		require.NoError(t, err)
		require.Equal(t, uint64(1), n)

		// A delete through the follower, and the name taken again.
		old := mustInfo(t, ld, "gone")
		require.NoError(t, fl.DeleteTopic(ctx, "gone"))
		// A forwarded call's error is the leader's status.
		require.Equal(t, codes.NotFound, status.Code(fl.DeleteTopic(ctx, "gone")))
		require.ErrorIs(t, ld.DeleteTopic(ctx, "gone"), store.ErrNotFound)
		res, err := ld.Append(ctx, "gone", evs("again"), store.ExpectLastSeq(0))
		require.NoError(t, err)
		require.Equal(t, uint64(1), res.FirstSeq)

		s.waitConverged(res.Index)
		for i := range s.nodes {
			st := s.nodes[i].st
			keep, err := st.Info("keep")
			require.NoError(t, err)
			require.Equal(t, uint64(16), keep.FirstSeq, "node %d", i)
			require.Equal(t, uint64(15), keep.Count)
			gone, err := st.Info("gone")
			require.NoError(t, err)
			require.NotEqual(t, old.ID, gone.ID)
			require.Equal(t, []string{"again"}, payloadsOf(readTopic(t, st, "gone")))
			cur, err := st.GetCursor("keep", "c")
			require.NoError(t, err)
			require.Equal(t, uint64(3), cur.Seq, "the cursor's seq travels in the entry")
		}
	})
}

func mustInfo(t *testing.T, l interface {
	Info(string) (store.TopicInfo, error)
}, topic string) store.TopicInfo {
	t.Helper()
	ti, err := l.Info(topic)
	require.NoError(t, err)
	return ti
}

func payloadsOf(events []store.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = string(e.Payload)
	}
	return out
}
