// Package faultengine wraps an engine.Engine with faults that tests arm and
// disarm at run time: failed writes, writes that are applied yet reported
// failed, failed reads, and a hook that holds writes in progress.
//
// # Basics
//
// Wrap returns an Engine that passes every call to the wrapped engine
// unchanged while no fault is armed. Faults may be armed, disarmed and
// inspected from any goroutine, concurrently with the engine's own calls.
// Every injected error wraps ErrInjected, so a test tells an injected failure
// from a real one with errors.Is. A write fault armed with a cause
// (FailWritesWith, FailNextWritesWith) wraps that cause too: with
// engine.ErrNoSpace it stands for a full volume, the way an adapter reports
// ENOSPC.
//
// A write fault is decided once per Write call, when the call leaves the
// blocking hook (see BlockWrites): the fault armed at that moment applies.
// Arming a write fault replaces the one armed before it.
//
// # Caveats
//
// Faults apply to every Write call, including an empty or invalid batch and
// calls made after Close: BeforeApply then returns ErrInjected where the
// wrapped engine would have returned nil, engine.ErrInvalid or
// engine.ErrClosed. Close itself is never failed or held.
//
// This package is for tests. Nothing in a production path should wrap its
// engine with it.
package faultengine

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/goethe-log/goethe/engine"
)

var _ engine.Engine = (*Engine)(nil)

// ErrInjected is wrapped by every error the Engine makes up itself, never by
// an error of the wrapped engine.
var ErrInjected = errors.New("faultengine: injected fault")

// Mode says what a write fault does to the wrapped engine.
type Mode int

const (
	// BeforeApply fails a Write before it reaches the wrapped engine: the
	// engine receives nothing, and nothing of the batch ever becomes
	// visible. It models a write rejected outright (a full disk, an I/O
	// error on the journal append). It is the zero Mode.
	BeforeApply Mode = iota

	// AfterApply passes the batch to the wrapped engine and then returns an
	// error wrapping ErrInjected even though the engine accepted it: the
	// outcome-unknown case of a failed fsync. Readers of the wrapped engine
	// may see the batch, and with sync it survives a reopen. A store must
	// treat the write as neither done nor undone, which is why store tests
	// use this mode to check that it refuses further writes. If the wrapped
	// engine itself fails the write, its error is returned unchanged.
	AfterApply
)

// String names the mode for error messages.
func (m Mode) String() string {
	switch m {
	case BeforeApply:
		return "before apply"
	case AfterApply:
		return "after apply"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Stats counts the calls an Engine has seen since Wrap.
type Stats struct {
	Writes   int64 // Write calls made, whatever their outcome
	Syncs    int64 // of Writes, those with sync=true
	Failed   int64 // of Writes, those that returned an error, injected or not
	Injected int64 // of Failed, those failed by an armed write fault
}

// writeFault is the armed write fault; its zero value is "none".
type writeFault struct {
	armed bool
	mode  Mode
	left  int                      // > 0: fail only this many more writes
	pred  func(*engine.Batch) bool // nil: every write
	cause error                    // nil: the error wraps ErrInjected only
}

// Engine is an engine.Engine that injects the faults armed on it into the
// calls it passes to the engine it wraps. It is safe for concurrent use.
type Engine struct {
	e engine.Engine

	mu        sync.Mutex
	write     writeFault
	failReads bool
	blocks    int        // BlockWrites calls not yet released
	unblocked *sync.Cond // on mu: broadcast when blocks drops to 0
	waiting   int        // writes held at the hook now

	writes, syncs, failed, injected atomic.Int64
}

// Wrap returns an Engine over e with no fault armed. The Engine owns no
// resource of its own: closing it closes e.
func Wrap(e engine.Engine) *Engine {
	f := &Engine{e: e}
	f.unblocked = sync.NewCond(&f.mu)
	return f
}

// Unwrap returns the wrapped engine, for a test that reads past the faults
// (to see whether an AfterApply batch landed, say).
func (f *Engine) Unwrap() engine.Engine { return f.e }

// FailNextWrites fails the next n Write calls with mode, then disarms
// itself; n <= 0 disarms the write fault. Each call decided while it is
// armed counts, whatever its batch.
func (f *Engine) FailNextWrites(n int, mode Mode) {
	if n <= 0 {
		f.armWrite(writeFault{})
		return
	}
	f.armWrite(writeFault{armed: true, mode: mode, left: n})
}

// FailWrites fails every Write call with mode until Disarm or until another
// write fault replaces it.
func (f *Engine) FailWrites(mode Mode) {
	f.armWrite(writeFault{armed: true, mode: mode})
}

// FailWritesWith is FailWrites with an error that wraps cause as well as
// ErrInjected: FailWritesWith(mode, engine.ErrNoSpace) makes every write
// fail as on a full volume. cause's text is part of the message, so a test
// can give it a path (an *fs.PathError joined to engine.ErrNoSpace) to see
// where the path travels. A nil cause is FailWrites.
func (f *Engine) FailWritesWith(mode Mode, cause error) {
	f.armWrite(writeFault{armed: true, mode: mode, cause: cause})
}

// FailNextWritesWith is FailNextWrites with an error that wraps cause as
// well as ErrInjected (see FailWritesWith).
func (f *Engine) FailNextWritesWith(n int, mode Mode, cause error) {
	if n <= 0 {
		f.armWrite(writeFault{})
		return
	}
	f.armWrite(writeFault{armed: true, mode: mode, left: n, cause: cause})
}

// FailWritesIf fails, with mode, every Write call whose batch pred holds for,
// until Disarm or until another write fault replaces it; other writes pass.
// pred runs on the writing goroutine without the Engine's lock held, so it
// may call the Engine; it must not modify the batch, which may be nil. A nil
// pred disarms the write fault.
func (f *Engine) FailWritesIf(mode Mode, pred func(*engine.Batch) bool) {
	f.armWrite(writeFault{armed: pred != nil, mode: mode, pred: pred})
}

func (f *Engine) armWrite(w writeFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write = w
}

// FailReads fails every Get and Scan with an error wrapping ErrInjected,
// without calling the wrapped engine, until Disarm.
func (f *Engine) FailReads() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failReads = true
}

// Disarm clears the write fault and the read fault. A Write already past
// its fault decision keeps its outcome; a Write held by BlockWrites is
// decided when it is released. Disarm does not release held writes.
func (f *Engine) Disarm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write = writeFault{}
	f.failReads = false
}

// BlockWrites holds every Write call that reaches the hook, before its fault
// is decided and before the wrapped engine sees it, until release is called.
// Writes already past the hook are not affected; Get, Scan and Close are
// never held. Blocks nest: writes pass once every BlockWrites call has been
// released. release is idempotent and safe to call from any goroutine; a
// test should defer it (or t.Cleanup it) so that a failure cannot leave a
// writer hanging. Waiting tells how many writes are held.
func (f *Engine) BlockWrites() (release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocks++
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.blocks--
			if f.blocks == 0 {
				f.unblocked.Broadcast()
			}
		})
	}
}

// Waiting returns the number of Write calls held at the hook right now. A
// test polls it (require.Eventually) to know that a write is in progress.
func (f *Engine) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting
}

// Stats returns the counters. Each is read atomically, but a Write running
// concurrently may be counted in some and not yet in others.
func (f *Engine) Stats() Stats {
	return Stats{
		Writes:   f.writes.Load(),
		Syncs:    f.syncs.Load(),
		Failed:   f.failed.Load(),
		Injected: f.injected.Load(),
	}
}

// Write counts the call, waits at the hook while writes are blocked, then
// applies the armed write fault, if any applies to b, or passes b on.
func (f *Engine) Write(b *engine.Batch, sync bool) error {
	f.writes.Add(1)
	if sync {
		f.syncs.Add(1)
	}
	fail, mode, cause := f.decide(b)
	var err error
	if !fail || mode == AfterApply {
		err = f.e.Write(b, sync)
	}
	if fail && err == nil {
		f.injected.Add(1)
		if cause != nil {
			err = fmt.Errorf("faultengine: write of %d ops (sync=%t) failed %v: %w: %w", opsIn(b), sync, mode, ErrInjected, cause)
		} else {
			err = fmt.Errorf("faultengine: write of %d ops (sync=%t) failed %v: %w", opsIn(b), sync, mode, ErrInjected)
		}
	}
	if err != nil {
		f.failed.Add(1)
	}
	return err
}

// opsIn is b.Len(), and 0 for a nil batch (which Write accepts as empty).
func opsIn(b *engine.Batch) int {
	if b == nil {
		return 0
	}
	return b.Len()
}

// decide waits at the hook, then reports whether the armed fault fails this
// write, and how, consuming one of a FailNextWrites count.
func (f *Engine) decide(b *engine.Batch) (fail bool, mode Mode, cause error) {
	f.mu.Lock()
	if f.blocks > 0 {
		f.waiting++
		for f.blocks > 0 {
			f.unblocked.Wait()
		}
		f.waiting--
	}
	w := f.write
	if w.left > 0 {
		f.write.left--
		if f.write.left == 0 {
			f.write = writeFault{}
		}
	}
	f.mu.Unlock()
	if !w.armed || (w.pred != nil && !w.pred(b)) {
		return false, 0, nil
	}
	return true, w.mode, w.cause
}

// Get fails with ErrInjected while reads fail, and otherwise returns the
// wrapped engine's Get.
func (f *Engine) Get(key []byte) ([]byte, error) {
	if f.readsFail() {
		return nil, fmt.Errorf("faultengine: get %x: %w", key, ErrInjected)
	}
	return f.e.Get(key)
}

// Scan fails with ErrInjected while reads fail, and otherwise returns the
// wrapped engine's Scan.
func (f *Engine) Scan(start, end []byte, limit, maxBytes int) ([]engine.KV, error) {
	if f.readsFail() {
		return nil, fmt.Errorf("faultengine: scan [%x, %x): %w", start, end, ErrInjected)
	}
	return f.e.Scan(start, end, limit, maxBytes)
}

func (f *Engine) readsFail() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failReads
}

// Close closes the wrapped engine. It is never failed or held; writes held
// by BlockWrites stay held until released.
func (f *Engine) Close() error { return f.e.Close() }
