package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBuildsInWorkspace: an application that uses goethe's client beside
// cockroachdb/errors (which requires a 2023 google.golang.org/genproto)
// builds in one go.work. Without the genproto requirement of internal/pin,
// errdetails is an ambiguous import there. The application's go.mod gets
// its requirements from the module proxy (or the module cache).
func TestBuildsInWorkspace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go command")
	}
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	root := filepath.Dir(filepath.Dir(file))
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	require.NoError(t, os.MkdirAll(app, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(app, "go.mod"), []byte("module example.com/app\n\ngo 1.26\n\n"+
		"require github.com/cockroachdb/errors v1.11.3\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(app, "main.go"), []byte(`package main

import (
	"fmt"

	"github.com/cockroachdb/errors"
	"github.com/goethe-log/goethe/client"
)

func main() { fmt.Println(errors.New("x"), client.ErrNotFound) }
`), 0o600))
	run := func(in string, env []string, args ...string) {
		cmd := exec.Command("go", args...)
		cmd.Dir = in
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %v:\n%s", args, out)
	}
	// The application's own go.sum first, as its author would make it:
	// alone, with goethe replaced by this checkout.
	alone := []string{"GOWORK=off", "GOFLAGS=-mod=mod"}
	run(app, alone, "mod", "edit", "-require", "github.com/goethe-log/goethe@v0.0.0", "-replace", "github.com/goethe-log/goethe="+root)
	run(app, alone, "mod", "tidy")
	// Then the workspace of both.
	work := []string{"GOWORK=" + filepath.Join(dir, "go.work")}
	run(dir, work, "work", "init", "./app", root)
	run(dir, work, "build", "-o", os.DevNull, "./app")
}
