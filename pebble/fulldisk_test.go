package pebble_test

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/enginetest"
	"github.com/goethe-log/goethe/pebble"
)

// freeAndWAL returns the free bytes of dir's volume and the size of the WAL
// files in dir, the two figures Open compares with OpenMinFreeBytes.
func freeAndWAL(t *testing.T, dir string) (free, wal uint64) {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			info, err := e.Info()
			require.NoError(t, err)
			wal += uint64(info.Size())
		}
	}
	return uint64(st.Bavail) * uint64(st.Bsize), wal
}

func writeOne(db *pebble.DB, key string) error {
	var b engine.Batch
	b.Put([]byte(key), []byte("v"))
	return db.Write(&b, true)
}

// TestOpenMinFreeBytes checks the boundary of Options.OpenMinFreeBytes:
// with exactly the free space a read-write open needs, Open opens
// read-write; with one byte less it opens read-only, serving reads and
// failing writes with engine.ErrNoSpace.
func TestOpenMinFreeBytes(t *testing.T) {
	dir := enginetest.SmallTmpfs(t, 32<<20)
	db, err := pebble.Open(dir, pebble.Options{})
	require.NoError(t, err)
	require.NoError(t, writeOne(db, "k"))
	require.NoError(t, db.Close())

	free, wal := freeAndWAL(t, dir)
	db, err = pebble.Open(dir, pebble.Options{OpenMinFreeBytes: free - wal})
	require.NoError(t, err)
	require.NoError(t, writeOne(db, "at-the-boundary"), "free space == need opens read-write")
	require.NoError(t, db.Close())

	free, wal = freeAndWAL(t, dir)
	db, err = pebble.Open(dir, pebble.Options{OpenMinFreeBytes: free - wal + 1})
	require.NoError(t, err, "one byte short still opens, read-only")
	defer db.Close()
	v, err := db.Get([]byte("at-the-boundary"))
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
	err = writeOne(db, "past-the-boundary")
	require.ErrorIs(t, err, engine.ErrNoSpace)
	require.ErrorIs(t, err, syscall.ENOSPC)
}

// TestFlushFailsOnFullVolume fills the volume under unsynced writes to a
// small memtable, so that memtable flushes (background work pebble retries
// forever) fail for lack of space as well as WAL writes: a Write fails with
// engine.ErrNoSpace, the process lives, reads work, and after a reopen
// with space freed every synced entry is there.
func TestFlushFailsOnFullVolume(t *testing.T) {
	dir := enginetest.SmallTmpfs(t, 8<<20)
	open := func() *pebble.DB {
		db, err := pebble.Open(dir, pebble.Options{MemTableSize: 256 << 10})
		require.NoError(t, err)
		return db
	}
	db := open()
	for i := range 20 {
		require.NoError(t, writeOne(db, fmt.Sprintf("synced%02d", i)))
	}
	release := enginetest.FillDisk(t, dir)
	var b engine.Batch
	value := enginetest.Garbage(4 << 10)
	var err error
	for i := 0; i < 100_000 && err == nil; i++ {
		b.Reset()
		b.Put(fmt.Appendf(nil, "unsynced%06d", i), value)
		err = db.Write(&b, false)
	}
	require.ErrorIs(t, err, engine.ErrNoSpace)
	v, err := db.Get([]byte("synced19"))
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
	require.NoError(t, db.Close())

	release()
	db = open()
	defer db.Close()
	for i := range 20 {
		v, err := db.Get(fmt.Appendf(nil, "synced%02d", i))
		require.NoError(t, err)
		require.Equal(t, "v", string(v))
	}
	require.NoError(t, writeOne(db, "after"))
}
