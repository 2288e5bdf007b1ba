package loadgen_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/loadgen"
)

// Every Goethe client shape produces every event once, with calls of a
// batch and pipelined, and with consumers receiving every event.
func TestGoetheOpeners(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		open func(addr string) loadgen.Opener
	}{
		{"stream", func(addr string) loadgen.Opener { return loadgen.GoetheOpener(addr) }},
		{"unary", func(addr string) loadgen.Opener { return loadgen.GoetheUnaryOpener(addr) }},
		{"async", func(addr string) loadgen.Opener { return loadgen.GoetheOpenerWith(addr, loadgen.GoetheOptions{}) }},
		{"async/connections=3", func(addr string) loadgen.Opener {
			return loadgen.GoetheOpenerWith(addr, loadgen.GoetheOptions{Mode: loadgen.GoetheAsync, Connections: 3})
		}},
		{"stream/connections=2", func(addr string) loadgen.Opener {
			return loadgen.GoetheOpenerWith(addr, loadgen.GoetheOptions{Mode: loadgen.GoetheStream, Connections: 2})
		}},
		{"unary/connections=2", func(addr string) loadgen.Opener {
			return loadgen.GoetheOpenerWith(addr, loadgen.GoetheOptions{Mode: loadgen.GoetheUnary, Connections: 2})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr := startServer(t)
			cfg := loadgen.DefaultConfig()
			cfg.Producers, cfg.Inflight, cfg.Batch, cfg.Size = 8, 2, 1, 100
			cfg.Events, cfg.Consumers, cfg.Topics = 4000, 2, 2
			res, err := loadgen.Run(ctxT(t), c.open(addr), cfg, nil)
			require.NoError(t, err)
			require.EqualValues(t, 4000, res.Produce.Events)
			require.EqualValues(t, 4000, res.Produce.Calls)
			require.Zero(t, res.Produce.Errors)
			require.EqualValues(t, 4000, res.Consume.Events, "each consumer received its topic's events")

			cfg.Pipelined, cfg.Batch, cfg.Events, cfg.Consumers, cfg.TopicPrefix = true, 50, 2000, 0, "pipe"
			res, err = loadgen.Run(ctxT(t), c.open(addr), cfg, nil)
			require.NoError(t, err)
			require.EqualValues(t, 2000, res.Produce.Events)
			require.EqualValues(t, 2000, topicCount(t, addr, cfg.Topic(0))+topicCount(t, addr, cfg.Topic(1)))
		})
	}
}

// Targets that share a connection keep it until the last of them closes;
// a Target opened afterwards dials again.
func TestGoetheSharedConnections(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	open := loadgen.GoetheOpenerWith(addr, loadgen.GoetheOptions{Connections: 2})
	ctx := ctxT(t)
	var targets []loadgen.Target
	for range 4 {
		tg, err := open(ctx)
		require.NoError(t, err)
		targets = append(targets, tg)
	}
	payload := []byte("0123456789abcdef")
	for i, tg := range targets {
		require.NoError(t, tg.Produce(ctx, "t", [][]byte{payload}))
		if i < 2 {
			require.NoError(t, tg.Close())
			require.NoError(t, tg.Close(), "Close is idempotent")
		}
	}
	// Targets 2 and 3 use the two connections that 0 and 1 shared.
	for _, tg := range targets[2:] {
		require.NoError(t, tg.(loadgen.PipelineTarget).ProducePipelined(ctx, "t", [][]byte{payload, payload}))
		require.NoError(t, tg.Close())
	}
	tg, err := open(ctx)
	require.NoError(t, err)
	require.NoError(t, tg.Produce(ctx, "t", [][]byte{payload}))
	require.NoError(t, tg.Close())
	require.EqualValues(t, 4+4+1, topicCount(t, addr, "t"))

	// An unreachable server fails the Opener; so does an unknown mode.
	_, err = loadgen.GoetheOpenerWith("127.0.0.1:1", loadgen.GoetheOptions{})(ctx)
	require.Error(t, err)
	_, err = loadgen.GoetheOpenerWith(addr, loadgen.GoetheOptions{Mode: "carrier pigeon"})(ctx)
	require.ErrorContains(t, err, "unknown goethe mode")
}
