package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/enginetest"
	"github.com/goethe-log/goethe/engine/faultengine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// fastProbe is the probe interval of the full-disk tests: short, so that
// require.Eventually sees the store resume quickly.
const fastProbe = 5 * time.Millisecond

// noSpaceCause is what an adapter's ENOSPC looks like: engine.ErrNoSpace
// with the file's path, which must not travel further than the logs.
func noSpaceCause(dir string) error {
	return fmt.Errorf("%w: %w", engine.ErrNoSpace,
		&fs.PathError{Op: "write", Path: filepath.Join(dir, "000001.log"), Err: syscall.ENOSPC})
}

// openFaultyWith is openFaulty with options.
func openFaultyWith(t *testing.T, name, dir string, opts store.Options) (*store.Store, *faultengine.Engine) {
	t.Helper()
	e, err := engines.Open(name, dir)
	require.NoError(t, err)
	f := faultengine.Wrap(e)
	s, err := store.Open(f, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, f
}

// requireDense checks a whole topic: seqs 1…n, ids strictly increasing.
func requireDense(t *testing.T, evs []store.Event) {
	t.Helper()
	for i, e := range evs {
		require.Equal(t, uint64(i+1), e.Seq, "event %d", i)
		if i > 0 {
			require.Greater(t, e.ID, evs[i-1].ID, "event %d", i)
		}
	}
}

// TestNoSpaceFailsFastAndResumes: an engine write failing with
// engine.ErrNoSpace fails its group with store.ErrNoSpace (not ErrFailed);
// writes then fail fast while reads, Info and Wait go on; once the volume
// takes writes again the store resumes by itself, without a restart, with
// the state of the touched topic re-read from the engine: when the failed
// write landed after all (after apply), its events become readable and the
// next seq follows them; seqs stay dense, ids increasing, and a restart
// finds exactly the same log. Over every engine, for a write to an existing
// topic and one that creates its topic.
func TestNoSpaceFailsFastAndResumes(t *testing.T) {
	for _, mode := range []faultengine.Mode{faultengine.BeforeApply, faultengine.AfterApply} {
		for _, topic := range []string{"old", "new"} {
			t.Run(fmt.Sprintf("%v/topic=%s", mode, topic), func(t *testing.T) {
				forEngine(t, func(t *testing.T, name string) {
					testNoSpaceResumes(t, name, mode, topic)
				})
			})
		}
	}
}

func testNoSpaceResumes(t *testing.T, name string, mode faultengine.Mode, topic string) {
	dir := t.TempDir()
	s, f := openFaultyWith(t, name, dir, store.Options{ProbeInterval: fastProbe})
	ctx := context.Background()
	_, err := s.Append(ctx, "old", events("a1", "a2", "a3"), store.ExpectAny)
	require.NoError(t, err)
	_, err = s.Append(ctx, "other", events("b1"), store.ExpectAny)
	require.NoError(t, err)
	require.NoError(t, s.WriteErr())
	changed := s.WriteErrChanged()

	f.FailWritesWith(mode, noSpaceCause(dir))
	_, err = s.Append(ctx, topic, events("failed"), store.ExpectAny)
	require.ErrorIs(t, err, store.ErrNoSpace)
	require.ErrorIs(t, err, engine.ErrNoSpace)
	require.NotErrorIs(t, err, store.ErrFailed)
	require.ErrorIs(t, s.WriteErr(), store.ErrNoSpace)
	select {
	case <-changed:
	default:
		t.Fatal("WriteErrChanged not signalled when the write path went down")
	}

	// Down: writes fail with ErrNoSpace, reads go on.
	_, err = s.Append(ctx, "other", events("refused"), store.ExpectAny)
	require.ErrorIs(t, err, store.ErrNoSpace)
	require.ErrorIs(t, s.SetCursor(ctx, "old", "c", 1), store.ErrNoSpace)
	require.Equal(t, []string{"a1", "a2", "a3"}, payloads(readAll(t, s, "old", store.FromBeginning, 100)))
	info, err := s.Info("old")
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.LastSeq)
	require.NoError(t, s.Wait(ctx, "other", store.FromBeginning))

	// A reader waiting past the end: woken if the failed write landed.
	var waitFrom uint64 = store.FromBeginning
	if topic == "old" {
		waitFrom = info.LastID + 1
	}
	woken := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { woken <- s.Wait(wctx, topic, waitFrom) }()

	changed = s.WriteErrChanged()
	f.Disarm()
	require.Eventually(t, func() bool { return s.WriteErr() == nil }, 10*time.Second, time.Millisecond,
		"the store resumes by itself once writes succeed")
	<-changed

	landed := mode == faultengine.AfterApply
	if landed {
		require.NoError(t, <-woken, "the landed write wakes readers when it is published")
	}
	res, err := s.Append(ctx, topic, events("after"), store.ExpectAny)
	require.NoError(t, err)
	before := 0
	if topic == "old" {
		before = 3
	}
	if landed {
		before++
	}
	require.Equal(t, uint64(before+1), res.FirstSeq, "the next seq follows what is on disk")

	check := func(s *store.Store) {
		got := readAll(t, s, topic, store.FromBeginning, 100)
		requireDense(t, got)
		want := []string{"after"}
		if landed {
			want = append([]string{"failed"}, want...)
		}
		if topic == "old" {
			want = append([]string{"a1", "a2", "a3"}, want...)
		}
		require.Equal(t, want, payloads(got))
		require.Equal(t, []string{"b1"}, payloads(readAll(t, s, "other", store.FromBeginning, 100)))
		ts, _, err := s.Topics("", 0)
		require.NoError(t, err)
		ids := map[uint64]string{}
		for _, ti := range ts {
			require.NotContains(t, ids, ti.ID, "topic ids are not reused: %s and %s", ids[ti.ID], ti.Name)
			ids[ti.ID] = ti.Name
		}
	}
	check(s)
	require.NoError(t, s.Close())
	check(open(t, name, dir, store.Options{}))
}

// TestNoSpaceFailsFastWithoutTheEngine: while the write path is down and no
// probe is due, writes fail without reaching the engine; a failure that is
// not for lack of space stays ErrFailed, as before.
func TestNoSpaceFailsFastWithoutTheEngine(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		s, f := openFaultyWith(t, name, dir, store.Options{ProbeInterval: time.Hour})
		ctx := context.Background()
		f.FailNextWritesWith(1, faultengine.BeforeApply, engine.ErrNoSpace)
		_, err := s.Append(ctx, "t", events("x"), store.ExpectAny)
		require.ErrorIs(t, err, store.ErrNoSpace)
		writes := f.Stats().Writes
		for i := range 20 {
			_, err := s.Append(ctx, "t", events(fmt.Sprint(i)), store.ExpectAny)
			require.ErrorIs(t, err, store.ErrNoSpace)
		}
		require.Equal(t, writes, f.Stats().Writes, "no write reached the engine")
		require.ErrorIs(t, s.WriteErr(), store.ErrNoSpace)
	})
}

// TestOtherWriteFailureStaysSticky: a failed write that is not for lack of
// space makes the store refuse writes until it is reopened, and WriteErr
// says so.
func TestOtherWriteFailureStaysSticky(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s, f := openFaultyWith(t, name, t.TempDir(), store.Options{ProbeInterval: fastProbe})
		ctx := context.Background()
		f.FailNextWrites(1, faultengine.BeforeApply)
		_, err := s.Append(ctx, "t", events("x"), store.ExpectAny)
		require.ErrorIs(t, err, store.ErrFailed)
		require.NotErrorIs(t, err, store.ErrNoSpace)
		require.ErrorIs(t, s.WriteErr(), store.ErrFailed)
		writes := f.Stats().Writes
		_, err = s.Append(ctx, "t", events("y"), store.ExpectAny)
		require.ErrorIs(t, err, store.ErrFailed)
		require.Equal(t, writes, f.Stats().Writes)
	})
}

// freeSpace is a settable free-space measurement.
type freeSpace struct {
	bytes atomic.Uint64
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (f *freeSpace) measure() (uint64, error) {
	f.calls.Add(1)
	if p := f.err.Load(); p != nil {
		return 0, *p
	}
	return f.bytes.Load(), nil
}

// TestFreeSpaceGuard: with MinFreeBytes set, a commit at exactly the reserve
// goes, one below it fails with ErrNoSpace before anything is written, and
// writes resume once the reserve is free again. A failed measurement does
// not stop writes.
func TestFreeSpaceGuard(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		const reserve = 1 << 20
		var free freeSpace
		free.bytes.Store(reserve) // at the boundary: writes go
		s, f := openFaultyWith(t, name, t.TempDir(), store.Options{
			MinFreeBytes: reserve, FreeBytes: free.measure,
			FreeBytesMaxAge: time.Nanosecond, ProbeInterval: fastProbe,
		})
		ctx := context.Background()
		_, err := s.Append(ctx, "t", events("at the reserve"), store.ExpectAny)
		require.NoError(t, err)

		free.bytes.Store(reserve - 1) // past the boundary
		writes := f.Stats().Writes
		_, err = s.Append(ctx, "t", events("below"), store.ExpectAny)
		require.ErrorIs(t, err, store.ErrNoSpace)
		require.Contains(t, err.Error(), "below the reserve")
		require.ErrorIs(t, s.WriteErr(), store.ErrNoSpace)
		require.Equal(t, writes, f.Stats().Writes, "refused before the engine")
		require.Equal(t, []string{"at the reserve"}, payloads(readAll(t, s, "t", store.FromBeginning, 10)))

		// Still below: the probe keeps failing without writing.
		calls := free.calls.Load()
		require.Eventually(t, func() bool { return free.calls.Load() > calls+2 }, 10*time.Second, time.Millisecond)
		require.Equal(t, writes, f.Stats().Writes)
		require.ErrorIs(t, s.WriteErr(), store.ErrNoSpace)

		free.bytes.Store(reserve)
		require.Eventually(t, func() bool { return s.WriteErr() == nil }, 10*time.Second, time.Millisecond)
		res, err := s.Append(ctx, "t", events("again"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, uint64(2), res.FirstSeq)

		broken := errors.New("statfs failed")
		free.err.Store(&broken)
		free.bytes.Store(0)
		_, err = s.Append(ctx, "t", events("unmeasured"), store.ExpectAny)
		require.NoError(t, err, "a failed measurement lets writes go")
	})
}

// TestNoSpaceResumesByReopen: with Options.Reopen the store resumes by
// closing its engine and opening a new one, and its holders keep using the
// same *Store: reads before and after, writes after.
func TestNoSpaceResumesByReopen(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		var reopened atomic.Int64
		var current atomic.Pointer[faultengine.Engine]
		reopen := func() (engine.Engine, error) {
			reopened.Add(1)
			e, err := engines.Open(name, dir)
			if err != nil {
				return nil, err
			}
			f := faultengine.Wrap(e)
			current.Store(f)
			return f, nil
		}
		e, err := engines.Open(name, dir)
		require.NoError(t, err)
		f := faultengine.Wrap(e)
		current.Store(f)
		s, err := store.Open(f, store.Options{ProbeInterval: fastProbe, Reopen: reopen})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		ctx := context.Background()
		_, err = s.Append(ctx, "t", events("1", "2"), store.ExpectAny)
		require.NoError(t, err)

		f.FailWritesWith(faultengine.AfterApply, engine.ErrNoSpace)
		_, err = s.Append(ctx, "t", events("3"), store.ExpectAny)
		require.ErrorIs(t, err, store.ErrNoSpace)
		require.Eventually(t, func() bool { return s.WriteErr() == nil }, 10*time.Second, time.Millisecond)
		require.Positive(t, reopened.Load())
		require.Equal(t, []string{"1", "2", "3"}, payloads(readAll(t, s, "t", store.FromBeginning, 10)))
		res, err := s.Append(ctx, "t", events("4"), store.ExpectAny)
		require.NoError(t, err)
		require.Equal(t, uint64(4), res.FirstSeq)
		requireDense(t, readAll(t, s, "t", store.FromBeginning, 10))
		require.NoError(t, s.Close())
		_, err = current.Load().Get([]byte("k"))
		require.ErrorIs(t, err, engine.ErrClosed, "Close closed the reopened engine")
	})
}

// statfsFree measures the free space of dir's volume, as cmd/goethe does.
func statfsFree(dir string) func() (uint64, error) {
	return func() (uint64, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, err
		}
		return st.Bavail * uint64(st.Bsize), nil
	}
}

// TestNoSpaceTmpfs: on a real full volume (a small tmpfs; skipped where one
// cannot be mounted) an Append fails with ErrNoSpace, reads go on, and once
// the filler is removed writes resume without a restart (by a reopen, as
// cmd/goethe runs the store); every acknowledged event is intact, seqs
// dense, also after a restart.
func TestNoSpaceTmpfs(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		vol := enginetest.SmallTmpfs(t, enginetest.FullDiskTmpfsSize)
		dir := filepath.Join(vol, "data")
		opts := store.Options{ProbeInterval: fastProbe, FreeBytes: statfsFree(vol),
			Reopen: func() (engine.Engine, error) { return engines.Open(name, dir) }}
		s := open(t, name, dir, opts)
		ctx := context.Background()
		_, err := s.Append(ctx, "t", events("first"), store.ExpectAny)
		require.NoError(t, err)
		acked := []string{"first"}
		for round := range 2 {
			release := enginetest.FillDisk(t, vol)
			var err error
			for i := 0; i < 4096 && err == nil; i++ {
				p := fmt.Sprintf("r%d-%d-%s", round, i, strings.Repeat("x", 4<<10))
				if _, err = s.Append(ctx, "t", events(p), store.ExpectAny); err == nil {
					acked = append(acked, p)
				}
			}
			require.ErrorIs(t, err, store.ErrNoSpace)
			require.ErrorIs(t, s.WriteErr(), store.ErrNoSpace)
			got := payloads(readAll(t, s, "t", store.FromBeginning, 100))
			require.Equal(t, acked, got[:len(acked)], "reads go on while the disk is full")

			release()
			require.Eventually(t, func() bool { return s.WriteErr() == nil }, 30*time.Second, time.Millisecond)
			p := fmt.Sprintf("r%d-after", round)
			_, err = s.Append(ctx, "t", events(p), store.ExpectAny)
			require.NoError(t, err)
			got = payloads(readAll(t, s, "t", store.FromBeginning, 100))
			require.Equal(t, acked, got[:len(acked)])
			require.LessOrEqual(t, len(got), len(acked)+2, "at most the failed append, whose outcome is unknown, besides")
			acked = got
		}
		evs := readAll(t, s, "t", store.FromBeginning, 100)
		requireDense(t, evs)
		require.NoError(t, s.Close())
		s2 := open(t, name, dir, store.Options{})
		require.Equal(t, acked, payloads(readAll(t, s2, "t", store.FromBeginning, 100)))
	})
}

// TestFreeSpaceGuardAtOpen: a store opened on a volume already below the
// reserve says so from the start (WriteErr), refuses writes, serves reads,
// and resumes once there is room.
func TestFreeSpaceGuardAtOpen(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		s := open(t, name, dir, store.Options{})
		_, err := s.Append(context.Background(), "t", events("kept"), store.ExpectAny)
		require.NoError(t, err)
		require.NoError(t, s.Close())

		var free freeSpace
		free.bytes.Store(10)
		s = open(t, name, dir, store.Options{MinFreeBytes: 11, FreeBytes: free.measure, ProbeInterval: fastProbe})
		require.ErrorIs(t, s.WriteErr(), store.ErrNoSpace)
		_, err = s.Append(context.Background(), "t", events("refused"), store.ExpectAny)
		require.ErrorIs(t, err, store.ErrNoSpace)
		require.Equal(t, []string{"kept"}, payloads(readAll(t, s, "t", store.FromBeginning, 10)))
		free.bytes.Store(store.DefaultResumeFreeBytes)
		require.Eventually(t, func() bool { return s.WriteErr() == nil }, 10*time.Second, time.Millisecond)
		_, err = s.Append(context.Background(), "t", events("again"), store.ExpectAny)
		require.NoError(t, err)
	})
}

// TestGuardAloneNeedsNoReopen: a write path stopped only by the free-space
// guard resumes without reopening the engine, even with Options.Reopen set:
// no engine write failed.
func TestGuardAloneNeedsNoReopen(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		var free freeSpace
		free.bytes.Store(store.DefaultResumeFreeBytes)
		var reopened atomic.Int64
		s := open(t, name, t.TempDir(), store.Options{MinFreeBytes: store.DefaultResumeFreeBytes, FreeBytes: free.measure,
			FreeBytesMaxAge: time.Nanosecond, ProbeInterval: fastProbe,
			Reopen: func() (engine.Engine, error) { reopened.Add(1); return nil, errors.New("must not be called") }})
		ctx := context.Background()
		_, err := s.Append(ctx, "t", events("1"), store.ExpectAny)
		require.NoError(t, err)
		free.bytes.Store(store.DefaultResumeFreeBytes - 1)
		_, err = s.Append(ctx, "t", events("refused"), store.ExpectAny)
		require.ErrorIs(t, err, store.ErrNoSpace)
		free.bytes.Store(store.DefaultResumeFreeBytes)
		require.Eventually(t, func() bool { return s.WriteErr() == nil }, 10*time.Second, time.Millisecond)
		_, err = s.Append(ctx, "t", events("2"), store.ExpectAny)
		require.NoError(t, err)
		require.Zero(t, reopened.Load())
		require.Equal(t, []string{"1", "2"}, payloads(readAll(t, s, "t", store.FromBeginning, 10)))
	})
}

// A replica's apply whose engine write failed for lack of space after it
// reached the engine (a failed sync): once the store resumes, AppliedIndex
// is what the engine holds, so the caller's retry of the same entries
// skips them instead of applying them twice (events under new seqs).
func TestNoSpaceReplicaRetryAfterLandedWrite(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		s, f := openFaultyWith(t, name, dir, store.Options{ProbeInterval: fastProbe})
		first := []store.CommittedEntry{{Index: 1, Time: 10, Commands: []store.Command{appendCmd("t", store.ExpectAny, "e1")}}}
		_, err := s.ApplyCommitted(first)
		require.NoError(t, err)

		next := []store.CommittedEntry{{Index: 2, Time: 20, Commands: []store.Command{appendCmd("t", store.ExpectAny, "e2")}}}
		f.FailWritesWith(faultengine.AfterApply, noSpaceCause(dir))
		_, err = s.ApplyCommitted(next)
		require.ErrorIs(t, err, store.ErrNoSpace)
		f.Disarm()
		require.Eventually(t, func() bool { return s.WriteErr() == nil }, 10*time.Second, time.Millisecond,
			"the store resumes by itself once writes succeed")
		require.Equal(t, uint64(2), s.AppliedIndex(), "the failed apply landed: AppliedIndex says so")

		// The FSM retries the entries it was refused.
		_, err = s.ApplyCommitted(next)
		require.NoError(t, err)
		evs := readAll(t, s, "t", store.FromBeginning, 100)
		require.Equal(t, []string{"e1", "e2"}, payloads(evs))
		require.Equal(t, uint64(2), evs[1].Seq)
	})
}

// A replica whose engine lost applies it had acknowledged (unsynced ones,
// dropped when the engine reopened after a full disk) does not resume as if
// nothing happened: its write path fails (ErrFailed) so that a restart
// applies those entries again from the Raft log, rather than diverge.
func TestNoSpaceReplicaEngineLostApplies(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		dir := t.TempDir()
		s, f := openFaultyWith(t, name, dir, store.Options{ProbeInterval: fastProbe})
		for i := uint64(1); i <= 3; i++ {
			_, err := s.ApplyCommitted([]store.CommittedEntry{{Index: i, Time: int64(10 * i), Commands: []store.Command{appendCmd("t", store.ExpectAny, "e")}}})
			require.NoError(t, err)
		}
		f.FailWritesWith(faultengine.BeforeApply, noSpaceCause(dir))
		_, err := s.ApplyCommitted([]store.CommittedEntry{{Index: 4, Time: 40, Commands: []store.Command{appendCmd("t", store.ExpectAny, "e")}}})
		require.ErrorIs(t, err, store.ErrNoSpace)

		// What the engine holds goes back to index 2, as if the last apply
		// had been lost.
		var b engine.Batch
		b.Put([]byte{0xF5, 'a'}, []byte{0, 0, 0, 0, 0, 0, 0, 2}) // the store's applied-index key
		require.NoError(t, f.Unwrap().Write(&b, true))
		f.Disarm()
		require.Eventually(t, func() bool { return errors.Is(s.WriteErr(), store.ErrFailed) }, 10*time.Second, time.Millisecond,
			"the store refuses to resume past applies its engine lost")
		require.ErrorContains(t, s.WriteErr(), "restart the node")
		require.Equal(t, uint64(3), s.AppliedIndex())
	})
}
