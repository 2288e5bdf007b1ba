package loadgen_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/loadgen"
)

// sequentialPipeline makes any Target a PipelineTarget whose
// ProducePipelined sends each payload as its own Produce call, one after
// another, and counts the calls and requests: enough to check what Run
// does with Config.Pipelined against a real server, whatever the Goethe
// target itself implements.
type sequentialPipeline struct {
	loadgen.Target
	calls, requests *atomic.Int64
}

func (p sequentialPipeline) ProducePipelined(ctx context.Context, topic string, payloads [][]byte) error {
	p.calls.Add(1)
	for _, pl := range payloads {
		p.requests.Add(1)
		if err := p.Target.Produce(ctx, topic, [][]byte{pl}); err != nil {
			return err
		}
	}
	return nil
}

// onlyTarget hides every method of a Target but the Target interface's.
type onlyTarget struct{ loadgen.Target }

func TestRunPipelined(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	var calls, requests atomic.Int64
	inner := loadgen.GoetheOpener(addr)
	open := func(ctx context.Context) (loadgen.Target, error) {
		tg, err := inner(ctx)
		if err != nil {
			return nil, err
		}
		return sequentialPipeline{Target: tg, calls: &calls, requests: &requests}, nil
	}
	cfg := loadgen.DefaultConfig()
	cfg.Pipelined = true
	cfg.Producers, cfg.Batch, cfg.Events, cfg.Consumers = 2, 50, 1000, 1
	cfg.Topics = 1

	res, err := loadgen.Run(ctxT(t), open, cfg, nil)
	require.NoError(t, err)
	require.EqualValues(t, 1000, res.Produce.Events)
	require.EqualValues(t, 20, res.Produce.Calls, "a call is one ProducePipelined of a batch")
	require.EqualValues(t, 20, res.Produce.CallLatency.Count)
	require.EqualValues(t, 20, calls.Load(), "every call went through ProducePipelined")
	require.EqualValues(t, 1000, requests.Load())
	require.EqualValues(t, 1000, res.Consume.Events)
	require.Zero(t, res.Consume.Missing)
	require.Contains(t, res.Summary(), "50 pipelined single-event requests of 100 B per call")
	require.EqualValues(t, 1000, topicCount(t, addr, "bench-0")-countProbes(t, addr, "bench-0"))
}

func TestRunPipelinedNeedsPipelineTarget(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	inner := loadgen.GoetheOpener(addr)
	open := func(ctx context.Context) (loadgen.Target, error) {
		tg, err := inner(ctx)
		if err != nil {
			return nil, err
		}
		return onlyTarget{tg}, nil
	}
	cfg := loadgen.DefaultConfig()
	cfg.Pipelined, cfg.Events, cfg.Batch = true, 100, 10
	res, err := loadgen.Run(ctxT(t), open, cfg, nil)
	require.ErrorIs(t, err, loadgen.ErrNotPipelined)
	require.Zero(t, res.Produce.Events)
	require.Zero(t, res.Produce.Calls)
	require.True(t, res.Started.IsZero(), "nothing was produced")
}
