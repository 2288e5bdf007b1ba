//go:build linux || darwin

package pebble

import "syscall"

// freeBytes returns the bytes available to an unprivileged writer on the
// volume holding dir, and false if it cannot tell.
func freeBytes(dir string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
