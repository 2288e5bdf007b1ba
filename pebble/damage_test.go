package pebble_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine/enginetest"
)

func journal(t *testing.T, dir string) string { return enginetest.NewestFile(t, dir, "", ".log") }

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
		{Name: "TableBlockDamaged", Prepare: enginetest.Reopen, Apply: func(t *testing.T, dir string) {
			tbl := enginetest.NewestFile(t, dir, "", ".sst")
			enginetest.FlipBytes(t, tbl, enginetest.SizeOf(t, tbl)/3, 4)
		}},
		{Name: "ManifestFirstRecordDamaged", Prepare: enginetest.Reopen, Apply: func(t *testing.T, dir string) {
			// A hole: intact edits follow the damaged snapshot, and pebble
			// would open with none of them.
			enginetest.FlipBytes(t, enginetest.NewestFile(t, dir, "MANIFEST-", ""), 10, 4)
		}},
		{Name: "Manifest32BytesDamaged", Prepare: enginetest.Reopen, Apply: func(t *testing.T, dir string) {
			m := enginetest.NewestFile(t, dir, "MANIFEST-", "")
			enginetest.FlipBytes(t, m, enginetest.SizeOf(t, m)/2, 32)
		}},
	})
}
