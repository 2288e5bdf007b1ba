// Package leveldb runs engine.Engine on github.com/syndtr/goleveldb.
//
// # Basics
//
// A DB holds one goleveldb database in a folder, with goleveldb's LOCK file
// (flock) as the guard against a second opener in this or another process.
// Writes are goleveldb batches, atomic through its journal; scans are
// goleveldb iterators, each a consistent snapshot.
//
// # Caveats
//
// goleveldb has no range deletion. A batch's OpDeleteRange becomes one point
// delete per key in the range, added to the same goleveldb batch, so it costs
// time and batch memory in proportion to the keys it removes. To make that
// emulation exact, a batch that holds a range delete runs alone: other
// writes through the same DB wait for it, and it waits for them.
//
// # Integrity
//
// goleveldb runs strict (opt.StrictAll but StrictRecovery): a journal or
// MANIFEST chunk with a bad checksum, type or length is an error instead of
// being skipped, and so is a table block with a bad checksum, on reads and
// in compactions. goleveldb's strict journal reader cannot tell a hole in
// the log from the torn tail a crash leaves at the end of the file being
// written, and refuses both; Open tells them apart. When a strict open
// fails on the newest journal or on the current MANIFEST, Open scans that
// file: if no intact chunk follows the first damaged one, the damage is a
// torn tail (a record cut short, zeroes or garbage past the last write), and
// Open cuts the file after its last intact record, logs what it dropped
// (Options.Logger, level WARN), keeps the dropped bytes in <file>.torn and
// opens again. Every record written before
// the torn one is kept, as after any crash. Damage followed by intact
// records, or in an older journal, fails Open with an error wrapping
// engine.ErrCorrupted, as does a damaged table block met by Get or Scan.
//
// The cost and the limit of this: a strict open reads nothing twice unless
// it fails; the scan after a failure reads the damaged file once. Damage
// confined to the last record of the newest journal (a byte flipped in it,
// the file truncated) looks exactly like a crash's torn tail and is
// recovered as one, losing that record: no log format can tell the two
// apart without a record of how far the file was synced.
//
// # Full volume
//
// A Write that fails for lack of space returns an error wrapping
// engine.ErrNoSpace and the syscall's ENOSPC; nothing of it is visible, and
// every write acknowledged before it is intact. goleveldb's journal writer
// keeps its first error, so a DB does not resume writing in place once
// space is freed: after any failed write, every later Write fails at once
// with an error wrapping the first one (ErrNoSpace included) until the DB is
// closed and opened again. Reads keep working, Close works, and the torn
// journal record the failed write may leave is recovered as a torn tail by
// the next Open. goleveldb writes at every open that finds a journal (it
// turns the journal into a table); when that fails for lack of space, Open
// opens the folder read-only instead (goleveldb's ReadOnly, which replays
// the journal in memory and writes nothing): reads work, and every Write
// fails with an error wrapping engine.ErrNoSpace until the DB is reopened.
package leveldb

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/goethe-log/goethe/engine"
)

var _ engine.Engine = (*DB)(nil)

// Options tunes the goleveldb database. The zero value means the defaults
// documented on each field; Open fills them in.
type Options struct {
	// BlockCacheSize is the size in bytes of the cache of uncompressed
	// table blocks. Default 32 MiB (goleveldb's own is 8 MiB).
	BlockCacheSize int
	// WriteBufferSize is the size in bytes a memtable reaches before it is
	// written out as a level-0 table. Larger buffers mean fewer, larger
	// flushes for an append-heavy log at the cost of memory and a longer
	// journal replay on open. Default 16 MiB (goleveldb's own is 4 MiB).
	WriteBufferSize int
	// Logger receives what Open repairs (a torn journal tail it cut).
	// Default slog.Default().
	Logger *slog.Logger
}

// strictness is the goleveldb strict level every DB runs with: every
// checksum verified, and damaged journal, MANIFEST or table data an error
// rather than skipped. StrictRecovery only affects leveldb.Recover, which
// Goethe never calls.
const strictness = opt.StrictManifest | opt.StrictJournalChecksum | opt.StrictJournal |
	opt.StrictBlockChecksum | opt.StrictCompaction | opt.StrictReader

// maxTailRepairs bounds the torn tails one Open cuts: one in the current
// MANIFEST, one in the newest journal.
const maxTailRepairs = 2

func (o Options) withDefaults() Options {
	if o.BlockCacheSize <= 0 {
		o.BlockCacheSize = 32 << 20
	}
	if o.WriteBufferSize <= 0 {
		o.WriteBufferSize = 16 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// DB is an engine.Engine on a goleveldb database. It is safe for concurrent
// use; see package engine for the contract.
type DB struct {
	dir string

	// mu guards closed: every operation holds it shared, Close exclusively,
	// so Close waits for calls in flight and no call reaches a closed
	// goleveldb (whose iterators must all be released before it closes).
	mu     sync.RWMutex
	closed bool

	// writeMu orders writes: plain batches hold it shared (goleveldb merges
	// concurrent writers itself), batches with a range delete exclusively,
	// so that no write lands between the snapshot a range delete is
	// expanded from and the write of its expansion.
	writeMu sync.RWMutex

	// writeFailed holds the first failed write's error: goleveldb's journal
	// writer keeps it, so every later write fails with it until reopen.
	writeFailed atomic.Pointer[error]

	db *leveldb.DB
}

// wrapErr adds the engine sentinel callers branch on to an error from
// goleveldb: engine.ErrNoSpace for a full volume, engine.ErrCorrupted for
// damaged data.
func wrapErr(op string, err error) error {
	switch {
	case isNoSpace(err):
		return fmt.Errorf("leveldb: %s: %w: %w", op, engine.ErrNoSpace, err)
	case lerrors.IsCorrupted(err):
		return fmt.Errorf("leveldb: %s: %w: %w", op, engine.ErrCorrupted, err)
	}
	return fmt.Errorf("leveldb: %s: %w", op, err)
}

// isNoSpace reports a write that failed for lack of space or quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Open opens the goleveldb database in dir, creating dir and the database if
// they do not exist. If another DB, in this process or another, holds dir,
// Open fails at once with an error wrapping engine.ErrLocked. Damage in the
// middle of the journal or MANIFEST fails it with an error wrapping
// engine.ErrCorrupted; a crash's torn tail is cut and logged (see the
// package documentation). On a full volume it fails with an error wrapping
// engine.ErrNoSpace.
func Open(dir string, opts Options) (*DB, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("leveldb: open %s: %w", dir, err)
	}
	lopts := &opt.Options{
		BlockCacheCapacity: opts.BlockCacheSize,
		WriteBuffer:        opts.WriteBufferSize,
		// Seek-triggered compactions sample reads and compact tables that
		// are read "too often": for a log read sequentially by consumers
		// that is pure write amplification.
		DisableSeeksCompaction: true,
		Strict:                 strictness,
	}
	ldb, err := leveldb.OpenFile(dir, lopts)
	for repairs := 0; err != nil && repairs < maxTailRepairs; repairs++ {
		repaired, rerr := repairTornTail(dir, err, opts.Logger)
		if rerr != nil {
			return nil, fmt.Errorf("leveldb: open %s: %w: %w (while repairing: %w)", dir, engine.ErrCorrupted, err, rerr)
		}
		if !repaired {
			break
		}
		ldb, err = leveldb.OpenFile(dir, lopts)
	}
	var readOnlyCause error
	if err != nil && isNoSpace(err) {
		readOnlyCause = wrapErr("open "+dir, err)
		ro := *lopts
		ro.ReadOnly = true
		ldb, err = leveldb.OpenFile(dir, &ro)
		if err == nil {
			opts.Logger.Warn("leveldb: the volume is full; opened read-only until reopened", "dir", dir, "cause", readOnlyCause)
		}
	}
	if err != nil {
		// goleveldb takes the LOCK file with flock(LOCK_EX|LOCK_NB), which
		// fails with EWOULDBLOCK when another open file description (this
		// process or another) holds it.
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("leveldb: open %s: %w: %w", dir, engine.ErrLocked, err)
		}
		return nil, wrapErr("open "+dir, err)
	}
	d := &DB{dir: dir, db: ldb}
	if readOnlyCause != nil {
		d.writeFailed.Store(&readOnlyCause)
	}
	return d, nil
}

// Write applies b atomically. With sync the goleveldb journal is fsynced
// before Write returns. A write that fails for lack of space returns an
// error wrapping engine.ErrNoSpace; after any failed write the DB refuses
// writes until it is reopened (see the package documentation).
func (d *DB) Write(b *engine.Batch, sync bool) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("leveldb: write: %w", engine.ErrClosed)
	}
	if failed := d.writeFailed.Load(); failed != nil {
		return fmt.Errorf("leveldb: write refused until the engine is reopened after a failed write: %w", *failed)
	}
	if b == nil || b.Len() == 0 {
		return nil
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("leveldb: write: %w", err)
	}
	ops := b.Ops()
	hasRange := false
	for i := range ops {
		if ops[i].Kind == engine.OpDeleteRange {
			hasRange = true
			break
		}
	}
	if hasRange {
		d.writeMu.Lock()
		defer d.writeMu.Unlock()
	} else {
		d.writeMu.RLock()
		defer d.writeMu.RUnlock()
	}

	lb := leveldb.MakeBatch(len(ops))
	for i, op := range ops {
		switch op.Kind {
		case engine.OpPut:
			lb.Put(op.Key, op.Value)
		case engine.OpDelete:
			lb.Delete(op.Key)
		case engine.OpDeleteRange:
			if err := d.expandDeleteRange(lb, ops[:i], op.Key, op.End); err != nil {
				return wrapErr(fmt.Sprintf("write: delete range [%x, %x)", op.Key, op.End), err)
			}
		}
	}
	if err := d.db.Write(lb, &opt.WriteOptions{Sync: sync}); err != nil {
		err = wrapErr("write", err)
		d.writeFailed.CompareAndSwap(nil, &err)
		return err
	}
	return nil
}

// expandDeleteRange adds to lb a point delete for every key in [start, end)
// that exists once the operations before it in the batch are applied: the
// keys stored now, plus the keys earlier ops of the batch put. Deleting a key
// twice, or one an earlier op already deleted, is harmless, so the two sets
// need no merging. The caller holds writeMu exclusively, so the stored keys
// cannot change before lb is written.
func (d *DB) expandDeleteRange(lb *leveldb.Batch, earlier []engine.Op, start, end []byte) error {
	for _, op := range earlier {
		if op.Kind == engine.OpPut && bytes.Compare(op.Key, start) >= 0 && bytes.Compare(op.Key, end) < 0 {
			lb.Delete(op.Key)
		}
	}
	it := d.db.NewIterator(&util.Range{Start: start, Limit: end}, &opt.ReadOptions{DontFillCache: true})
	defer it.Release()
	for it.Next() {
		lb.Delete(it.Key()) // Delete copies the key into the batch
	}
	return it.Error()
}

// Get returns a copy of the value at key, or an error wrapping
// engine.ErrNotFound.
func (d *DB) Get(key []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("leveldb: get: %w", engine.ErrClosed)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("leveldb: get: %w: empty key", engine.ErrInvalid)
	}
	// goleveldb's Get returns its own copy of the value.
	v, err := d.db.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, fmt.Errorf("leveldb: get %x: %w", key, engine.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("get %x", key), err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Scan returns a page of the entries in [start, end) from one goleveldb
// iterator, which reads a snapshot taken when Scan starts.
func (d *DB) Scan(start, end []byte, limit, maxBytes int) ([]engine.KV, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("leveldb: scan: %w", engine.ErrClosed)
	}
	if err := engine.CheckScan(start, end, limit); err != nil {
		return nil, fmt.Errorf("leveldb: scan: %w", err)
	}
	if end != nil && bytes.Compare(start, end) >= 0 {
		return nil, nil // an empty range needs no iterator
	}
	it := d.db.NewIterator(&util.Range{Start: start, Limit: end}, nil)
	defer it.Release()
	page := engine.NewPageBuilder(limit, maxBytes)
	for it.Next() {
		if !page.Add(it.Key(), it.Value()) {
			break
		}
	}
	if err := it.Error(); err != nil {
		return nil, wrapErr("scan", err)
	}
	return page.Page(), nil
}

// Close waits for calls in flight, then closes the database and releases the
// folder. Writes that returned nil survive it: goleveldb has written them to
// its journal. Calls after Close fail with engine.ErrClosed; Close again
// returns nil.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("leveldb: close %s: %w", d.dir, err)
	}
	return nil
}
