package pebble

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/goethe-log/goethe/engine"
)

var _ engine.Snapshotter = (*DB)(nil)

// Snapshot returns a pebble snapshot: a sequence number that pins the
// versions it can see. Writers never wait for it; compactions keep the
// entries it pins until it is closed. Closing the DB, or its switch to
// read-only after a failed write, closes the views still open (pebble
// refuses to close with live snapshots).
func (d *DB) Snapshot() (engine.Snapshot, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.readOnly {
		return nil, fmt.Errorf("pebble: snapshot: %w", engine.ErrClosed)
	}
	db, err := d.reader("snapshot")
	if err != nil {
		return nil, err
	}
	v := &snapshot{d: d, s: db.NewSnapshot()}
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
	defer d.snapMu.Unlock()
	for v := range d.snaps {
		v.closeLocked()
	}
	clear(d.snaps)
}

type snapshot struct {
	d      *DB
	s      *pebble.Snapshot
	closed bool // guarded by d.snapMu
}

func (v *snapshot) closeLocked() {
	if !v.closed {
		v.closed = true
		_ = v.s.Close()
	}
}

// Scan reads a page of the view. It fails with engine.ErrClosed once the
// view or its DB is closed.
func (v *snapshot) Scan(start, end []byte, limit, maxBytes int) ([]engine.KV, error) {
	d := v.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	d.snapMu.Lock()
	closed := v.closed
	d.snapMu.Unlock()
	if d.closed || closed {
		return nil, fmt.Errorf("pebble: snapshot scan: %w", engine.ErrClosed)
	}
	if err := engine.CheckScan(start, end, limit); err != nil {
		return nil, fmt.Errorf("pebble: snapshot scan: %w", err)
	}
	if end != nil && string(start) >= string(end) {
		return nil, nil
	}
	if len(start) == 0 {
		start = nil // see Scan
	}
	// The view cannot be closed meanwhile: Close takes d.mu exclusively
	// before it closes views, and Close of the view itself is the
	// caller's, who does not call it during its own Scan.
	it, err := v.s.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return nil, wrapErr("snapshot scan", err)
	}
	page := engine.NewPageBuilder(limit, maxBytes)
	for ok := it.First(); ok; ok = it.Next() {
		val, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, wrapErr("snapshot scan", err)
		}
		if !page.Add(it.Key(), val) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return nil, wrapErr("snapshot scan", err)
	}
	return page.Page(), nil
}

// Close releases the snapshot; it is idempotent.
func (v *snapshot) Close() error {
	d := v.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	d.snapMu.Lock()
	defer d.snapMu.Unlock()
	if v.closed {
		return nil
	}
	v.closed = true
	delete(d.snaps, v)
	if err := v.s.Close(); err != nil {
		return fmt.Errorf("pebble: close snapshot: %w", err)
	}
	return nil
}
