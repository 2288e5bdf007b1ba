package main

import (
	"github.com/goethe-log/goethe/internal/bytesize"

	"errors"
	"flag"
	"fmt"
	"strconv"
	"syscall"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// The default of --min-free-bytes, computed at start from the volume that
// holds --data-dir: DefaultMinFreePercent of its size, at most
// DefaultMinFreeCap.
const (
	DefaultMinFreePercent = 1
	DefaultMinFreeCap     = 256 << 20
)

// diskConfig holds the flags of the free-space guard of the write path. Its
// zero value is the default: the reserve computed at start.
type diskConfig struct {
	minFree byteSize // --min-free-bytes; unset: the computed default
}

// register adds the group's flags to fs.
func (c *diskConfig) register(fs *flag.FlagSet) {
	fs.Var(&c.minFree, "min-free-bytes", fmt.Sprintf("free space kept in reserve on the volume of --data-dir: a write that finds less free\n"+
		"is refused (RESOURCE_EXHAUSTED, DISK_FULL) and writes resume by themselves once there is\n"+
		"this much again; reads go on. In bytes, or with a unit: KiB, MiB, GiB, TiB.\n"+
		"0 turns the guard off (the full disk is then still handled). Default: %d%% of the\n"+
		"volume, at most %d MiB, computed at start", DefaultMinFreePercent, DefaultMinFreeCap>>20))
}

// validate reports the first flag of the group with a bad value. The value
// is checked against the volume at start (see storeOptions): the volume is
// not known here.
func (c *diskConfig) validate() error { return nil }

// storeOptions sets the store's full-disk options for a data folder whose
// engine lives in engineDir: the free-space guard, measured on dataDir's
// volume, with the configured or the default reserve, and a reopen of the
// engine, so that writes resume after a full disk on every engine
// (goleveldb, for one, refuses writes until it is reopened). It fails for
// a reserve at least as large as the volume, which would refuse every
// write.
func (c *diskConfig) storeOptions(o *store.Options, name, dataDir, engineDir string) (minFree uint64, err error) {
	vol, err := statVolume(dataDir)
	if err != nil {
		return 0, fmt.Errorf("--data-dir %s: measure its volume: %w", dataDir, err)
	}
	minFree = defaultMinFree(vol.size)
	if c.minFree.set {
		minFree = c.minFree.n
		if minFree >= vol.size {
			return 0, fmt.Errorf("--min-free-bytes %d: must be less than the size of the volume of --data-dir (%d bytes), "+
				"or every write would be refused", minFree, vol.size)
		}
	}
	o.MinFreeBytes = minFree
	o.FreeBytes = func() (uint64, error) {
		v, err := statVolume(dataDir)
		return v.free, err
	}
	o.Reopen = func() (engine.Engine, error) { return engines.Open(name, engineDir) }
	return minFree, nil
}

// diskFullAtStart turns an error of the start that met a full volume into
// one line that says so and what to do; other errors pass unchanged. (A
// volume that fills up while serving is the store's business: writes are
// refused and resume, reads go on.)
func diskFullAtStart(dataDir string, err error) error {
	if err == nil || !(errors.Is(err, engine.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		return err
	}
	return fmt.Errorf("the volume of data folder %s is full, so it cannot be opened: free space on it (or move the folder "+
		"to a larger volume) and start again (%w)", dataDir, err)
}

// defaultMinFree is the default reserve of a volume of size bytes.
func defaultMinFree(size uint64) uint64 {
	return min(size/100*DefaultMinFreePercent, DefaultMinFreeCap)
}

// volume is the size and free space, for an unprivileged writer, of the
// volume holding a folder.
type volume struct{ size, free uint64 }

// statVolume measures the volume of dir with one statfs call (measured by
// BenchmarkStatVolume).
func statVolume(dir string) (volume, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return volume{}, err
	}
	bs := uint64(st.Bsize)
	return volume{size: st.Blocks * bs, free: st.Bavail * bs}, nil
}

// byteSize is a flag.Value of a byte count, with an optional binary unit.
// Its zero value is "not set".
type byteSize struct {
	n   uint64
	set bool
}

// Set parses "1048576", "1MiB", "512 KiB" (see package bytesize).
func (b *byteSize) Set(s string) error {
	n, err := bytesize.Parse(s)
	if err != nil {
		return err
	}
	b.n, b.set = n, true
	return nil
}

// String says the value, or "auto" for the computed default.
func (b *byteSize) String() string {
	if b == nil || !b.set {
		return "auto"
	}
	return strconv.FormatUint(b.n, 10)
}
