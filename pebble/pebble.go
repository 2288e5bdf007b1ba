// Package pebble runs engine.Engine on github.com/cockroachdb/pebble/v2.
//
// # Basics
//
// A DB holds one pebble database in a folder. Writes are pebble batches,
// atomic through pebble's WAL, with native point and range deletions; scans
// are bounded pebble iterators, each a consistent snapshot.
//
// # Caveats
//
// pebble panics when used after Close; DB guards every call with a lock and a
// closed flag so that callers get engine.ErrClosed instead.
//
// pebble locks its folder with fcntl(2), whose locks belong to the process,
// not to the file descriptor: pebble itself refuses a second open of the
// same lock-file path within a process, but the same folder reached through a
// different path (a symlink) would be granted. Open therefore resolves dir to
// its canonical absolute path before handing it to pebble.
package pebble

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/goethe-log/goethe/engine"
)

var _ engine.Engine = (*DB)(nil)

// Options tunes the pebble database. The zero value means the defaults
// documented on each field; Open fills them in.
//
// The defaults suit an append-heavy log: large memtables absorb write bursts
// and flush to fewer, larger level-0 files, and relaxed level-0 thresholds
// let compaction batch more work before it runs or stalls writers.
type Options struct {
	// CacheSize is the size in bytes of pebble's block cache. Default 64 MiB
	// (pebble's own is 8 MiB).
	CacheSize int64
	// MemTableSize is the size in bytes of one memtable. Up to
	// MemTableStopWritesThreshold of them queue for flushing before writes
	// stall. Default 64 MiB (pebble's own is 4 MiB).
	MemTableSize uint64
	// MemTableStopWritesThreshold is the number of queued memtables at
	// which writes stall. Default 4 (pebble's own is 2).
	MemTableStopWritesThreshold int
	// L0CompactionThreshold is the level-0 read amplification at which a
	// compaction out of level 0 starts. Default 8 (pebble's own is 4).
	L0CompactionThreshold int
	// L0StopWritesThreshold is the level-0 read amplification at which
	// writes stall. Default 24 (pebble's own is 12).
	L0StopWritesThreshold int
	// MaxConcurrentCompactions bounds the compactions pebble runs at once.
	// Default 2 (pebble's own is 1).
	MaxConcurrentCompactions int
	// Logger receives pebble's messages. Default: informational messages
	// are dropped, errors go to the standard library log (pebble's
	// DefaultLogger), and fatal ones end the process as pebble requires.
	Logger pebble.Logger
}

func (o Options) withDefaults() Options {
	if o.CacheSize <= 0 {
		o.CacheSize = 64 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 64 << 20
	}
	if o.MemTableStopWritesThreshold <= 0 {
		o.MemTableStopWritesThreshold = 4
	}
	if o.L0CompactionThreshold <= 0 {
		o.L0CompactionThreshold = 8
	}
	if o.L0StopWritesThreshold <= 0 {
		o.L0StopWritesThreshold = 24
	}
	if o.MaxConcurrentCompactions <= 0 {
		o.MaxConcurrentCompactions = 2
	}
	if o.Logger == nil {
		o.Logger = quietLogger{}
	}
	return o
}

// quietLogger drops pebble's informational messages and passes on the rest.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf("pebble: "+format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf("pebble: "+format, args...)
}

// DB is an engine.Engine on a pebble database. It is safe for concurrent
// use; see package engine for the contract.
type DB struct {
	dir string

	// mu guards closed: every operation holds it shared, Close exclusively,
	// so Close waits for calls in flight and no call reaches a closed
	// pebble, which would panic.
	mu     sync.RWMutex
	closed bool

	db   *pebble.DB
	lock *pebble.Lock
}

// Open opens the pebble database in dir, creating dir and the database if
// they do not exist. If another DB, in this process or another, holds dir,
// Open fails at once with an error wrapping engine.ErrLocked.
func Open(dir string, opts Options) (*DB, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	canon, err := canonical(dir)
	if err != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	// Take the lock ourselves, so that every error here is a lock error.
	lock, err := pebble.LockDirectory(canon, vfs.Default)
	if err != nil {
		if isLockConflict(err) {
			return nil, fmt.Errorf("pebble: open %s: %w: %w", dir, engine.ErrLocked, err)
		}
		return nil, fmt.Errorf("pebble: open %s: lock: %w", dir, err)
	}
	maxCompactions := opts.MaxConcurrentCompactions
	pdb, err := pebble.Open(canon, &pebble.Options{
		Lock:                        lock,
		CacheSize:                   opts.CacheSize,
		MemTableSize:                opts.MemTableSize,
		MemTableStopWritesThreshold: opts.MemTableStopWritesThreshold,
		L0CompactionThreshold:       opts.L0CompactionThreshold,
		L0StopWritesThreshold:       opts.L0StopWritesThreshold,
		CompactionConcurrencyRange:  func() (int, int) { return 1, maxCompactions },
		// New stores start on the newest stable format (columnar blocks,
		// faster scans); existing ones are ratcheted up to it.
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             opts.Logger,
	})
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	return &DB{dir: dir, db: pdb, lock: lock}, nil
}

// canonical returns the absolute, symlink-free path of the existing folder
// dir, so that every path to one folder names the same pebble lock file.
func canonical(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// isLockConflict reports whether err, from pebble.LockDirectory, means that
// the lock is held: by this process (pebble's own registry, which has no
// sentinel error, only a message) or by another one (fcntl F_SETLK fails with
// EAGAIN or EACCES; an os.Create failure is a *PathError instead).
func isLockConflict(err error) bool {
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return false
	}
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "lock held by current process")
}

// Write applies b atomically as one pebble batch. With sync the WAL is
// fsynced before Write returns.
func (d *DB) Write(b *engine.Batch, sync bool) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("pebble: write: %w", engine.ErrClosed)
	}
	if b == nil || b.Len() == 0 {
		return nil
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("pebble: write: %w", err)
	}
	pb := d.db.NewBatch()
	defer pb.Close()
	// pebble's batch methods copy their arguments and fail only on a
	// closed or read-only batch, neither of which pb can be.
	for _, op := range b.Ops() {
		var err error
		switch op.Kind {
		case engine.OpPut:
			err = pb.Set(op.Key, op.Value, nil)
		case engine.OpDelete:
			err = pb.Delete(op.Key, nil)
		case engine.OpDeleteRange:
			err = pb.DeleteRange(op.Key, op.End, nil)
		}
		if err != nil {
			return fmt.Errorf("pebble: write: %w", err)
		}
	}
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	if err := pb.Commit(wo); err != nil {
		return fmt.Errorf("pebble: write: %w", err)
	}
	return nil
}

// Get returns a copy of the value at key, or an error wrapping
// engine.ErrNotFound.
func (d *DB) Get(key []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("pebble: get: %w", engine.ErrClosed)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("pebble: get: %w: empty key", engine.ErrInvalid)
	}
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("pebble: get %x: %w", key, engine.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pebble: get %x: %w", key, err)
	}
	out := make([]byte, len(v))
	copy(out, v)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("pebble: get %x: %w", key, err)
	}
	return out, nil
}

// Scan returns a page of the entries in [start, end) from one bounded pebble
// iterator, which reads a snapshot taken when Scan starts.
func (d *DB) Scan(start, end []byte, limit, maxBytes int) ([]engine.KV, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("pebble: scan: %w", engine.ErrClosed)
	}
	if err := engine.CheckScan(start, end, limit); err != nil {
		return nil, fmt.Errorf("pebble: scan: %w", err)
	}
	if end != nil && string(start) >= string(end) {
		return nil, nil
	}
	if len(start) == 0 {
		// An empty (non-nil) lower bound trips pebble's invariant checks
		// (race builds); nil means the same, no bound.
		start = nil
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return nil, fmt.Errorf("pebble: scan: %w", err)
	}
	page := engine.NewPageBuilder(limit, maxBytes)
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("pebble: scan: %w", err)
		}
		if !page.Add(it.Key(), v) {
			break
		}
	}
	if err := it.Close(); err != nil { // Close returns the iterator's error
		return nil, fmt.Errorf("pebble: scan: %w", err)
	}
	return page.Page(), nil
}

// Close waits for calls in flight, then closes the database and releases the
// folder. Writes that returned nil survive it: pebble has written them to its
// WAL, which Close flushes. Calls after Close fail with engine.ErrClosed;
// Close again returns nil.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	err := d.db.Close()
	if lerr := d.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("pebble: close %s: %w", d.dir, err)
	}
	return nil
}
