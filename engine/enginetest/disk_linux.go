package enginetest

import (
	"strconv"
	"syscall"
)

func mountTmpfs(dir string, sizeBytes int64) error {
	return syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(sizeBytes, 10)+",mode=0700")
}

func unmountTmpfs(dir string) error {
	if err := syscall.Unmount(dir, 0); err != nil {
		return syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	return nil
}
