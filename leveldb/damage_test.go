package leveldb_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/enginetest"
	"github.com/goethe-log/goethe/leveldb"
)

func journal(t *testing.T, dir string) string { return enginetest.NewestFile(t, dir, "", ".log") }

func TestDamage(t *testing.T) {
	enginetest.RunDamage(t, open, []enginetest.Damage{
		{Name: "TornLastRecord", Torn: true, Apply: func(t *testing.T, dir string) {
			enginetest.TruncateBy(t, journal(t, dir), 20)
		}},
		{Name: "TornHeader", Torn: true, Apply: func(t *testing.T, dir string) {
			// The last record goes, and of its header only 3 bytes stay.
			j := journal(t, dir)
			data, err := os.ReadFile(j)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(j, append(data, 0x12, 0x34, 0x56), 0o600))
		}},
		{Name: "TornGarbageAppended", Torn: true, Apply: func(t *testing.T, dir string) {
			enginetest.AppendBytes(t, journal(t, dir), enginetest.Garbage(3000))
		}},
		{Name: "TornZeroesAppended", Torn: true, Apply: func(t *testing.T, dir string) {
			enginetest.AppendBytes(t, journal(t, dir), make([]byte, 40<<10))
		}},
		{Name: "JournalByteFlippedInTheMiddle", Apply: func(t *testing.T, dir string) {
			j := journal(t, dir)
			enginetest.FlipBytes(t, j, enginetest.SizeOf(t, j)/2, 1)
		}},
		{Name: "JournalByteFlippedInTheFirstBlock", Apply: func(t *testing.T, dir string) {
			enginetest.FlipBytes(t, journal(t, dir), 1000, 1)
		}},
		{Name: "JournalTruncatedInTheMiddleOfALaterBlock", Apply: func(t *testing.T, dir string) {
			// 200 bytes zeroed in the middle: records follow them.
			j := journal(t, dir)
			data, err := os.ReadFile(j)
			require.NoError(t, err)
			clear(data[len(data)/2 : len(data)/2+200])
			require.NoError(t, os.WriteFile(j, data, 0o600))
		}},
		{Name: "TableBlockDamaged", Prepare: enginetest.Reopen, Apply: func(t *testing.T, dir string) {
			tbl := enginetest.NewestFile(t, dir, "", ".ldb")
			enginetest.FlipBytes(t, tbl, enginetest.SizeOf(t, tbl)/3, 4)
		}},
		{Name: "ManifestDamaged", Prepare: enginetest.Reopen, Apply: func(t *testing.T, dir string) {
			enginetest.FlipBytes(t, enginetest.NewestFile(t, dir, "MANIFEST-", ""), 20, 4)
		}},
	})
}

// TestDamageLargeRecords covers records that span several 32 KiB journal
// blocks (first, middle and last chunks): the last one cut short is a torn
// tail, a damaged middle chunk of an earlier one is not.
func TestDamageLargeRecords(t *testing.T) {
	const n, size = 5, 100 << 10
	value := func(i int) []byte {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(i + j*7)
		}
		return v
	}
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		db, err := leveldb.Open(dir, leveldb.Options{})
		require.NoError(t, err)
		for i := range n {
			var b engine.Batch
			b.Put([]byte{byte('a' + i)}, value(i))
			require.NoError(t, db.Write(&b, true))
		}
		require.NoError(t, db.Close())
		return dir
	}

	t.Run("LastRecordCut", func(t *testing.T) {
		dir := setup(t)
		enginetest.TruncateBy(t, journal(t, dir), 40<<10) // into its middle chunks
		db, err := leveldb.Open(dir, leveldb.Options{})
		require.NoError(t, err)
		defer db.Close()
		kvs, err := db.Scan(nil, nil, 100, 0)
		require.NoError(t, err)
		require.Len(t, kvs, n-1)
		for i, kv := range kvs {
			require.Equal(t, value(i), kv.Value)
		}
	})
	t.Run("EarlierRecordDamaged", func(t *testing.T) {
		dir := setup(t)
		enginetest.FlipBytes(t, journal(t, dir), 2*size+size/2, 1) // inside the third record
		_, err := leveldb.Open(dir, leveldb.Options{})
		require.ErrorIs(t, err, engine.ErrCorrupted)
	})
}
