package enginetest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
)

// lockChildEnv, when set in a test process's environment, names the folder
// that RunCrossProcessLock opens as the child rather than as the parent.
const lockChildEnv = "GOETHE_ENGINETEST_LOCK_CHILD_DIR"

// Lines the child prints for the parent to read.
const (
	childOpened = "enginetest-child: opened"
	childLocked = "enginetest-child: locked: "
	childFailed = "enginetest-child: failed: "
)

// RunCrossProcessLock proves that a folder held by an engine in this process
// cannot be opened by another process, and can be once the engine is closed.
//
// testName must be the name of the top-level test that calls it: the
// function re-executes the test binary (os.Args[0]) running only that test,
// with an environment variable that turns the call into the child's side,
// which opens the folder and reports the outcome on stdout.
func RunCrossProcessLock(t *testing.T, testName string, open OpenFunc) {
	if dir := os.Getenv(lockChildEnv); dir != "" {
		lockChild(t, dir, open)
		return
	}

	dir := t.TempDir()
	e, err := open(t, dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	put(t, e, "held", "1")

	out, elapsed := runLockChild(t, testName, dir)
	require.Contains(t, out, childLocked, "the child opened a folder this process holds:\n%s", out)
	require.Contains(t, out, dir, "the child's error names the folder:\n%s", out)
	require.Less(t, elapsed, 10*time.Second, "the child failed fast")
	t.Logf("child, folder held: %s", childLine(out))

	// Once released, the folder opens in another process.
	require.NoError(t, e.Close())
	out, _ = runLockChild(t, testName, dir)
	require.Contains(t, out, childOpened, "the child could not open a released folder:\n%s", out)
	t.Logf("child, folder released: %s", childLine(out))

	// And this process can take it back after the child exits.
	e = mustOpen(t, open, dir)
	requireGet(t, e, "held", "1")
}

func runLockChild(t *testing.T, testName, dir string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+testName+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(begin)
	require.NoError(t, ctx.Err(), "the child hung:\n%s", out)
	require.NoError(t, err, "the child failed:\n%s", out)
	return string(out), elapsed
}

// childLine returns the child's report from its output.
func childLine(out string) string {
	for line := range strings.Lines(out) {
		if i := strings.Index(line, "enginetest-child: "); i >= 0 {
			return strings.TrimSpace(line[i:])
		}
	}
	return ""
}

// lockChild is the child process's side: open dir, report, close.
func lockChild(t *testing.T, dir string, open OpenFunc) {
	e, err := open(t, dir)
	switch {
	case err == nil:
		defer e.Close()
		v, err := e.Get([]byte("held"))
		if err != nil || string(v) != "1" {
			t.Logf("%sopened, but the parent's write is missing: %v", childFailed, err)
			return
		}
		t.Log(childOpened)
	case errors.Is(err, engine.ErrLocked):
		t.Log(childLocked + strings.ReplaceAll(err.Error(), "\n", " "))
	default:
		t.Log(childFailed + strings.ReplaceAll(err.Error(), "\n", " "))
	}
}
