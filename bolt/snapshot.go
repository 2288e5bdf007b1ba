package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/goethe-log/goethe/engine"
)

var _ engine.Snapshotter = (*DB)(nil)

// snapshotPattern names the copies Snapshot makes in the data folder; Open
// removes the ones a crash left behind.
const snapshotPattern = "snapshot-*.db"

// Snapshot copies the database, from one read-only transaction, to a
// temporary file in the data folder and returns a view of that copy.
//
// A live bbolt read transaction is a consistent view, but a write that must
// grow the memory map waits for every read transaction to end: a view
// streamed to a slow peer would stop writes for as long as it lives. The
// copy bounds that to the time of a local file copy (writes go on during
// it unless the map must grow), at the price of the copy's disk space,
// which Close gives back. The copy is made on the caller's goroutine (under
// Raft, the one that applies entries, which waits for it); copying lazily
// on the view's first Scan instead would let a write that grows the map
// wait on a transaction only that Scan ends, a deadlock when one goroutine
// writes and then reads the view. Closing the DB closes the views still
// open.
func (d *DB) Snapshot() (engine.Snapshot, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("bolt: snapshot: %w", engine.ErrClosed)
	}
	f, err := os.CreateTemp(d.dir, snapshotPattern)
	if err != nil {
		return nil, fmt.Errorf("bolt: snapshot: %w", err)
	}
	path := f.Name()
	err = d.db.View(func(tx *bbolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("bolt: snapshot: copy: %w", err)
	}
	cdb, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("bolt: snapshot: open copy: %w", err)
	}
	v := &snapshot{d: d, db: cdb, path: path}
	d.snapMu.Lock()
	if d.snaps == nil {
		d.snaps = make(map[*snapshot]struct{})
	}
	d.snaps[v] = struct{}{}
	d.snapMu.Unlock()
	return v, nil
}

// closeSnapshots closes every open view; the caller holds d.mu exclusively.
func (d *DB) closeSnapshots() {
	d.snapMu.Lock()
	views := make([]*snapshot, 0, len(d.snaps))
	for v := range d.snaps {
		views = append(views, v)
	}
	clear(d.snaps)
	d.snapMu.Unlock()
	for _, v := range views {
		_ = v.Close()
	}
}

// removeSnapshotFiles deletes the copies a crash left in dir.
func removeSnapshotFiles(dir string) error {
	paths, err := filepath.Glob(filepath.Join(dir, snapshotPattern))
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

type snapshot struct {
	d    *DB
	path string

	mu     sync.RWMutex // Close waits for scans in flight
	db     *bbolt.DB
	closed bool
}

// Scan reads a page of the copy. It fails with engine.ErrClosed once the
// view or its DB is closed.
func (v *snapshot) Scan(start, end []byte, limit, maxBytes int) ([]engine.KV, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return nil, fmt.Errorf("bolt: snapshot scan: %w", engine.ErrClosed)
	}
	if err := engine.CheckScan(start, end, limit); err != nil {
		return nil, fmt.Errorf("bolt: snapshot scan: %w", err)
	}
	if end != nil && string(start) >= string(end) {
		return nil, nil
	}
	page := engine.NewPageBuilder(limit, maxBytes)
	err := v.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketName).Cursor()
		var k, val []byte
		if len(start) == 0 {
			k, val = c.First()
		} else {
			k, val = c.Seek(start)
		}
		for ; k != nil; k, val = c.Next() {
			if end != nil && bytes.Compare(k, end) >= 0 {
				break
			}
			if !page.Add(k, val) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: snapshot scan: %w", err)
	}
	return page.Page(), nil
}

// Close closes and deletes the copy; it is idempotent.
func (v *snapshot) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil
	}
	v.closed = true
	v.d.snapMu.Lock()
	delete(v.d.snaps, v)
	v.d.snapMu.Unlock()
	err := v.db.Close()
	if rerr := os.Remove(v.path); err == nil && !errors.Is(rerr, os.ErrNotExist) {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("bolt: close snapshot: %w", err)
	}
	return nil
}
