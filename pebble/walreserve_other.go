//go:build !linux

package pebble

import "errors"

// errAllocateUnsupported reports a platform without fallocate.
var errAllocateUnsupported = errors.New("allocating a file's space ahead is not supported here")

// allocate is not available here: the DB runs without the WAL reservation.
func allocate(string, int64, int64) error { return errAllocateUnsupported }
