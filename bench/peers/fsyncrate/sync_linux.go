package fsyncrate

import (
	"os"
	"syscall"
)

const syncName = "fdatasync"

// datasync makes f's data, and the metadata needed to read it back (its
// size), durable: fdatasync, as write-ahead logs (LevelDB, Pebble, Redis's
// append-only file) call it.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
