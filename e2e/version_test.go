package e2e

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVersion: goethe --version and goethectl --version print the binary's
// name, module version and Go toolchain (and the commit, when the build
// recorded one: not under GOFLAGS=-buildvcs=false), on standard output,
// with exit status 0.
func TestVersion(t *testing.T) {
	for _, name := range []string{"goethe", "goethectl"} {
		out, err := exec.Command(filepath.Join(binDir, name), "--version").Output()
		require.NoError(t, err, name)
		require.Regexp(t, `^`+name+` \S+ \((commit [0-9a-f]{12}, (modified, )?)?`+runtime.Version()+`\)\n$`, string(out))
	}
}
