package pebble

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
)

// walFiles returns the WAL files in dir and their sizes.
func walFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			info, err := e.Info()
			require.NoError(t, err)
			out[e.Name()] = info.Size()
		}
	}
	return out
}

// allocatedBytes is the space allocated to the file at path.
func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(path, &st))
	return st.Blocks * 512
}

// TestWALRecordBound: batches of sizes around pebble's 32 KiB WAL blocks,
// committed without sync, take no more WAL than the reservation counted,
// trailer included, and every byte the WAL holds was allocated before it
// was written.
func TestWALRecordBound(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{MemTableSize: 256 << 20})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 100, 32<<10 - 40, 32 << 10, 32<<10 + 1, 100 << 10, 1 << 20}
	for i := range 400 {
		n := sizes[i%len(sizes)]
		if i%3 == 0 {
			n = rng.IntN(70 << 10)
		}
		var b engine.Batch
		b.Put(fmt.Appendf(nil, "k%06d", i), make([]byte, n))
		require.NoError(t, db.Write(&b, i%50 == 0))
	}
	r := db.wal
	require.NotNil(t, r)
	require.False(t, r.unsupported, "this file system cannot allocate ahead")
	// pebble starts with small memtables and doubles them, so the WAL
	// rotated a few times: the bound is checked on the last one.
	path, gen := r.current()
	require.Equal(t, gen, r.seen, "the last write did not rotate")
	queued, reserved := r.queued, r.reserved
	require.GreaterOrEqual(t, allocatedBytes(t, path), reserved-4096, "the reservation is allocated")
	require.NoError(t, db.Close())
	wals := walFiles(t, dir)
	size, ok := wals[filepath.Base(path)]
	require.True(t, ok, "WAL %s after Close: %v", path, wals)
	require.LessOrEqual(t, size, queued+walTrailerRoom, "the WAL outgrew the bound the reservation counts")
	require.LessOrEqual(t, queued+walTrailerRoom, reserved)
	t.Logf("WAL %d of %d: %d bytes, counted %d, reserved %d", gen, gen, size, queued, reserved)
}

// TestWALReserveFollowsRotation: with small memtables pebble rotates its
// WAL often; each new WAL is found and reserved for, and a rotating
// commit's record is counted in the new WAL.
func TestWALReserveFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{MemTableSize: 64 << 10})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	value := make([]byte, 4<<10)
	for i := range 200 {
		var b engine.Batch
		b.Put(fmt.Appendf(nil, "k%06d", i), value)
		require.NoError(t, db.Write(&b, false))
		r := db.wal
		path, gen := r.current()
		if gen == r.seen {
			require.Equal(t, path, r.path)
			require.LessOrEqual(t, r.queued+walTrailerRoom, r.reserved, "write %d", i)
			require.GreaterOrEqual(t, allocatedBytes(t, path), r.reserved-4096, "write %d", i)
		} else {
			require.Positive(t, r.carry, "write %d rotated: its record is carried to the new WAL", i)
		}
	}
	require.Greater(t, db.wal.seen, uint64(5), "the WAL rotated")
}
