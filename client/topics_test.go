package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

func ptr[T any](v T) *T { return &v }

// TestTopicLifecycle: SetTopicConfig, TrimTopic and DeleteTopic against a
// real server, and the new fields of Topic.
func TestTopicLifecycle(t *testing.T) {
	c := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	info, err := c.SetTopicConfig(ctx, "life", client.TopicConfig{MaxEvents: ptr(uint64(100)), MaxAge: ptr(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, "life", info.Name)
	require.Equal(t, uint64(100), *info.Config.MaxEvents)
	require.Equal(t, time.Hour, *info.Config.MaxAge)
	require.Nil(t, info.Config.MaxBytes)
	require.Equal(t, uint64(0), *info.Effective.MaxBytes, "the effective config has every field")

	info, err = c.SetTopicConfig(ctx, "life", client.TopicConfig{MaxBytes: ptr(uint64(1 << 20))}, client.FieldMaxAge)
	require.NoError(t, err)
	require.Nil(t, info.Config.MaxAge)
	require.Equal(t, uint64(1<<20), *info.Config.MaxBytes)
	_, err = c.SetTopicConfig(ctx, "life", client.TopicConfig{MaxAge: ptr(-time.Second)})
	require.ErrorIs(t, err, client.ErrInvalidArgument)

	var ids []uint64
	for range 10 {
		res, err := c.Produce(ctx, "life", []client.EventData{{Payload: []byte("x")}})
		require.NoError(t, err)
		ids = append(ids, res.FirstID)
	}
	info, err = c.Topic(ctx, "life")
	require.NoError(t, err)
	require.NotZero(t, info.Bytes)
	full := info.Bytes

	removed, info, err := c.TrimTopic(ctx, "life", client.BeforeSeq(3))
	require.NoError(t, err)
	require.Equal(t, uint64(2), removed)
	require.Equal(t, uint64(3), info.FirstSeq)
	require.Less(t, info.Bytes, full)
	removed, _, err = c.TrimTopic(ctx, "life", client.BeforeID(ids[4]))
	require.NoError(t, err)
	require.Equal(t, uint64(2), removed)
	removed, info, err = c.TrimTopic(ctx, "life", client.BeforeTime(time.Unix(0, int64(ids[6]))))
	require.NoError(t, err)
	require.Equal(t, uint64(2), removed)
	require.Equal(t, uint64(7), info.FirstSeq)
	require.Equal(t, ids[6], info.FirstID)
	_, _, err = c.TrimTopic(ctx, "life", nil)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, _, err = c.TrimTopic(ctx, "missing", client.BeforeSeq(1))
	require.ErrorIs(t, err, client.ErrNotFound)

	// A follower from the beginning is told of the 6 events removed; one
	// of a deleted topic ends with TOPIC_DELETED.
	sub, err := c.Subscribe(ctx, "life", client.ConsumeOptions{Follow: true})
	require.NoError(t, err)
	defer sub.Close()
	ev, err := sub.Next()
	require.NoError(t, err)
	require.Equal(t, uint64(7), ev.Seq)
	require.Equal(t, uint64(6), ev.Skipped)
	require.Equal(t, uint64(6), sub.Skipped())
	byID, err := c.Subscribe(ctx, "life", client.ConsumeOptions{From: client.AtID(ids[0])})
	require.NoError(t, err)
	ev, err = byID.Next()
	require.NoError(t, err)
	require.Equal(t, uint64(7), ev.Seq)
	require.Zero(t, ev.Skipped, "a start by id does not know what it missed")
	byID.Close()
	for range 3 {
		ev, err = sub.Next()
		require.NoError(t, err)
		require.Zero(t, ev.Skipped)
	}
	require.NoError(t, c.DeleteTopic(ctx, "life"))
	_, err = sub.Next()
	require.ErrorIs(t, err, client.ErrNotFound)
	require.True(t, client.IsReason(err, goethev1.ReasonTopicDeleted), "%v", err)
	err = c.DeleteTopic(ctx, "life")
	require.ErrorIs(t, err, client.ErrNotFound)
	require.True(t, client.IsReason(err, goethev1.ReasonTopicNotFound))

	res, err := c.Produce(ctx, "life", []client.EventData{{Payload: []byte("again")}})
	require.NoError(t, err)
	require.Equal(t, uint64(1), res.FirstSeq, "the name is free for a new topic")
}
