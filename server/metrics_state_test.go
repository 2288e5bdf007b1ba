package server_test

import (
	"context"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/faultengine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// gathered is the value of the one series of family name in m.
func gathered(t *testing.T, m *server.Metrics, name string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		require.Len(t, f.GetMetric(), 1, name)
		mm := f.GetMetric()[0]
		if c := mm.GetCounter(); c != nil {
			return c.GetValue()
		}
		return mm.GetGauge().GetValue()
	}
	require.Failf(t, "no such metric", "%s", name)
	return 0
}

// goethe_store_writes_up follows the write path: 0 while a full disk holds
// writes back, 1 again once they resume.
func TestMetricsWritesUp(t *testing.T) {
	m := server.NewMetrics(server.MetricsOptions{Engine: "leveldb"})
	ts := startFaultServer(t, "leveldb", server.Options{Metrics: m})
	ts.produce("t", "a")
	require.Equal(t, 1.0, gathered(t, m, "goethe_store_writes_up"))

	ts.fault.FailWritesWith(faultengine.BeforeApply, fmt.Errorf("%w: %w", engine.ErrNoSpace,
		&fs.PathError{Op: "write", Path: "000001.log", Err: syscall.ENOSPC}))
	_, err := ts.raw.Produce(ctxT(t), &goethev1.ProduceRequest{Topic: "t", Events: []*goethev1.EventData{{Payload: []byte("b")}}})
	requireReason(t, err, codes.ResourceExhausted, goethev1.ReasonDiskFull)
	require.Eventually(t, func() bool { return gathered(t, m, "goethe_store_writes_up") == 0 }, 10*time.Second, time.Millisecond)

	ts.fault.Disarm()
	require.Eventually(t, func() bool {
		_, err := ts.raw.Produce(ctxT(t), &goethev1.ProduceRequest{Topic: "t", Events: []*goethev1.EventData{{Payload: []byte("c")}}})
		return err == nil
	}, 30*time.Second, 10*time.Millisecond, "writes resume once the disk has room")
	require.Eventually(t, func() bool { return gathered(t, m, "goethe_store_writes_up") == 1 }, 10*time.Second, time.Millisecond)
}

// goethe_store_damaged_reads_total counts the reads answered DATA_LOSS.
func TestMetricsDamagedReads(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng string) {
		m := server.NewMetrics(server.MetricsOptions{Engine: eng})
		ts := startServer(t, eng, server.Options{Metrics: m})
		ts.produce("t", "first", "second", "third")
		ts.stop()
		e, err := engines.Open(eng, ts.dir)
		require.NoError(t, err)
		testutil.FlipEventByte(t, e, 3, 1)
		require.NoError(t, e.Close())
		ts.start()
		require.Zero(t, gathered(t, m, "goethe_store_damaged_reads_total"))

		for range 2 {
			stream, err := ts.raw.Consume(context.Background(), &goethev1.ConsumeRequest{Topic: "t"})
			require.NoError(t, err)
			for err == nil {
				_, err = stream.Recv()
			}
			requireReason(t, err, codes.DataLoss, goethev1.ReasonDataLoss)
		}
		require.Equal(t, 2.0, gathered(t, m, "goethe_store_damaged_reads_total"))
	})
}
