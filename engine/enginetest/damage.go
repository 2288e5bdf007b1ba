package enginetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
)

// Damage is one way of damaging a closed data folder, for RunDamage.
type Damage struct {
	// Name names the subtest.
	Name string
	// Apply damages the closed folder dir.
	Apply func(t *testing.T, dir string)
	// Torn says the damage is what a crash leaves behind (a torn tail of the
	// log being written): Open must succeed with every entry but the last
	// one intact. Otherwise the damage is a hole in data the engine
	// acknowledged: Open, Get or Scan must fail with an error wrapping
	// engine.ErrCorrupted, never return fewer entries, never panic.
	Torn bool
	// Prepare, if set, runs on the engine after the entries are written and
	// before it is closed for Apply (e.g. to move them out of the log into
	// tables by a reopen).
	Prepare func(t *testing.T, dir string, open OpenFunc)
}

// DamageEntries is the number of synced entries RunDamage writes before the
// last one; DamageValueSize is the size of each value. Together they make a
// log of several 32 KiB blocks.
const (
	DamageEntries   = 2000
	DamageValueSize = 100
)

// DamageKey returns the key of entry i of RunDamage's data; entry
// DamageEntries is the last one, the one a torn tail may lose.
func DamageKey(i int) []byte { return fmt.Appendf(nil, "entry%06d", i) }

func damageValue(i int) []byte {
	v := make([]byte, DamageValueSize)
	for j := range v {
		v[j] = byte(i*31 + j)
	}
	return v
}

// RunDamage writes DamageEntries+1 entries, each in its own synced Write,
// into a fresh folder, closes the engine, and runs each case on a copy of
// that state: it damages the folder and checks what the engine makes of
// it, as Damage.Torn describes.
func RunDamage(t *testing.T, open OpenFunc, cases []Damage) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			e, err := open(t, dir)
			require.NoError(t, err)
			var b engine.Batch
			for i := 0; i <= DamageEntries; i++ {
				b.Reset()
				b.Put(DamageKey(i), damageValue(i))
				require.NoError(t, e.Write(&b, true))
			}
			require.NoError(t, e.Close())
			if c.Prepare != nil {
				c.Prepare(t, dir, open)
			}
			c.Apply(t, dir)
			if c.Torn {
				checkTorn(t, open, dir)
			} else {
				checkCorrupted(t, open, dir)
			}
		})
	}
}

func checkTorn(t *testing.T, open OpenFunc, dir string) {
	e, err := open(t, dir)
	require.NoError(t, err, "a torn tail is what a crash leaves: Open recovers it")
	defer func() { _ = e.Close() }()
	got := scanAll(t, e, nil, nil)
	require.GreaterOrEqual(t, len(got), DamageEntries, "every entry before the torn one is intact")
	require.LessOrEqual(t, len(got), DamageEntries+1)
	for i, kv := range got {
		require.Equal(t, string(DamageKey(i)), string(kv.Key))
		require.Equal(t, damageValue(i), kv.Value, "value of %s", kv.Key)
	}
	// The recovered engine takes writes, and they survive a reopen.
	var b engine.Batch
	b.Put([]byte("after"), []byte("recovery"))
	require.NoError(t, e.Write(&b, true))
	require.NoError(t, e.Close())
	e2, err := open(t, dir)
	require.NoError(t, err)
	defer func() { _ = e2.Close() }()
	requireGet(t, e2, "after", "recovery")
	require.Len(t, scanAll(t, e2, nil, nil), len(got)+1)
}

// checkCorrupted requires that the damage shows as an error wrapping
// engine.ErrCorrupted from Open, Scan or Get, and never as missing or
// changed entries.
func checkCorrupted(t *testing.T, open OpenFunc, dir string) {
	e, err := open(t, dir)
	if err != nil {
		t.Logf("open: %v", err)
		require.ErrorIs(t, err, engine.ErrCorrupted)
		return
	}
	defer func() { _ = e.Close() }()
	var firstErr error
	count := 0
	start := []byte{}
	for {
		page, err := e.Scan(start, nil, 100, 0)
		if err != nil {
			firstErr = err
			break
		}
		if len(page) == 0 {
			break
		}
		for _, kv := range page {
			require.Equal(t, string(DamageKey(count)), string(kv.Key), "entry %d: an entry is missing", count)
			require.Equal(t, damageValue(count), kv.Value, "value of %s changed", kv.Key)
			count++
		}
		start = append(page[len(page)-1].Key, 0)
	}
	for i := 0; i <= DamageEntries && firstErr == nil; i++ {
		v, err := e.Get(DamageKey(i))
		if err != nil {
			firstErr = err
			break
		}
		require.Equal(t, damageValue(i), v)
	}
	require.Error(t, firstErr, "the damage went unnoticed (all %d entries read back)", count)
	t.Logf("read after %d entries: %v", count, firstErr)
	require.ErrorIs(t, firstErr, engine.ErrCorrupted)
}

// FlipBytes XORs n bytes of the file at path from offset off (negative: from
// the end) with 0xFF.
func FlipBytes(t *testing.T, path string, off int64, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	if off < 0 {
		off += int64(len(data))
	}
	require.LessOrEqual(t, off+int64(n), int64(len(data)), "flip past the end of %s", path)
	for i := range int64(n) {
		data[off+i] ^= 0xFF
	}
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// TruncateBy cuts n bytes off the end of the file at path.
func TruncateBy(t *testing.T, path string, n int64) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, st.Size()-n))
}

// AppendBytes appends data to the file at path.
func AppendBytes(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// Garbage returns n bytes that are neither zero nor a valid record.
func Garbage(n int) []byte {
	g := make([]byte, n)
	for i := range g {
		g[i] = byte(i*131 + 7)
	}
	return g
}

// SizeOf returns the size of the file at path.
func SizeOf(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}

// NewestFile returns the path of the file in dir with the highest number
// among those named prefix<number>suffix (the engines' numbered journals,
// WALs, tables and MANIFESTs), failing t when there is none.
func NewestFile(t *testing.T, dir, prefix, suffix string) string {
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

// Reopen opens and closes the engine in dir: an LSM engine replays its log
// at open and writes it out as a table, so that damage can then be aimed at
// tables (a Damage's Prepare).
func Reopen(t *testing.T, dir string, open OpenFunc) {
	t.Helper()
	e, err := open(t, dir)
	require.NoError(t, err)
	require.NoError(t, e.Close())
}
