package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// TestRetentionBinary runs the real server with --retention-max-events and
// checks, per engine, that the default trims a topic in the background,
// that a topic's own config wins and survives a restart without the flag,
// that a follower of a deleted topic ends with TOPIC_DELETED, and that the
// folder checks clean after all of it.
func TestRetentionBinary(t *testing.T) {
	for _, engine := range []string{"leveldb", "pebble", "bolt"} {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			srv := startServer(t, engine, dir, "--retention-max-events", "5")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := client.Dial(srv.addr)
			require.NoError(t, err)
			produce := func(topic string, n int) {
				for i := range n {
					_, err := c.Produce(ctx, topic, []client.EventData{{Payload: fmt.Appendf(nil, "%d", i)}})
					require.NoError(t, err)
				}
			}
			count := func(topic string) func() bool {
				return func() bool { ti, err := c.Topic(ctx, topic); return err == nil && ti.Count == 5 }
			}

			produce("by-default", 20)
			require.Eventually(t, count("by-default"), 20*time.Second, pollEvery)
			ti, err := c.Topic(ctx, "by-default")
			require.NoError(t, err)
			require.Equal(t, uint64(16), ti.FirstSeq)
			require.Equal(t, uint64(5), *ti.Effective.MaxEvents)
			require.Nil(t, ti.Config.MaxEvents)

			// Its own config: 5 as well, kept across a restart without the flag.
			n := uint64(5)
			_, err = c.SetTopicConfig(ctx, "own", client.TopicConfig{MaxEvents: &n})
			require.NoError(t, err)
			produce("own", 8)
			require.Eventually(t, count("own"), 20*time.Second, pollEvery)
			require.NoError(t, c.Close())
			srv.stop()

			srv = startServer(t, engine, dir)
			c, err = client.Dial(srv.addr)
			require.NoError(t, err)
			defer c.Close()
			produce("own", 4)
			require.Eventually(t, func() bool {
				ti, err := c.Topic(ctx, "own")
				return err == nil && ti.Count == 5 && ti.LastSeq == 12
			}, 20*time.Second, pollEvery)
			ti, err = c.Topic(ctx, "by-default")
			require.NoError(t, err)
			require.Equal(t, uint64(0), *ti.Effective.MaxEvents, "no default without the flag")

			sub, err := c.Subscribe(ctx, "own", client.ConsumeOptions{Follow: true})
			require.NoError(t, err)
			defer sub.Close()
			ev, err := sub.Next()
			require.NoError(t, err)
			require.Equal(t, uint64(8), ev.Seq)
			require.Equal(t, uint64(7), ev.Skipped)
			require.NoError(t, c.DeleteTopic(ctx, "own"))
			for err == nil {
				_, err = sub.Next()
			}
			require.True(t, client.IsReason(err, goethev1.ReasonTopicDeleted), "%v", err)
			srv.stop()
			t.Logf("goethe check: %s", requireCheckClean(t, dir))
		})
	}
}
