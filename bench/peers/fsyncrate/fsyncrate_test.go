package fsyncrate_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/bench/peers/fsyncrate"
)

func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{100, 4096} {
		res, err := fsyncrate.Measure(context.Background(), fsyncrate.Options{Dir: dir, RecordBytes: size, MaxWrites: 50})
		require.NoError(t, err)
		require.Equal(t, size, res.RecordBytes)
		require.EqualValues(t, 50, res.Writes)
		require.Positive(t, res.Seconds)
		require.InDelta(t, 50/res.Seconds, res.PerSec, 1e-9*res.PerSec)
		require.NotEmpty(t, res.Sync)
		require.Contains(t, res.String(), "appending")
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "probe files left behind")
}

func TestMeasureDuration(t *testing.T) {
	start := time.Now()
	res, err := fsyncrate.Measure(context.Background(), fsyncrate.Options{Dir: t.TempDir(), RecordBytes: 100, Duration: 100 * time.Millisecond})
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.Seconds, 0.1)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	require.Positive(t, res.Writes)
}

func TestMeasureInvalid(t *testing.T) {
	for _, o := range []fsyncrate.Options{
		{Dir: t.TempDir(), RecordBytes: 0, MaxWrites: 1},
		{Dir: t.TempDir(), RecordBytes: 100},
		{Dir: t.TempDir(), RecordBytes: 100, Duration: -time.Second, MaxWrites: 3},
	} {
		_, err := fsyncrate.Measure(context.Background(), o)
		require.ErrorIs(t, err, fsyncrate.ErrInvalid)
	}
}

func TestMeasureCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fsyncrate.Measure(ctx, fsyncrate.Options{Dir: t.TempDir(), RecordBytes: 100, Duration: time.Hour})
	require.ErrorIs(t, err, context.Canceled)
}
