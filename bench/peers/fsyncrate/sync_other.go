//go:build !linux

package fsyncrate

import "os"

const syncName = "fsync"

// datasync is fsync where fdatasync is not offered (F_FULLFSYNC on macOS).
func datasync(f *os.File) error { return f.Sync() }
