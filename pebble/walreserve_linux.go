package pebble

import (
	"errors"
	"os"
	"syscall"
)

// errAllocateUnsupported reports a platform without fallocate.
var errAllocateUnsupported = errors.New("allocating a file's space ahead is not supported here")

// fallocKeepSize is FALLOC_FL_KEEP_SIZE: allocate without changing the
// file's size, so pebble's writes and its reading of the WAL are unchanged.
const fallocKeepSize = 0x1

// allocate allocates length bytes of the file at path from offset,
// without changing its size.
func allocate(path string, offset, length int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = syscall.Fallocate(int(f.Fd()), fallocKeepSize, offset, length)
	for errors.Is(err, syscall.EINTR) {
		err = syscall.Fallocate(int(f.Fd()), fallocKeepSize, offset, length)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "fallocate", Path: path, Err: err}
	}
	return nil
}
