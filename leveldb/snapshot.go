package leveldb

import (
	"bytes"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/goethe-log/goethe/engine"
)

var _ engine.Snapshotter = (*DB)(nil)

// Snapshot returns a goleveldb snapshot: a sequence number that pins the
// versions it can see. Writers never wait for it; what a live view costs is
// that compactions keep the entries it pins, so the view should be closed
// once streamed.
func (d *DB) Snapshot() (engine.Snapshot, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("leveldb: snapshot: %w", engine.ErrClosed)
	}
	// A range delete is expanded from the current keys under writeMu held
	// exclusively; holding it shared here keeps the view off a half-done
	// expansion (goleveldb writes the expansion as one batch anyway).
	d.writeMu.RLock()
	s, err := d.db.GetSnapshot()
	d.writeMu.RUnlock()
	if err != nil {
		return nil, wrapErr("snapshot", err)
	}
	return &snapshot{d: d, s: s}, nil
}

type snapshot struct {
	d      *DB
	s      *leveldb.Snapshot
	closed bool // guarded by d.mu held exclusively or by the view's caller
}

// Scan reads a page of the view. It fails with engine.ErrClosed once the
// view or its DB is closed.
func (v *snapshot) Scan(start, end []byte, limit, maxBytes int) ([]engine.KV, error) {
	d := v.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed || v.closed {
		return nil, fmt.Errorf("leveldb: snapshot scan: %w", engine.ErrClosed)
	}
	if err := engine.CheckScan(start, end, limit); err != nil {
		return nil, fmt.Errorf("leveldb: snapshot scan: %w", err)
	}
	if end != nil && bytes.Compare(start, end) >= 0 {
		return nil, nil
	}
	it := v.s.NewIterator(&util.Range{Start: start, Limit: end}, nil)
	defer it.Release()
	page := engine.NewPageBuilder(limit, maxBytes)
	for it.Next() {
		if !page.Add(it.Key(), it.Value()) {
			break
		}
	}
	if err := it.Error(); err != nil {
		return nil, wrapErr("snapshot scan", err)
	}
	return page.Page(), nil
}

// Close releases the snapshot.
func (v *snapshot) Close() error {
	v.d.mu.Lock()
	defer v.d.mu.Unlock()
	if !v.closed {
		v.closed = true
		v.s.Release() // safe after the DB closed: it only unpins a sequence number
	}
	return nil
}
