package pebble

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// WALReserveChunk is the step in which the DB allocates the current WAL
// file's space ahead of the commits that will fill it (see walReserve):
// one fallocate per chunk of WAL written.
const WALReserveChunk = 1 << 20

// walTrailerRoom is the space kept allocated past a WAL's last committed
// record for the EOF trailer pebble writes when it closes the WAL, and the
// block padding before it (a chunk header is at most 19 bytes).
const walTrailerRoom = 64

// walRecordBound is an upper bound on the bytes a batch of n bytes takes in
// pebble's WAL: the batch, plus a chunk header of at most 19 bytes for each
// 32 KiB block it spans, plus the padding (under a header) at the end of
// each block it leaves.
func walRecordBound(n int) int64 {
	const block, header = 32 << 10, 19
	return int64(n) + 2*header*(int64(n)/(block-header)+2)
}

// walReserve keeps the space of everything committed to pebble's current
// WAL allocated on disk before the commit reaches pebble, so that pebble
// never meets a full volume while writing or closing a WAL.
//
// Why: pebble's commits without sync return before their WAL write, which
// runs in the background; a failure there is kept by the WAL writer and
// reported only when the WAL is closed, and pebble closes the WAL when a
// commit fills the memtable (rotateWAL), where a failed close panics with
// pebble's mutex released: "fatal error: sync: unlock of unlocked mutex",
// which no recover catches and which ends the process (pebble v2.1.7
// db.go:2822). Cluster mode commits without sync (the Raft log is the
// durable copy), so a full volume could end the process there.
//
// How: pebble creates WAL files only through its file system; walFS tells
// walReserve each one it creates. Before each commit, under the DB's
// commit lock, reserve allocates (fallocate with FALLOC_FL_KEEP_SIZE, in
// steps of WALReserveChunk) the current WAL up to what its committed records
// take plus this batch plus the EOF trailer; if the volume cannot give it,
// the commit is refused with an error wrapping ENOSPC before pebble sees it,
// and pebble's WAL stays whole. A commit that rotates the WAL puts its own
// record in the new WAL, before it is reserved for (at once after that
// commit); should the write meet a full volume first, vfs.OnDiskFull frees
// the ballast for its retry and records the failure, so that every later
// commit is refused and no further rotation happens on that WAL.
//
// Rotation happens only in commits: the DB never calls Flush, Compact or
// Ingest, and leaves FlushDelayDeleteRange at zero.
type walReserve struct {
	// chunk is the allocation step (WALReserveChunk; tests make it
	// smaller).
	chunk int64

	mu  sync.Mutex
	cur string // path of the newest WAL pebble created, "" before Open made one
	gen uint64 // counts the WALs created

	// The rest is used under DB.commitMu only.
	path        string // the WAL reserved is for
	seen        uint64 // gen of path
	queued      int64  // upper bound on the bytes committed to path
	reserved    int64  // bytes of path allocated from offset 0
	carry       int64  // bytes a rotating commit put in the next WAL
	unsupported bool   // the file system cannot allocate ahead: no guarantee
}

// created records that pebble created (or recycled) the WAL at path.
func (r *walReserve) created(path string) {
	r.mu.Lock()
	r.cur, r.gen = path, r.gen+1
	r.mu.Unlock()
}

func (r *walReserve) current() (string, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, r.gen
}

// reserve makes sure that the current WAL has room allocated for n more
// bytes of records and its trailer. It returns an error wrapping ENOSPC
// (or EDQUOT) when the volume cannot give it; the DB stays writable, and a
// later commit tries again.
func (r *walReserve) reserve(n int64) error {
	if r == nil {
		return nil // read-only: Write refuses before this
	}
	path, gen := r.current()
	if path == "" || r.unsupported {
		return nil
	}
	if gen != r.seen {
		r.path, r.seen, r.queued, r.reserved, r.carry = path, gen, r.carry, 0, 0
	}
	want := r.queued + n + walTrailerRoom
	if want <= r.reserved {
		return nil
	}
	size := (want + r.chunk - 1) / r.chunk * r.chunk
	err := allocate(r.path, r.reserved, size-r.reserved)
	switch {
	case err == nil:
		r.reserved = size
		return nil
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("allocate %d bytes of the WAL ahead of the commit: %w", size-r.reserved, err)
	case errors.Is(err, errAllocateUnsupported) || errors.Is(err, syscall.EOPNOTSUPP):
		r.unsupported = true
		slog.Warn("pebble: the file system cannot allocate the WAL ahead of writes; on a full volume an unsynced write can end the process in pebble's WAL rotation",
			"error", err)
		return nil
	default:
		return fmt.Errorf("allocate the WAL ahead of the commit: %w", err)
	}
}

// committed records that a commit of n record bytes, reserved for with
// reserve, reached pebble.
func (r *walReserve) committed(n int64) {
	if r == nil {
		return
	}
	if _, gen := r.current(); gen != r.seen {
		// The commit rotated the WAL: its record is in the new one, which
		// pebble may be writing already. Reserve for it at once; should the
		// write win the race on a full volume, the ballast pebble's
		// OnDiskFull hook frees is the room it retries in, and the next
		// commit's reservation refuses.
		r.carry += n
		_ = r.reserve(0)
		return
	}
	r.queued += n
}

// walFS is pebble's file system with every WAL file it creates reported
// to a walReserve.
type walFS struct {
	vfs.FS
	r *walReserve
}

// isWAL reports whether name is one of pebble's WAL files (NNNNNN.log).
func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

func (fs walFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err == nil && isWAL(name) {
		fs.r.created(name)
	}
	return f, err
}

func (fs walFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err == nil && isWAL(newname) {
		fs.r.created(newname)
	}
	return f, err
}
