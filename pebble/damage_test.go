package pebble_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine/enginetest"
)

// newestFile returns the path of the file in dir with the highest number
// among those named <number><suffix> (or prefix<number> when prefix is set).
func newestFile(t *testing.T, dir, prefix, suffix string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	best, bestNum := "", int64(-1)
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, prefix), suffix), 10, 64)
		if err == nil && n > bestNum {
			best, bestNum = name, n
		}
	}
	require.NotEmpty(t, best, "no %s*%s file in %s", prefix, suffix, dir)
	return filepath.Join(dir, best)
}

func journal(t *testing.T, dir string) string { return newestFile(t, dir, "", ".log") }

// reopen moves the WAL into a table: pebble flushes the memtable it
// replays at open.
func reopen(t *testing.T, dir string, open enginetest.OpenFunc) {
	e, err := open(t, dir)
	require.NoError(t, err)
	require.NoError(t, e.Close())
}

func TestDamage(t *testing.T) {
	enginetest.RunDamage(t, open, []enginetest.Damage{
		{Name: "TornLastRecord", Torn: true, Apply: func(t *testing.T, dir string) {
			enginetest.TruncateBy(t, journal(t, dir), 20)
		}},
		{Name: "TornGarbageAppended", Torn: true, Apply: func(t *testing.T, dir string) {
			enginetest.AppendBytes(t, journal(t, dir), enginetest.Garbage(3000))
		}},
		{Name: "TornZeroesAppended", Torn: true, Apply: func(t *testing.T, dir string) {
			enginetest.AppendBytes(t, journal(t, dir), make([]byte, 40<<10))
		}},
		{Name: "WALByteFlippedInTheMiddle", Apply: func(t *testing.T, dir string) {
			j := journal(t, dir)
			enginetest.FlipBytes(t, j, enginetest.SizeOf(t, j)/2, 1)
		}},
		{Name: "WALByteFlippedInTheFirstBlock", Apply: func(t *testing.T, dir string) {
			enginetest.FlipBytes(t, journal(t, dir), 1000, 1)
		}},
		{Name: "WALZeroedInTheMiddle", Apply: func(t *testing.T, dir string) {
			j := journal(t, dir)
			data, err := os.ReadFile(j)
			require.NoError(t, err)
			clear(data[len(data)/2 : len(data)/2+200])
			require.NoError(t, os.WriteFile(j, data, 0o600))
		}},
		{Name: "TableBlockDamaged", Prepare: reopen, Apply: func(t *testing.T, dir string) {
			tbl := newestFile(t, dir, "", ".sst")
			enginetest.FlipBytes(t, tbl, enginetest.SizeOf(t, tbl)/3, 4)
		}},
		{Name: "ManifestFirstRecordDamaged", Prepare: reopen, Apply: func(t *testing.T, dir string) {
			// A hole: intact edits follow the damaged snapshot, and pebble
			// would open with none of them.
			enginetest.FlipBytes(t, newestFile(t, dir, "MANIFEST-", ""), 10, 4)
		}},
		{Name: "Manifest32BytesDamaged", Prepare: reopen, Apply: func(t *testing.T, dir string) {
			m := newestFile(t, dir, "MANIFEST-", "")
			enginetest.FlipBytes(t, m, enginetest.SizeOf(t, m)/2, 32)
		}},
	})
}
