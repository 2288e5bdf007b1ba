package loadgen_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/loadgen"
)

// Both Goethe openers produce every event once: over a ProduceStream per
// producer slot (GoetheOpener) and with unary calls (GoetheUnaryOpener).
func TestGoetheOpeners(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		open func(addr string) loadgen.Opener
	}{
		{"stream", func(addr string) loadgen.Opener { return loadgen.GoetheOpener(addr) }},
		{"unary", func(addr string) loadgen.Opener { return loadgen.GoetheUnaryOpener(addr) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr := startServer(t)
			cfg := loadgen.DefaultConfig()
			cfg.Producers, cfg.Inflight, cfg.Batch, cfg.Size = 8, 2, 1, 100
			cfg.Events = 4000
			res, err := loadgen.Run(ctxT(t), c.open(addr), cfg, nil)
			require.NoError(t, err)
			require.EqualValues(t, 4000, res.Produce.Events)
			require.EqualValues(t, 4000, res.Produce.Calls)
			require.Zero(t, res.Produce.Errors)
			require.EqualValues(t, 4000, topicCount(t, addr, cfg.Topic(0)))
		})
	}
}
