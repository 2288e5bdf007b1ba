package bolt

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/enginetest"
)

func openEngine(t *testing.T, dir string) (engine.Engine, error) {
	db, err := Open(dir, Options{})
	if err != nil {
		return nil, err
	}
	return db, nil
}

// layout finds, from the current meta of the bbolt file at path, the page
// size, the goethe bucket's root page (a branch page once the bucket holds
// a few thousand entries) and its first child (a leaf).
func layout(t *testing.T, path string) (pageSize int64, branch, leaf uint64) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	m0, ok0 := readMeta(f, 0)
	require.True(t, ok0)
	m1, ok1 := readMeta(f, int64(m0.pageSize))
	m := m0
	if ok1 && m1.txid > m0.txid {
		m = m1
	}
	pageSize = int64(m.pageSize)
	page := func(id uint64) []byte {
		buf := make([]byte, pageSize)
		_, err := f.ReadAt(buf, int64(id)*pageSize)
		require.NoError(t, err)
		return buf
	}
	le := binary.LittleEndian
	root := page(m.root)
	require.Equal(t, uint16(leafPageFlag), le.Uint16(root[8:]), "the root bucket's page is a leaf")
	pos, ksize := int(le.Uint32(root[pageHeaderSize+4:])), int(le.Uint32(root[pageHeaderSize+8:]))
	branch = le.Uint64(root[pageHeaderSize+pos+ksize:])
	bp := page(branch)
	require.Equal(t, uint16(branchPageFlag), le.Uint16(bp[8:]), "the goethe bucket's root is a branch page")
	leaf = le.Uint64(bp[pageHeaderSize+8:])
	return pageSize, branch, leaf
}

// patch overwrites the file at path at off with data.
func patch(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(data, off)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// damages are the ways TestDamage and TestDamageWhileOpen break a file.
var damages = []struct {
	name  string
	apply func(t *testing.T, path string)
}{
	{"BranchChildPointsPastTheFile", func(t *testing.T, path string) {
		ps, branch, _ := layout(t, path)
		patch(t, path, int64(branch)*ps+pageHeaderSize+8, u64(1<<40))
	}},
	{"BranchChildPointsPastTheMapping", func(t *testing.T, path string) {
		// Within bbolt's array bounds but past its memory map: a fault,
		// which debug.SetPanicOnFault turns into a panic.
		ps, branch, _ := layout(t, path)
		patch(t, path, int64(branch)*ps+pageHeaderSize+8, u64(100_000))
	}},
	{"LeafPageTypeDamaged", func(t *testing.T, path string) {
		ps, _, leaf := layout(t, path)
		patch(t, path, int64(leaf)*ps+8, []byte{0x55, 0x55})
	}},
	{"LeafElementRunsPastThePage", func(t *testing.T, path string) {
		ps, _, leaf := layout(t, path)
		patch(t, path, int64(leaf)*ps+pageHeaderSize+16+4, []byte{0xff, 0xff, 0xff, 0x7f})
	}},
	{"LeafPageOverwrittenWithGarbage", func(t *testing.T, path string) {
		ps, _, leaf := layout(t, path)
		patch(t, path, int64(leaf)*ps, enginetest.Garbage(int(ps)))
	}},
	{"BranchPageOverwrittenWithGarbage", func(t *testing.T, path string) {
		ps, branch, _ := layout(t, path)
		patch(t, path, int64(branch)*ps, enginetest.Garbage(int(ps)))
	}},
}

func TestDamage(t *testing.T) {
	file := func(dir string) string { return filepath.Join(dir, FileName) }
	cases := []enginetest.Damage{
		{Name: "GarbagePastTheHighWaterMark", Torn: true, Apply: func(t *testing.T, dir string) {
			// Pages a crashed transaction wrote but never made current.
			enginetest.AppendBytes(t, file(dir), enginetest.Garbage(64<<10))
		}},
		{Name: "NewestMetaTorn", Torn: true, Apply: func(t *testing.T, dir string) {
			// A crash while the last commit wrote its meta page: bbolt
			// falls back to the other meta, the commit before.
			f, err := os.Open(file(dir))
			require.NoError(t, err)
			m0, _ := readMeta(f, 0)
			m1, _ := readMeta(f, int64(m0.pageSize))
			require.NoError(t, f.Close())
			off := int64(pageHeaderSize + 48) // txid, covered by the checksum
			if m1.txid > m0.txid {
				off += int64(m0.pageSize)
			}
			patch(t, file(dir), off, enginetest.Garbage(16))
		}},
	}
	for _, d := range damages {
		cases = append(cases, enginetest.Damage{Name: d.name, Apply: func(t *testing.T, dir string) { d.apply(t, file(dir)) }})
	}
	enginetest.RunDamage(t, openEngine, cases)
}

// TestDamageWhileOpen damages pages under an open DB (bbolt maps the file
// shared, so it sees the damage at once): Get and Scan fail with
// engine.ErrCorrupted instead of panicking or faulting, the process lives,
// and Close works.
func TestDamageWhileOpen(t *testing.T) {
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := Open(dir, Options{})
			require.NoError(t, err)
			defer db.Close()
			var b engine.Batch
			for i := range enginetest.DamageEntries {
				b.Put(enginetest.DamageKey(i), make([]byte, enginetest.DamageValueSize))
				if b.Len() == 100 {
					require.NoError(t, db.Write(&b, true))
					b.Reset()
				}
			}
			require.NoError(t, db.Write(&b, true))
			d.apply(t, filepath.Join(dir, FileName))

			_, err = db.Scan(nil, nil, 1<<30, 0)
			require.ErrorIs(t, err, engine.ErrCorrupted)
			t.Logf("scan: %v", err)
			var getErr error
			for i := 0; i < enginetest.DamageEntries && getErr == nil; i++ {
				_, getErr = db.Get(enginetest.DamageKey(i))
			}
			require.ErrorIs(t, getErr, engine.ErrCorrupted)
			require.NoError(t, db.Close())
		})
	}
}
