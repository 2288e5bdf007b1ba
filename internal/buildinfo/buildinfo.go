// Package buildinfo says which build of Goethe is running, from the build
// information the Go toolchain embeds in every binary
// (runtime/debug.ReadBuildInfo): goethe --version, goethectl --version and
// the server's goethe_build_info metric show it.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is a binary's build. Fields the build did not record are "" (a
// test binary, or a build with -buildvcs=false, records no commit).
type Info struct {
	// Version is the main module's version: a tag such as v0.3.0 for a
	// binary installed with go install module@version, a pseudo-version,
	// or "devel" for a build in its own source tree.
	Version string
	// Commit is the VCS revision the binary was built from.
	Commit string
	// Modified says the work tree had changes not committed.
	Modified bool
	// Go is the Go toolchain that built the binary, such as go1.26.8.
	Go string
}

// Read returns the running binary's build. It never fails: without build
// information (a binary built without module support) Version is "devel"
// and Go is runtime.Version().
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "devel", Go: runtime.Version()}
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	i := Info{Version: bi.Main.Version, Go: bi.GoVersion}
	if i.Version == "" || i.Version == "(devel)" {
		i.Version = "devel"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Commit = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is the build in one line, as --version prints it after the
// program's name: "v0.3.0 (commit 0123456789ab, modified, go1.26.8)".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	b.WriteString(" (")
	if i.Commit != "" {
		b.WriteString("commit " + i.Commit[:min(len(i.Commit), 12)] + ", ")
		if i.Modified {
			b.WriteString("modified, ")
		}
	}
	b.WriteString(i.Go + ")")
	return b.String()
}
