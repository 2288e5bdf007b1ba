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
package leveldb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/syndtr/goleveldb/leveldb"
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
}

func (o Options) withDefaults() Options {
	if o.BlockCacheSize <= 0 {
		o.BlockCacheSize = 32 << 20
	}
	if o.WriteBufferSize <= 0 {
		o.WriteBufferSize = 16 << 20
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

	db *leveldb.DB
}

// Open opens the goleveldb database in dir, creating dir and the database if
// they do not exist. If another DB, in this process or another, holds dir,
// Open fails at once with an error wrapping engine.ErrLocked.
func Open(dir string, opts Options) (*DB, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("leveldb: open %s: %w", dir, err)
	}
	ldb, err := leveldb.OpenFile(dir, &opt.Options{
		BlockCacheCapacity: opts.BlockCacheSize,
		WriteBuffer:        opts.WriteBufferSize,
		// Seek-triggered compactions sample reads and compact tables that
		// are read "too often": for a log read sequentially by consumers
		// that is pure write amplification.
		DisableSeeksCompaction: true,
	})
	if err != nil {
		// goleveldb takes the LOCK file with flock(LOCK_EX|LOCK_NB), which
		// fails with EWOULDBLOCK when another open file description (this
		// process or another) holds it.
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("leveldb: open %s: %w: %w", dir, engine.ErrLocked, err)
		}
		return nil, fmt.Errorf("leveldb: open %s: %w", dir, err)
	}
	return &DB{dir: dir, db: ldb}, nil
}

// Write applies b atomically. With sync the goleveldb journal is fsynced
// before Write returns.
func (d *DB) Write(b *engine.Batch, sync bool) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("leveldb: write: %w", engine.ErrClosed)
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
				return fmt.Errorf("leveldb: write: delete range [%x, %x): %w", op.Key, op.End, err)
			}
		}
	}
	if err := d.db.Write(lb, &opt.WriteOptions{Sync: sync}); err != nil {
		return fmt.Errorf("leveldb: write: %w", err)
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
		return nil, fmt.Errorf("leveldb: get %x: %w", key, err)
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
		return nil, fmt.Errorf("leveldb: scan: %w", err)
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
