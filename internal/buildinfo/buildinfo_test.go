package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFromBuildInfo: the version, commit, modified flag and Go version are
// read from the build information, "(devel)" reads as devel, and String
// shortens the commit and leaves out what is unknown.
func TestFromBuildInfo(t *testing.T) {
	i := fromBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}})
	require.Equal(t, Info{Version: "v0.3.0", Commit: "0123456789abcdef0123", Modified: true, Go: "go1.26.8"}, i)
	require.Equal(t, "v0.3.0 (commit 0123456789ab, modified, go1.26.8)", i.String())

	i = fromBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}})
	require.Equal(t, "devel (go1.26.8)", i.String())

	require.Equal(t, runtime.Version(), Read().Go, "the running binary's toolchain")
}
