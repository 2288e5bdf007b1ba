//go:build !linux

package enginetest

import "errors"

func mountTmpfs(string, int64) error {
	return errors.New("tmpfs mounts are only made on Linux")
}

func unmountTmpfs(string) error { return nil }
