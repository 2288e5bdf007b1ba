// Package engine defines the contract between Goethe's log store and the
// embedded key-value engines it runs on (goleveldb, pebble, bbolt).
//
// An Engine is an ordered byte-key store with three operations: an atomic
// batch write with a per-write durability flag, a point get, and a bounded
// scan of a half-open key range. No iterator, snapshot or transaction outlives
// a single call: bbolt pins its pages for as long as a read transaction
// lives, and a slow consumer must never hold one open, so readers page.
//
// Keys are compared bytewise (bytes.Compare). Every slice an Engine returns
// belongs to the caller, who may keep and modify it; every slice a caller
// passes in may be reused by the caller once the call returns.
//
// All methods are safe for concurrent use. After Close every method returns
// an error wrapping ErrClosed; none panics.
package engine

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrNotFound is returned by Get when the key is absent.
	ErrNotFound = errors.New("engine: not found")
	// ErrClosed is returned by every call made after Close.
	ErrClosed = errors.New("engine: closed")
	// ErrLocked is returned by an adapter's Open when another Engine, in this
	// process or another one, holds the data folder.
	ErrLocked = errors.New("engine: data folder is in use by another process")
	// ErrInvalid is returned for a malformed call: an empty key, an inverted
	// range, a non-positive page limit.
	ErrInvalid = errors.New("engine: invalid argument")
	// ErrNoSpace wraps a write that failed because the volume is full
	// (ENOSPC, EDQUOT). The data written before it is intact; an adapter
	// never ends the process over it, and a later Write may succeed once
	// space is freed (or the caller reopens the engine).
	ErrNoSpace = errors.New("engine: no space left on device")
	// ErrCorrupted wraps a read, scan or open that met damaged data: a bad
	// block checksum, a broken journal or WAL record in the middle of the
	// log, an inconsistent page. It is never a panic and never a silently
	// shortened result.
	ErrCorrupted = errors.New("engine: data corrupted")
)

// Engine is an ordered byte-key store. See the package documentation for the
// ownership, concurrency and lifetime rules every implementation keeps.
type Engine interface {
	// Write applies every operation of b atomically, in order: after a crash
	// either all of them are visible or none is. With sync the data has
	// reached stable storage (fsync) when Write returns nil; without it a
	// crash of the machine, not of the process, may lose the write. An empty
	// batch is a no-op. Write does not retain b.
	Write(b *Batch, sync bool) error

	// Get returns a copy of the value stored at key, or an error wrapping
	// ErrNotFound.
	Get(key []byte) ([]byte, error)

	// Scan returns, in ascending key order, the entries whose keys lie in
	// [start, end), stopping after limit entries or after the entry that
	// brings the total of key and value bytes to maxBytes or beyond (a page
	// always holds at least one entry when one exists; maxBytes <= 0 means
	// no byte bound). A nil end means no upper bound. The scan sees a
	// consistent snapshot of the store taken at the start of the call.
	Scan(start, end []byte, limit, maxBytes int) ([]KV, error)

	// Close releases the data folder. Writes that returned nil with sync
	// survive it; Close itself flushes what the engine buffered. Close is
	// idempotent.
	Close() error
}

// KV is one entry returned by Scan. Both slices belong to the caller.
type KV struct {
	Key   []byte
	Value []byte
}

// OpKind says what an Op does.
type OpKind uint8

// The kinds of batch operation.
const (
	OpPut         OpKind = iota + 1 // set Key to Value
	OpDelete                        // remove Key if present
	OpDeleteRange                   // remove every key in [Key, End)
)

// Op is one operation of a Batch.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte // OpPut only
	End   []byte // OpDeleteRange only: exclusive upper bound
}

// Batch collects operations for one atomic Write. It is not safe for
// concurrent use. A Batch references the slices given to it until Reset:
// callers must not modify them before the Write that uses them returns.
type Batch struct {
	ops  []Op
	size int
}

// Put sets key to value.
func (b *Batch) Put(key, value []byte) {
	b.ops = append(b.ops, Op{Kind: OpPut, Key: key, Value: value})
	b.size += len(key) + len(value)
}

// Delete removes key.
func (b *Batch) Delete(key []byte) {
	b.ops = append(b.ops, Op{Kind: OpDelete, Key: key})
	b.size += len(key)
}

// DeleteRange removes every key in [start, end).
func (b *Batch) DeleteRange(start, end []byte) {
	b.ops = append(b.ops, Op{Kind: OpDeleteRange, Key: start, End: end})
	b.size += len(start) + len(end)
}

// Ops returns the batch's operations in the order they were added. The slice
// is the batch's own; adapters read it and must not modify it.
func (b *Batch) Ops() []Op { return b.ops }

// Len is the number of operations in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// Size is the total of key and value bytes in the batch.
func (b *Batch) Size() int { return b.size }

// Reset empties the batch, keeping its capacity for reuse.
func (b *Batch) Reset() {
	clear(b.ops)
	b.ops = b.ops[:0]
	b.size = 0
}

// Validate reports a malformed operation: an empty key, or a range whose end
// is not after its start. Adapters call it before touching the engine so that
// a bad batch writes nothing.
func (b *Batch) Validate() error {
	for i, op := range b.ops {
		switch op.Kind {
		case OpPut, OpDelete:
			if len(op.Key) == 0 {
				return fmt.Errorf("%w: op %d: empty key", ErrInvalid, i)
			}
		case OpDeleteRange:
			if len(op.Key) == 0 || len(op.End) == 0 || string(op.Key) >= string(op.End) {
				return fmt.Errorf("%w: op %d: range [%x, %x) is empty or inverted", ErrInvalid, i, op.Key, op.End)
			}
		default:
			return fmt.Errorf("%w: op %d: unknown kind %d", ErrInvalid, i, op.Kind)
		}
	}
	return nil
}

// CheckScan validates Scan's arguments; adapters call it first.
func CheckScan(start, end []byte, limit int) error {
	if limit <= 0 {
		return fmt.Errorf("%w: scan limit %d must be positive", ErrInvalid, limit)
	}
	if end != nil && string(start) > string(end) {
		return fmt.Errorf("%w: scan range [%x, %x) is inverted", ErrInvalid, start, end)
	}
	return nil
}

// PageBuilder accumulates a Scan page, copying keys and values out of the
// engine's buffers into a few large allocations rather than two per entry.
// Adapters use it so that a page costs O(1) allocations amortised per entry
// and the returned slices never alias engine memory.
type PageBuilder struct {
	limit, maxBytes int
	bytes           int
	arena           []byte
	kvs             []KV
}

// NewPageBuilder starts a page bounded by limit entries and maxBytes bytes.
func NewPageBuilder(limit, maxBytes int) *PageBuilder {
	n := limit
	if n > 1024 {
		n = 1024
	}
	return &PageBuilder{limit: limit, maxBytes: maxBytes, kvs: make([]KV, 0, n)}
}

// Add copies one entry into the page and reports whether the page can take
// another.
func (p *PageBuilder) Add(key, value []byte) bool {
	need := len(key) + len(value)
	if cap(p.arena)-len(p.arena) < need {
		// Chunks grow with the page so that a one-entry seek allocates what
		// it needs and a long scan allocates rarely.
		size := min(max(2*cap(p.arena), 4<<10), 256<<10)
		if p.limit == 1 || need > size {
			size = need
		}
		p.arena = make([]byte, 0, size)
	}
	start := len(p.arena)
	p.arena = append(p.arena, key...)
	p.arena = append(p.arena, value...)
	k := p.arena[start : start+len(key) : start+len(key)]
	v := p.arena[start+len(key) : start+need : start+need]
	p.kvs = append(p.kvs, KV{Key: k, Value: v})
	p.bytes += need
	if len(p.kvs) >= p.limit {
		return false
	}
	return p.maxBytes <= 0 || p.bytes < p.maxBytes
}

// Page returns the entries added so far.
func (p *PageBuilder) Page() []KV { return p.kvs }

// Snapshotter is an optional capability of an Engine, found by type
// assertion: a consistent, read-only view of every key as of one instant,
// which a replicated store streams to a lagging node. It is the one
// exception to "nothing outlives a call", and it must not stop writes for
// the view's lifetime (an adapter says what, if anything, a live view costs
// the writers). Snapshot and the returned view's methods are safe for
// concurrent use with every Engine method.
type Snapshotter interface {
	// Snapshot returns a view of the engine as of the call: a Write that
	// returned before it is visible in the view, one that starts after it
	// is not. The caller must Close the view. Closing the Engine closes the
	// views still open; their Scan then fails with ErrClosed.
	Snapshot() (Snapshot, error)
}

// Snapshot is a consistent read-only view of an Engine, taken by
// Snapshotter.Snapshot.
type Snapshot interface {
	// Scan is Engine.Scan on the view: same arguments, same paging, same
	// ownership of the returned slices, always the same answer.
	Scan(start, end []byte, limit, maxBytes int) ([]KV, error)
	// Close releases the view; it is idempotent.
	Close() error
}
