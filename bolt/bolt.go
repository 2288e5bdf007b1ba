// Package bolt runs engine.Engine on go.etcd.io/bbolt.
//
// # Basics
//
// A DB holds one bbolt file, <dir>/goethe.db, with every entry in a single
// bucket. A write is one bbolt read-write transaction and a scan one
// read-only transaction, which sees a consistent snapshot; neither outlives
// its call, because a read transaction pins the pages it can see for as long
// as it lives.
//
// # Caveats
//
// bbolt has one durability switch for the whole database (DB.NoSync), not
// one per transaction. DB serializes its writes with its own mutex and sets
// the switch inside it, so a write without sync never leaves an unsynced
// transaction in the way of a synced one: a synced commit fsyncs the file,
// and with it every earlier commit.
//
// bbolt writes one transaction at a time, and a write that must grow the
// memory map waits for every open read transaction to finish.
//
// bbolt does not persist a bucket's FillPercent: DB sets it to 1.0 in every
// write transaction, which packs pages full when keys arrive in order (as a
// log's do). That halves the file and makes sequential scans about 2.5 times
// faster than bbolt's default of 0.5; random inserts split full pages more
// often.
//
// # Integrity
//
// bbolt has no checksums on its data pages and reacts to a damaged page by
// panicking, or by a memory fault when a damaged page number points past
// the mapped file; and when no freelist is stored (the default here), its
// Open walks every page and reports what it finds wrong by panicking in a
// goroutine of its own, which ends the process. The adapter therefore:
//
//   - before the read-write open of an existing file, holds it with a
//     read-only bbolt open (which takes the shared file lock and walks
//     nothing) and walks the B+tree itself, checking what bbolt's walk
//     checks (pages within the high-water mark, each referenced once, of
//     branch or leaf type, elements inside their page, keys ascending and
//     within their parent's range); a failure is an error wrapping
//     engine.ErrCorrupted. This reads every reachable page once more per
//     Open, as bbolt's own walk does;
//   - runs every Open, Write, Get and Scan with debug.SetPanicOnFault and
//     a recover, so that a panic or a fault inside bbolt becomes an error
//     wrapping engine.ErrCorrupted. The cost is a deferred call per
//     operation; a panic during a write leaves bbolt's in-memory state in
//     doubt, so the DB then refuses writes until it is reopened.
//
// Damage that leaves the tree well-formed (a flipped byte in a value, a
// changed key that stays in order, a smaller element count) is not seen
// here: bbolt keeps no checksum of it. The store's per-event CRC catches
// changed values; a shortened page shows as missing entries.
//
// # Full volume
//
// A Write that fails for lack of space returns an error wrapping
// engine.ErrNoSpace and the syscall's ENOSPC. bbolt writes a transaction's
// pages before the meta page that makes them current, and rolls the
// transaction back (reloading its free list) when a write fails, so
// nothing of it is visible and the DB resumes writing in place as soon as
// space is freed; no reopen is needed. Open on a full volume succeeds and
// serves reads (it writes nothing to an existing file).
package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/goethe-log/goethe/engine"
)

var _ engine.Engine = (*DB)(nil)

// FileName is the name of the bbolt data file inside the data folder.
const FileName = "goethe.db"

// bucketName is the one bucket that holds every entry.
var bucketName = []byte("goethe")

// Options tunes the bbolt database. The zero value means the defaults
// documented on each field; Open fills them in.
type Options struct {
	// LockTimeout bounds how long Open waits for the file lock that another
	// DB holds before failing with engine.ErrLocked. bbolt's own default
	// waits forever. Default 100ms.
	LockTimeout time.Duration

	// SyncFreelist writes bbolt's free-page list to the file in every
	// commit. By default (false) it is not written, which keeps commits
	// small when many pages are free, e.g. after old events are deleted;
	// the price is that Open scans the whole file to rebuild the list, so
	// a large store opens more slowly. The list is kept as a hash map
	// either way (bbolt's "map" freelist), which frees and allocates in
	// constant time where bbolt's default array is linear.
	SyncFreelist bool
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 100 * time.Millisecond
	}
	return o
}

// DB is an engine.Engine on a bbolt database. It is safe for concurrent use;
// see package engine for the contract.
type DB struct {
	dir string

	// mu guards closed: every operation holds it shared, Close exclusively,
	// so Close waits for calls in flight.
	mu     sync.RWMutex
	closed bool

	// writeMu serializes writes so that db.NoSync is set for the write
	// that runs next and for no other. dirty records that a commit since
	// the last fsync went without one.
	writeMu sync.Mutex
	dirty   bool

	// writeFailed holds the error of a write that panicked inside bbolt;
	// writes are refused with it until the DB is reopened.
	writeFailed atomic.Pointer[error]

	db *bbolt.DB

	// snaps are the views Snapshot handed out and not yet closed; Close
	// closes them first.
	snapMu sync.Mutex
	snaps  map[*snapshot]struct{}
}

// isNoSpace reports a write that failed for lack of space or quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// wrapErr adds the engine sentinel callers branch on to an error from
// bbolt: engine.ErrNoSpace for a full volume, engine.ErrCorrupted for a
// damaged file.
func wrapErr(op string, err error) error {
	switch {
	case isNoSpace(err):
		return fmt.Errorf("bolt: %s: %w: %w", op, engine.ErrNoSpace, err)
	case errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrInvalid):
		return fmt.Errorf("bolt: %s: %w: %w", op, engine.ErrCorrupted, err)
	}
	return fmt.Errorf("bolt: %s: %w", op, err)
}

// catchPanic, deferred, turns a panic inside bbolt (a damaged page) into an
// error wrapping engine.ErrCorrupted in *err. The caller also defers
// guardFaults, so that a memory fault is a panic rather than a crash.
func catchPanic(op string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("bolt: %s: %w: bbolt panicked on a damaged page: %v", op, engine.ErrCorrupted, r)
	}
}

// guardFaults makes a memory fault in this goroutine (bbolt following a
// damaged page number past the mapped file) a recoverable panic, and
// returns the function that restores the previous setting.
func guardFaults() func() {
	old := debug.SetPanicOnFault(true)
	return func() { debug.SetPanicOnFault(old) }
}

// Open opens the bbolt database <dir>/goethe.db, creating dir and the file if
// they do not exist. If another DB, in this process or another, holds the
// file, Open fails within Options.LockTimeout with an error wrapping
// engine.ErrLocked.
func Open(dir string, opts Options) (*DB, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	if err := checkExisting(path, opts.LockTimeout); err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("bolt: open %s: %w: no file lock after %v", dir, engine.ErrLocked, opts.LockTimeout)
		}
		return nil, wrapErr("open "+dir, err)
	}
	bdb, err := openBolt(path, &bbolt.Options{
		Timeout:        opts.LockTimeout,
		NoFreelistSync: !opts.SyncFreelist,
		FreelistType:   bbolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: %w: no file lock after %v", dir, engine.ErrLocked, opts.LockTimeout)
	}
	if err != nil {
		return nil, wrapErr("open "+dir, err)
	}
	if err := createBucket(bdb); err != nil {
		_ = bdb.Close()
		return nil, wrapErr("open "+dir+": create bucket", err)
	}
	// Only now that the file lock is held: the copies may be another live
	// DB's otherwise.
	if err := removeSnapshotFiles(dir); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("bolt: open %s: remove snapshot copies left by a crash: %w", dir, err)
	}
	return &DB{dir: dir, db: bdb}, nil
}

// checkExisting checks the tree of an existing, non-empty bbolt file
// while holding it with a read-only open (see the package documentation).
func checkExisting(path string, lockTimeout time.Duration) (err error) {
	defer guardFaults()()
	defer catchPanic("check", &err)
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		return nil // a new file, or one bbolt's open will report on
	}
	ro, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return err
	}
	defer ro.Close()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return checkFile(f)
}

// openBolt is bbolt.Open with its panics and faults made errors.
func openBolt(path string, opts *bbolt.Options) (db *bbolt.DB, err error) {
	defer guardFaults()()
	defer catchPanic("open", &err)
	return bbolt.Open(path, 0o644, opts)
}

func createBucket(bdb *bbolt.DB) (err error) {
	defer guardFaults()()
	defer catchPanic("create bucket", &err)
	return bdb.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	})
}

// Write applies b in one bbolt transaction. With sync the file is fsynced
// before Write returns. A range delete collects the keys in its range, then
// deletes them: deleting under a live bbolt cursor skips keys. A write that
// fails for lack of space returns an error wrapping engine.ErrNoSpace and
// leaves nothing behind; the next Write succeeds once space is freed.
func (d *DB) Write(b *engine.Batch, sync bool) (err error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("bolt: write: %w", engine.ErrClosed)
	}
	if failed := d.writeFailed.Load(); failed != nil {
		return fmt.Errorf("bolt: write refused until the engine is reopened: %w", *failed)
	}
	defer guardFaults()()
	defer func() {
		if err != nil && errors.Is(err, engine.ErrCorrupted) {
			d.writeFailed.CompareAndSwap(nil, &err)
		}
	}()
	defer catchPanic("write", &err)
	if b == nil || b.Len() == 0 {
		return nil
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("bolt: write: %w", err)
	}

	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	d.db.NoSync = !sync
	err = d.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucketName)
		bk.FillPercent = 1.0
		var arena []byte
		var ends []int
		for i, op := range b.Ops() {
			var err error
			switch op.Kind {
			case engine.OpPut:
				err = bk.Put(op.Key, op.Value)
			case engine.OpDelete:
				err = bk.Delete(op.Key)
			case engine.OpDeleteRange:
				arena, ends = arena[:0], ends[:0]
				c := bk.Cursor()
				for k, _ := c.Seek(op.Key); k != nil && bytes.Compare(k, op.End) < 0; k, _ = c.Next() {
					arena = append(arena, k...)
					ends = append(ends, len(arena))
				}
				from := 0
				for _, to := range ends {
					if err = bk.Delete(arena[from:to]); err != nil {
						break
					}
					from = to
				}
			}
			if err != nil {
				return fmt.Errorf("op %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return wrapErr("write", err)
	}
	d.dirty = !sync
	return nil
}

// Get returns a copy of the value at key, or an error wrapping
// engine.ErrNotFound.
func (d *DB) Get(key []byte) (_ []byte, err error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("bolt: get: %w", engine.ErrClosed)
	}
	defer guardFaults()()
	defer catchPanic(fmt.Sprintf("get %x", key), &err)
	if len(key) == 0 {
		return nil, fmt.Errorf("bolt: get: %w: empty key", engine.ErrInvalid)
	}
	var out []byte
	err = d.db.View(func(tx *bbolt.Tx) error {
		// A cursor rather than Bucket.Get, which cannot tell an empty
		// value from a missing key.
		k, v := tx.Bucket(bucketName).Cursor().Seek(key)
		if k == nil || !bytes.Equal(k, key) {
			return engine.ErrNotFound
		}
		out = make([]byte, len(v))
		copy(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get %x: %w", key, err)
	}
	return out, nil
}

// Scan returns a page of the entries in [start, end) from one read-only
// transaction, which sees the store as of its start.
func (d *DB) Scan(start, end []byte, limit, maxBytes int) (_ []engine.KV, err error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("bolt: scan: %w", engine.ErrClosed)
	}
	defer guardFaults()()
	defer catchPanic("scan", &err)
	if err := engine.CheckScan(start, end, limit); err != nil {
		return nil, fmt.Errorf("bolt: scan: %w", err)
	}
	if end != nil && string(start) >= string(end) {
		return nil, nil
	}
	page := engine.NewPageBuilder(limit, maxBytes)
	err = d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketName).Cursor()
		var k, v []byte
		if len(start) == 0 {
			k, v = c.First()
		} else {
			k, v = c.Seek(start)
		}
		for ; k != nil; k, v = c.Next() {
			if end != nil && bytes.Compare(k, end) >= 0 {
				break
			}
			if !page.Add(k, v) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: scan: %w", err)
	}
	return page.Page(), nil
}

// Close waits for calls in flight, fsyncs the file if a write since the last
// fsync went without one, closes the database and releases the folder. Every
// write that returned nil survives it, synced or not. Calls after Close fail
// with engine.ErrClosed; Close again returns nil.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	d.closeSnapshots()
	var err error
	if d.dirty {
		err = d.db.Sync()
	}
	if cerr := d.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bolt: close %s: %w", d.dir, err)
	}
	return nil
}
