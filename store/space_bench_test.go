package store

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkFreeSpaceGuard is the cost the free-space guard adds to a
// commit: cached=true is what nearly every commit pays (a clock read and a
// compare; the measurement is reused for DefaultFreeBytesMaxAge),
// cached=false one statfs(2) of the data folder, paid at most once per
// DefaultFreeBytesMaxAge.
func BenchmarkFreeSpaceGuard(b *testing.B) {
	dir := b.TempDir()
	statfs := func() (uint64, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, err
		}
		return st.Bavail * uint64(st.Bsize), nil
	}
	for _, cached := range []bool{true, false} {
		b.Run(map[bool]string{true: "cached=true", false: "cached=false"}[cached], func(b *testing.B) {
			s := &Store{opts: Options{MinFreeBytes: 1, FreeBytes: statfs, FreeBytesMaxAge: time.Hour}}
			for b.Loop() {
				if err := s.guard(!cached); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
