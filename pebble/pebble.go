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
//
// # Integrity
//
// pebble itself tells a torn WAL tail from damage in the middle of a WAL:
// its reader looks past an unreadable chunk for the sync offsets later
// chunks record, so the torn tail a crash leaves in the newest WAL is
// dropped and Open succeeds with every synced write, while damage followed
// by intact records fails Open (wrapped here in engine.ErrCorrupted). A
// table block with a bad checksum fails the Get or Scan that meets it with
// engine.ErrCorrupted: pebble's DataCorruption event is logged, not fatal.
// pebble's MANIFEST reader, however, stops at the first unreadable chunk
// and opens with the versions before it, silently (32 damaged bytes in the
// first record open an empty store); Open therefore checks the current
// MANIFEST first and fails with engine.ErrCorrupted when intact records
// follow a damaged one or when none is intact. This costs one read of the
// MANIFEST per Open.
//
// # Full volume
//
// pebble treats a failed WAL or MANIFEST write as fatal: it calls
// Logger.Fatalf, whose default ends the process, and a commit whose WAL
// write failed has already been applied to the memtable and is visible.
// The adapter's Logger never ends the process over an I/O error: it
// records the failure, and the DB stops writing. The Write that met it
// returns an error wrapping engine.ErrNoSpace (for ENOSPC or EDQUOT) and
// the syscall's error; before it returns, the DB closes its pebble
// instance and opens the folder again read-only (pebble's ReadOnly, which
// writes nothing), so reads keep working and see exactly the writes
// acknowledged before the failure. The same happens when a background
// flush or compaction fails for lack of space (pebble would retry it in a
// tight loop, logging each time); background errors are logged at most
// once per BackgroundErrorLogInterval.
//
// A DB does not resume writing in place: after a failed write every Write
// fails at once with an error wrapping the first failure until the DB is
// closed and opened again, which works once space is free (Close works
// after the failure). Open on a full volume opens the folder read-only in
// the same way: reads work, writes fail with engine.ErrNoSpace until the DB
// is reopened. It does so when the volume has less free space than the WAL
// to replay plus Options.OpenMinFreeBytes, because pebble's read-write Open
// waits for a flush of the replayed WAL that on a full volume is retried
// forever, and when a read-write open fails for lack of space.
//
// The failure is recorded the moment any pebble write meets ENOSPC (its
// file system is wrapped with vfs.OnDiskFull), including writes of the WAL
// in the background after unsynced commits, so Write refuses from then on.
// At that moment the DB also removes its ballast file (BallastFile,
// Options.BallastBytes, recreated at every read-write Open), so that the
// writes pebble has in flight are retried with room to complete.
//
// pebble's WAL rotation panics, with its mutex released and so fatally,
// when closing the old WAL fails, and a commit without sync returns before
// its WAL write, so that a full volume met by that write surfaces only at
// the next rotation. The DB therefore allocates the WAL's space before each
// commit reaches pebble (see walReserve, WALReserveChunk): a commit the
// volume has no room for is refused with engine.ErrNoSpace before pebble
// sees it, and the DB stays writable (the next Write tries again). A
// rotation thus never closes a WAL whose writes lacked space.
//
// Limits: if the volume fills up between that check and the flush, Open
// still hangs in pebble (the window is the flush of the replayed WAL); a
// read that runs between the failed commit and the switch to read-only may
// see the failed batch; a commit already inside pebble when the WAL fails
// may block until Close (pebble's commit pipeline does not recover). A
// commit that rotates the WAL writes its record to the new WAL before that
// one is reserved for: if the volume is full then and the record is larger
// than the ballast, that unsynced write is lost although Write returned nil
// (a synced one fails). On a file system without fallocate (not Linux, or
// one that refuses it) there is no reservation, and a full volume met by an
// unsynced WAL write can still end the process at the next rotation; the DB
// logs a warning. Other fatal pebble errors (invariant violations, a WAL
// that fails to close for another reason than space) still end the
// process, as pebble requires.
package pebble

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
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
	// Whatever the Logger, a fatal message about a failed write (one that
	// carries an error) never reaches its Fatalf: the DB logs it with
	// Errorf and stops writing (see the package documentation).
	Logger pebble.Logger
	// BackgroundErrorLogInterval bounds how often a repeating background
	// error (a flush failing on a full volume) is logged. Default 1 minute.
	BackgroundErrorLogInterval time.Duration
	// OpenMinFreeBytes is the free space, beyond the size of the WAL files
	// to replay, below which Open does not try a read-write open and opens
	// read-only at once: pebble's read-write Open flushes the replayed WAL
	// and waits for that flush, which on a full volume fails and is retried
	// forever, so Open would never return. Default 4 MiB.
	OpenMinFreeBytes uint64
	// BallastBytes is the size of the ballast file (BallastFile) a
	// read-write DB keeps in its folder and removes the moment a pebble
	// write meets a full volume, so that the writes pebble has in flight
	// (a flush or compaction, the record of a commit that rotated the WAL)
	// complete. Default 1 MiB; it is recreated at the next read-write Open.
	BallastBytes int64
}

// DefaultBallastBytes is the default of Options.BallastBytes.
const DefaultBallastBytes = 1 << 20

// BallastFile is the name of the ballast file in the data folder.
const BallastFile = "GOETHE-BALLAST"

// DefaultOpenMinFreeBytes is the default of Options.OpenMinFreeBytes.
const DefaultOpenMinFreeBytes = 4 << 20

// DefaultBackgroundErrorLogInterval is the default of
// Options.BackgroundErrorLogInterval.
const DefaultBackgroundErrorLogInterval = time.Minute

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
	if o.BallastBytes <= 0 {
		o.BallastBytes = DefaultBallastBytes
	}
	if o.OpenMinFreeBytes == 0 {
		o.OpenMinFreeBytes = DefaultOpenMinFreeBytes
	}
	if o.BackgroundErrorLogInterval <= 0 {
		o.BackgroundErrorLogInterval = DefaultBackgroundErrorLogInterval
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

// failState is where pebble's fatal messages and background errors about
// failed writes land. It is created before pebble opens, because pebble
// may fail in the background during Open.
type failState struct {
	// err is the first failure: once set, Write refuses.
	err atomic.Pointer[error]
	// fatal is the first failure pebble itself could not complete an
	// operation over (a Fatalf, a background error); a volume found full
	// with the ballast still there to absorb in-flight writes is not one.
	fatal atomic.Pointer[error]
	// onFail, once set, switches the DB to read-only; it must not block
	// (pebble calls in with its own locks held).
	onFail atomic.Pointer[func()]

	logger   pebble.Logger
	interval time.Duration

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int
}

// fail records err as the DB's write failure (the first one wins) and
// triggers the switch to read-only.
func (s *failState) fail(err error) {
	s.err.CompareAndSwap(nil, &err)
	if f := s.onFail.Load(); f != nil {
		(*f)()
	}
}

// failFatal records err as a failure pebble could not complete an
// operation over, and as the DB's write failure.
func (s *failState) failFatal(err error) {
	s.fatal.CompareAndSwap(nil, &err)
	s.fail(err)
}

// fatalErr returns the first failure recorded by failFatal, or nil.
func (s *failState) fatalErr() error {
	if p := s.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *failState) failed() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// logLimited logs a background error at most once per interval, saying
// how many were not logged in between.
func (s *failState) logLimited(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if now := time.Now(); now.Sub(s.lastLog) >= s.interval {
		if s.suppressed > 0 {
			format += fmt.Sprintf(" (%d more since the last one logged)", s.suppressed)
		}
		s.logger.Errorf(format, args...)
		s.lastLog, s.suppressed = now, 0
		return
	}
	s.suppressed++
}

// guardLogger passes pebble's messages on, except that a fatal message
// that carries an error (a failed WAL or MANIFEST write, a commit that
// failed) is recorded as the DB's write failure and logged as an error
// instead of ending the process. pebble continues after such a Fatalf as if
// the operation had failed (it returns the error, or in the commit path
// returns as if committed, which Write catches by checking the failure
// after every commit).
type guardLogger struct {
	inner pebble.Logger
	state *failState
}

func (l guardLogger) Infof(format string, args ...any)  { l.inner.Infof(format, args...) }
func (l guardLogger) Errorf(format string, args ...any) { l.inner.Errorf(format, args...) }
func (l guardLogger) Fatalf(format string, args ...any) {
	for _, a := range args {
		if err, ok := a.(error); ok {
			l.inner.Errorf("fatal error, the engine stops taking writes: "+format, args...)
			l.state.failFatal(err)
			return
		}
	}
	l.inner.Fatalf(format, args...)
}

// DB is an engine.Engine on a pebble database. It is safe for concurrent
// use; see package engine for the contract.
type DB struct {
	dir   string
	canon string
	opts  Options
	state *failState

	// mu guards closed, db and readOnly: every operation holds it shared,
	// Close and the switch to read-only exclusively, so they wait for calls
	// in flight and no call reaches a closed pebble, which would panic.
	mu       sync.RWMutex
	closed   bool
	readOnly bool
	// db is nil when the read-only open after a failure failed too; reads
	// then return roErr.
	db    *pebble.DB
	roErr error
	lock  *pebble.Lock

	// commitMu serialises commits with the reservation of their WAL
	// space; wal is the read-write pebble's reservation (nil read-only).
	commitMu sync.Mutex
	wal      *walReserve

	// snaps are the views Snapshot handed out and not yet closed; Close
	// and the switch to read-only close them first.
	snapMu sync.Mutex
	snaps  map[*snapshot]struct{}
}

// errDiskFull is the failure recorded when pebble's file system reports
// that a write met a full volume.
var errDiskFull = fmt.Errorf("a write found the volume full: %w", syscall.ENOSPC)

// isNoSpace reports a write that failed for lack of space or quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// wrapErr adds the engine sentinel callers branch on to an error from
// pebble: engine.ErrNoSpace for a full volume, engine.ErrCorrupted for
// damaged data.
func wrapErr(op string, err error) error {
	switch {
	case isNoSpace(err):
		return fmt.Errorf("pebble: %s: %w: %w", op, engine.ErrNoSpace, err)
	case pebble.IsCorruptionError(err):
		return fmt.Errorf("pebble: %s: %w: %w", op, engine.ErrCorrupted, err)
	}
	return fmt.Errorf("pebble: %s: %w", op, err)
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
	if err := checkManifest(canon); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	d := &DB{dir: dir, canon: canon, opts: opts, lock: lock,
		state: &failState{logger: opts.Logger, interval: opts.BackgroundErrorLogInterval}}
	var pdb *pebble.DB
	if lack := d.lackOfSpace(); lack != nil {
		err = lack
	} else if err = ensureBallast(filepath.Join(canon, BallastFile), opts.BallastBytes); err == nil {
		pdb, err = d.openPebble(false)
	}
	if err != nil && isNoSpace(err) {
		// Serve reads from what is on disk; writes wait for a reopen.
		d.state.fail(err)
		if pdb, err = d.openPebble(true); err == nil {
			d.readOnly = true
			slog.Warn("pebble: the volume is full; opened read-only until reopened", "dir", dir, "cause", d.state.failed())
		}
	}
	if err != nil {
		_ = lock.Close()
		return nil, wrapErr("open "+dir, err)
	}
	d.db = pdb
	switchRO := func() { go d.switchToReadOnly() }
	d.state.onFail.Store(&switchRO)
	if d.state.failed() != nil {
		// pebble failed in the background during Open; a no-op when the
		// DB opened read-only.
		d.switchToReadOnly()
	}
	return d, nil
}

// lackOfSpace returns an error wrapping ENOSPC when the volume has less
// free space than a read-write open needs: the WAL files it replays and
// flushes, plus Options.OpenMinFreeBytes. It returns nil when there is
// enough, or when the free space cannot be told.
func (d *DB) lackOfSpace() error {
	free, ok := freeBytes(d.canon)
	if !ok {
		return nil
	}
	need := d.opts.OpenMinFreeBytes
	if st, err := os.Stat(filepath.Join(d.canon, BallastFile)); err != nil || st.Size() != d.opts.BallastBytes {
		need += uint64(d.opts.BallastBytes)
	}
	entries, err := os.ReadDir(d.canon)
	if err != nil {
		return nil // pebble's own open reports it
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			if info, err := e.Info(); err == nil {
				need += uint64(info.Size())
			}
		}
	}
	if free >= need {
		return nil
	}
	return fmt.Errorf("%d bytes free, a read-write open needs %d (the WAL to replay and Options.OpenMinFreeBytes): %w",
		free, need, syscall.ENOSPC)
}

// ensureBallast makes sure the file at path holds size bytes of allocated
// space, writing it (through a temporary file, synced) if it does not.
func ensureBallast(path string, size int64) error {
	if st, err := os.Stat(path); err == nil && st.Size() == size {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create ballast: %w", err)
	}
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = 0xBA // not zeroes, so that no file system leaves it sparse
	}
	for left := size; left > 0 && err == nil; left -= int64(len(buf)) {
		_, err = f.Write(buf[:min(left, int64(len(buf)))])
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write a %d-byte ballast: %w", size, err)
	}
	return nil
}

// openPebble opens the folder with the DB's options, read-only or not.
func (d *DB) openPebble(readOnly bool) (*pebble.DB, error) {
	maxCompactions := d.opts.MaxConcurrentCompactions
	state := d.state
	// OnDiskFull calls back in the goroutine whose write met ENOSPC,
	// before pebble sees the error: the failure is recorded, and Write
	// refuses, before a later commit can reach pebble's WAL rotation,
	// which panics over a failed WAL with pebble's mutex released (a fatal
	// "unlock of unlocked mutex", not recoverable).
	var fs vfs.FS = vfs.OnDiskFull(vfs.Default, func() {
		// Runs while pebble's writes wait; they are retried once after.
		_ = os.Remove(filepath.Join(d.canon, BallastFile))
		state.fail(errDiskFull)
	})
	var wal *walReserve
	if !readOnly {
		// Every WAL pebble creates gets its space allocated ahead of the
		// commits that fill it (see walReserve).
		wal = &walReserve{chunk: WALReserveChunk}
		fs = walFS{FS: fs, r: wal}
	}
	po := &pebble.Options{
		FS:                          fs,
		Lock:                        d.lock,
		ReadOnly:                    readOnly,
		CacheSize:                   d.opts.CacheSize,
		MemTableSize:                d.opts.MemTableSize,
		MemTableStopWritesThreshold: d.opts.MemTableStopWritesThreshold,
		L0CompactionThreshold:       d.opts.L0CompactionThreshold,
		L0StopWritesThreshold:       d.opts.L0StopWritesThreshold,
		CompactionConcurrencyRange:  func() (int, int) { return 1, maxCompactions },
		// New stores start on the newest stable format (columnar blocks,
		// faster scans); existing ones are ratcheted up to it.
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             guardLogger{inner: d.opts.Logger, state: state},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				if isNoSpace(err) {
					state.failFatal(err)
				}
				state.logLimited("pebble: background error: %v", err)
			},
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				// The read that met it fails with the corruption error.
				d.opts.Logger.Errorf("pebble: on-disk corruption: %s", info)
			},
		},
	}
	uncompressedL0(po)
	pdb, err := pebble.Open(d.canon, po)
	if err == nil && wal != nil {
		d.wal = wal
	}
	return pdb, err
}

// uncompressedL0 leaves level 0 uncompressed and compresses the levels below
// with pebble's default (Snappy). Level 0 is transient: a flush writes every
// byte there once and the first compaction rewrites it, compressed, into the
// level below, so compressing it too cost a second compression of each byte
// (and a wasted one for payloads that do not compress, stored uncompressed
// anyway): Snappy on flushes was ~4% of a 3-node cluster's CPU on workload
// (b). (Unset levels inherit the level above's compression, so each is set.)
func uncompressedL0(o *pebble.Options) {
	for i := range o.Levels {
		o.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.SnappyCompression }
	}
	o.Levels[0].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
}

// switchToReadOnly closes the read-write pebble after a failed write and
// opens the folder read-only, so that reads go on and see only what was
// acknowledged. It runs once; later calls return at once.
func (d *DB) switchToReadOnly() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.readOnly {
		return
	}
	d.readOnly = true
	cause := d.state.failed()
	d.closeSnapshots()
	if err := closePebble(d.db); err != nil {
		slog.Warn("pebble: closing after a failed write", "dir", d.dir, "error", err)
	}
	pdb, err := d.openPebble(true)
	if err != nil {
		d.db, d.roErr = nil, wrapErr("reopen read-only after a failed write", err)
		slog.Error("pebble: could not reopen read-only after a failed write; reads fail until reopened",
			"dir", d.dir, "cause", cause, "error", err)
		return
	}
	d.db = pdb
	slog.Warn("pebble: a write failed; serving reads read-only until the engine is reopened", "dir", d.dir, "cause", cause)
}

// closePebble closes db, turning a panic (pebble's reaction to some states
// a failed write leaves) into an error.
func closePebble(db *pebble.DB) (err error) {
	if db == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pebble: close panicked: %v", r)
		}
	}()
	return db.Close()
}

// reader returns the pebble instance reads use; the caller holds mu.
func (d *DB) reader(op string) (*pebble.DB, error) {
	if d.closed {
		return nil, fmt.Errorf("pebble: %s: %w", op, engine.ErrClosed)
	}
	if d.db == nil {
		return nil, fmt.Errorf("pebble: %s: %w", op, d.roErr)
	}
	return d.db, nil
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
// fsynced before Write returns. A write that fails for lack of space
// returns an error wrapping engine.ErrNoSpace, and the DB serves reads
// only until it is reopened (see the package documentation).
func (d *DB) Write(b *engine.Batch, sync bool) error {
	err := d.write(b, sync)
	if err != nil && d.state.failed() != nil {
		d.switchToReadOnly()
	}
	return err
}

func (d *DB) write(b *engine.Batch, sync bool) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("pebble: write: %w", engine.ErrClosed)
	}
	if failed := d.state.failed(); failed != nil {
		return fmt.Errorf("pebble: write refused until the engine is reopened after a failed write: %w",
			wrapErr("write", failed))
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
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	record := walRecordBound(len(pb.Repr()))
	if err := d.wal.reserve(record); err != nil {
		// Nothing reached pebble: the DB stays writable.
		return wrapErr("write", err)
	}
	if err := pb.Commit(wo); err != nil {
		d.state.failFatal(err)
		return wrapErr("write", err)
	}
	d.wal.committed(record)
	// A failed WAL write reaches pebble's Logger.Fatalf on this goroutine,
	// after which Commit returns nil: the failure recorded is the answer.
	// A volume found full during the commit, whose writes then completed
	// in the space the ballast left, is not a failure of this write: it
	// is durable, and the next Write is refused.
	if failed := d.state.fatalErr(); failed != nil {
		return wrapErr("write", failed)
	}
	return nil
}

// Get returns a copy of the value at key, or an error wrapping
// engine.ErrNotFound.
func (d *DB) Get(key []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	db, err := d.reader("get")
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("pebble: get: %w: empty key", engine.ErrInvalid)
	}
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("pebble: get %x: %w", key, engine.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("get %x", key), err)
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
	db, err := d.reader("scan")
	if err != nil {
		return nil, err
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
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return nil, wrapErr("scan", err)
	}
	page := engine.NewPageBuilder(limit, maxBytes)
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, wrapErr("scan", err)
		}
		if !page.Add(it.Key(), v) {
			break
		}
	}
	if err := it.Close(); err != nil { // Close returns the iterator's error
		return nil, wrapErr("scan", err)
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
	d.closeSnapshots()
	err := closePebble(d.db)
	if lerr := d.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("pebble: close %s: %w", d.dir, err)
	}
	return nil
}
