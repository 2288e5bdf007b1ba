//go:build !(linux || darwin)

package pebble

// freeBytes cannot tell the free space on this platform.
func freeBytes(string) (uint64, bool) { return 0, false }
