package enginetest_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine/enginetest"
)

// TestSmallTmpfsFillDisk proves the helpers do what the full-disk tests of
// the adapters rely on: the tmpfs refuses writes once FillDisk has run, and
// accepts them again after release.
func TestSmallTmpfsFillDisk(t *testing.T) {
	dir := enginetest.SmallTmpfs(t, 1<<20)
	release := enginetest.FillDisk(t, dir)

	err := os.WriteFile(filepath.Join(dir, "probe"), make([]byte, 8<<10), 0o600)
	require.Error(t, err)
	require.True(t, errors.Is(err, syscall.ENOSPC), "want ENOSPC, got %v", err)

	release()
	release() // idempotent
	require.NoError(t, os.WriteFile(filepath.Join(dir, "probe"), make([]byte, 8<<10), 0o600))
}
