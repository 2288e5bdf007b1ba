package bench

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// Parameters of BenchmarkRetention.
const (
	retentionPayload   = 1024
	retentionBatch     = 16
	retentionAppenders = 4
	// retentionMaxBytes is the topic's max bytes in the runs with
	// retention: small against what a run appends, so that trimming goes
	// on all through it.
	retentionMaxBytes = 16 << 20
	// retentionInterval is the store's retention interval in the runs
	// with retention: the limit is enforced this often while appends run.
	retentionInterval = 100 * time.Millisecond
)

// BenchmarkRetention appends to one topic from retentionAppenders
// goroutines (batches of retentionBatch events of retentionPayload bytes,
// unsynced, as a high-rate ingest would) with retention trimming it at the
// same time (max bytes retentionMaxBytes) and, for comparison, with none.
// It reports the append rate (events/s, and MB/s through b.SetBytes), the
// longest engine write of a group commit (max-commit-ms: what an append
// queued behind a trim step waits for at most, besides its own commit),
// and at the end the topic's stored bytes (retained-MiB) and the data
// folder's size on disk (disk-MiB: what the engine's files take, tombstones
// and compaction lag included), which grows with the run without retention
// and stays bounded with it.
func BenchmarkRetention(b *testing.B) {
	for _, name := range engines.Names {
		for _, ret := range []struct {
			name string
			cfg  store.TopicConfig
		}{
			{"none", store.TopicConfig{}},
			{fmt.Sprintf("max-bytes=%dMiB", retentionMaxBytes>>20), store.TopicConfig{MaxBytes: retentionMaxBytes}},
		} {
			b.Run(fmt.Sprintf("engine=%s/sync=false/size=%s/retention=%s", name, sizeName(retentionPayload), ret.name), func(b *testing.B) {
				benchRetention(b, name, ret.cfg)
			})
		}
	}
}

func benchRetention(b *testing.B, name string, retention store.TopicConfig) {
	dir := b.TempDir()
	e, err := engines.Open(name, dir)
	if err != nil {
		b.Fatal(err)
	}
	opts := store.DefaultOptions()
	opts.UnsafeNoSync = true // explicit: unsynced, as set in the name
	opts.Retention = retention
	opts.RetentionInterval = retentionInterval
	var longest maxCommit
	opts.Observer = &longest
	s, err := store.Open(e, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	payload := payloadOf(retentionPayload)
	evs := make([]store.Event, retentionBatch)
	for i := range evs {
		evs[i].Payload = payload
	}
	ctx := context.Background()
	b.SetBytes(retentionBatch * retentionPayload)
	runAppenders(b, retentionAppenders, func(int) error {
		_, err := s.Append(ctx, "r", evs, store.ExpectAny)
		return err
	})
	reportEvents(b, b.N*retentionBatch)
	ti, err := s.Info("r")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ti.Bytes)/(1<<20), "retained-MiB")
	b.ReportMetric(float64(dirSize(b, dir))/(1<<20), "disk-MiB")
	b.ReportMetric(float64(longest.ns.Load())/1e6, "max-commit-ms")
}

// maxCommit is a store.CommitObserver that keeps the longest engine write.
type maxCommit struct{ ns atomic.Int64 }

func (m *maxCommit) ObserveCommit(_, _, _ int, write time.Duration, _ error) {
	for {
		cur := m.ns.Load()
		if int64(write) <= cur || m.ns.CompareAndSwap(cur, int64(write)) {
			return
		}
	}
}

// dirSize is the size of the files under dir.
func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile (a compaction)
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
