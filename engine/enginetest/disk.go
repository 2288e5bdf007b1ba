package enginetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// SmallTmpfs mounts a tmpfs of sizeBytes on a fresh folder under t.TempDir()
// and returns the folder; t.Cleanup unmounts it. It calls t.Skip, with the
// reason, where a tmpfs cannot be mounted (not Linux, not root, no
// CAP_SYS_ADMIN in a container). Tests use it to meet a full volume for real:
// writes on it fail with ENOSPC once sizeBytes are in use.
func SmallTmpfs(t testing.TB, sizeBytes int64) string {
	t.Helper()
	require.Positive(t, sizeBytes, "tmpfs size")
	dir := filepath.Join(t.TempDir(), "tmpfs")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if err := mountTmpfs(dir, sizeBytes); err != nil {
		t.Skipf("cannot mount a %d-byte tmpfs on %s (needs Linux and root or CAP_SYS_ADMIN): %v", sizeBytes, dir, err)
	}
	t.Cleanup(func() {
		// Cleanups run last-registered first, so this runs before
		// t.TempDir's removal of the parent; an engine the test left open
		// makes the unmount busy, hence the lazy detach as a fallback.
		if err := unmountTmpfs(dir); err != nil {
			t.Errorf("unmount tmpfs %s: %v", dir, err)
		}
	})
	return dir
}

// fillChunks are the write sizes FillDisk steps down through, so that the
// volume ends full to the last byte the filesystem will give out.
var fillChunks = []int{1 << 20, 64 << 10, 4 << 10, 512, 1}

// FillDisk fills the volume holding dir with a filler file in dir until a
// write fails with ENOSPC, and returns release, which removes the filler
// (release is idempotent and also runs at t.Cleanup). Any error other than
// ENOSPC fails the test. After FillDisk a write to the volume that needs a
// new block fails with ENOSPC until release is called.
func FillDisk(t testing.TB, dir string) (release func()) {
	t.Helper()
	f, err := os.CreateTemp(dir, "enginetest-filler-*")
	require.NoError(t, err)
	name := f.Name()
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = f.Close()
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("remove filler %s: %v", name, err)
			}
		})
	}
	t.Cleanup(release)

	var total int64
	for _, size := range fillChunks {
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = 0xA5 // not zeroes, so no filesystem can make it sparse
		}
		for {
			n, err := f.Write(buf)
			total += int64(n)
			if err == nil {
				continue
			}
			require.Truef(t, errors.Is(err, syscall.ENOSPC),
				"filling %s: want ENOSPC, got %v", dir, err)
			break
		}
	}
	// On a disk-backed volume the data must be allocated, not just cached;
	// the sync may itself meet ENOSPC, which is what was asked for.
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		require.NoError(t, fmt.Errorf("sync filler %s: %w", name, err))
	}
	t.Logf("filled the volume of %s with %d bytes", dir, total)
	return release
}
