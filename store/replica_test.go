package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// openEngine opens a store and also returns its engine, for byte-for-byte
// comparisons of what two stores hold.
func openEngine(t *testing.T, name, dir string, opts store.Options) (*store.Store, engine.Engine) {
	t.Helper()
	e, err := engines.Open(name, dir)
	require.NoError(t, err)
	s, err := store.Open(e, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, e
}

// snapshotBytes is a snapshot of s as Snapshot.WriteTo streams it.
func snapshotBytes(t *testing.T, s *store.Store) []byte {
	t.Helper()
	snap, err := s.Snapshot()
	require.NoError(t, err)
	defer func() { require.NoError(t, snap.Close()) }()
	var buf bytes.Buffer
	_, err = snap.WriteTo(&buf)
	require.NoError(t, err)
	return buf.Bytes()
}

func dump(t *testing.T, e engine.Engine) []engine.KV {
	t.Helper()
	kvs, err := e.Scan(nil, nil, 1<<30, 0)
	require.NoError(t, err)
	return kvs
}

func appendCmd(topic string, expect store.Expectation, payloads ...string) store.Command {
	evs := events(payloads...)
	for i := range evs {
		evs[i].Headers = map[string]string{"k": payloads[i], "z": "1", "a": "2"}
	}
	return store.Command{Kind: store.CommandAppend, Topic: topic, Events: evs, Expect: expect}
}

// replicaLog is a log a leader could have produced: several topics, a
// failed expectation, a cursor, an invalid command, and leader times that
// go backwards across entries (a new leader with a slower clock).
func replicaLog() []store.CommittedEntry {
	base := int64(1_700_000_000_000_000_000)
	return []store.CommittedEntry{
		{Index: 3, Time: base, Commands: []store.Command{appendCmd("a", store.ExpectAny, "a1", "a2")}},
		{Index: 4, Time: base + 10, Commands: []store.Command{
			appendCmd("b", store.ExpectLastSeq(0), "b1"),
			appendCmd("a", store.ExpectLastSeq(5), "never"), // conflict
			{Kind: store.CommandSetCursor, Topic: "a", Consumer: "c1", CursorID: uint64(base + 1)},
		}},
		{Index: 5, Time: base - 1000, Commands: []store.Command{
			appendCmd("a", store.ExpectLastSeq(2), "a3"),
			{Kind: store.CommandAppend, Topic: ""}, // invalid
			{Kind: store.CommandSetCursor, Topic: "none", Consumer: "c"},
		}},
		{Index: 7, Time: base + 20, Commands: []store.Command{appendCmd("c", store.ExpectAny, "c1", "c2", "c3")}},
	}
}

// ApplyCommitted gives the same bytes and results on every replica however
// the log is cut into batches, keeps the leader's times, skips what it has
// already applied, and remembers its index across a reopen.
func TestApplyCommittedIsDeterministic(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		log := replicaLog()
		dirA := t.TempDir()
		a, ea := openEngine(t, name, dirA, store.DefaultOptions())
		b, eb := openEngine(t, name, t.TempDir(), store.Options{Clock: func() int64 { return 42 }})
		require.Zero(t, a.AppliedIndex())

		resA, err := a.ApplyCommitted(log)
		require.NoError(t, err)
		var resB [][]store.Result
		for i := range log {
			r, err := b.ApplyCommitted(log[i : i+1])
			require.NoError(t, err)
			resB = append(resB, r...)
		}
		require.Equal(t, resA, resB)
		require.Equal(t, dump(t, ea), dump(t, eb))
		require.Equal(t, uint64(7), a.AppliedIndex())

		require.Equal(t, store.AppendResult{FirstID: uint64(log[0].Time), FirstSeq: 1, Count: 2}, resA[0][0].Append)
		require.ErrorIs(t, resA[1][1].Err, store.ErrConflict)
		require.NoError(t, resA[1][2].Err)
		// The clock went back: ids still increase.
		require.Equal(t, store.AppendResult{FirstID: uint64(log[0].Time) + 2, FirstSeq: 3, Count: 1}, resA[2][0].Append)
		require.ErrorIs(t, resA[2][1].Err, store.ErrInvalidName)
		require.ErrorIs(t, resA[2][2].Err, store.ErrNotFound)
		evs := readAll(t, a, "a", 0, 10)
		require.Equal(t, []string{"a1", "a2", "a3"}, payloads(evs))
		cur, err := a.GetCursor("a", "c1")
		require.NoError(t, err)
		require.Equal(t, uint64(log[0].Time+1), cur.ID)

		// Entries at or below the applied index change nothing.
		before := dump(t, ea)
		again, err := a.ApplyCommitted(log[1:3])
		require.NoError(t, err)
		for _, rs := range again {
			for _, r := range rs {
				require.ErrorIs(t, r.Err, store.ErrAlreadyApplied)
			}
		}
		require.Equal(t, before, dump(t, ea))

		require.NoError(t, a.Close())
		a2 := open(t, name, dirA, store.DefaultOptions())
		require.Equal(t, uint64(7), a2.AppliedIndex())
		res, err := a2.ApplyCommitted([]store.CommittedEntry{{Index: 8, Time: 5, Commands: []store.Command{appendCmd("c", store.ExpectLastSeq(3), "c4")}}})
		require.NoError(t, err)
		require.Equal(t, uint64(4), res[0][0].Append.FirstSeq)
		require.Equal(t, uint64(8), a2.AppliedIndex())
	})
}

// Readers waiting for a topic to exist, and followers at a topic's end (the
// tail ring), are woken by ApplyCommitted as by a commit.
func TestApplyCommittedWakesReaders(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		s := open(t, name, t.TempDir(), store.DefaultOptions())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := s.ApplyCommitted([]store.CommittedEntry{{Index: 1, Time: 100, Commands: []store.Command{appendCmd("now", store.ExpectAny, "x")}}})
		require.NoError(t, err)
		p, err := s.Read("now", 0, 10)
		require.NoError(t, err)
		require.Len(t, p.Events, 1)

		woken := make(chan error, 2)
		go func() { woken <- s.Wait(ctx, "later", 0) }()
		go func() { woken <- s.Wait(ctx, "now", p.Next) }()
		_, err = s.ApplyCommitted([]store.CommittedEntry{{Index: 2, Time: 200, Commands: []store.Command{
			appendCmd("later", store.ExpectAny, "y"), appendCmd("now", store.ExpectAny, "z"),
		}}})
		require.NoError(t, err)
		require.NoError(t, <-woken)
		require.NoError(t, <-woken)
		p, err = s.Read("now", p.Next, 10)
		require.NoError(t, err)
		require.Equal(t, []string{"z"}, payloads(p.Events))
	})
}

// A snapshot streams a consistent copy: a store restored from it holds the
// snapshot's records byte for byte (its own earlier content gone), resumes
// at its applied index, and applying the later entries makes it equal to
// the source again.
func TestSnapshotRestore(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		log := replicaLog()
		src, esrc := openEngine(t, name, t.TempDir(), store.DefaultOptions())
		_, err := src.ApplyCommitted(log[:3])
		require.NoError(t, err)
		atSnap := dump(t, esrc)
		snap, err := src.Snapshot()
		require.NoError(t, err)
		require.Equal(t, uint64(5), snap.AppliedIndex())
		_, err = src.ApplyCommitted(log[3:]) // not in the snapshot
		require.NoError(t, err)
		var buf bytes.Buffer
		_, err = snap.WriteTo(&buf)
		require.NoError(t, err)
		require.NoError(t, snap.Close())

		dirDst := t.TempDir()
		dst, edst := openEngine(t, name, dirDst, store.DefaultOptions())
		_, err = dst.ApplyCommitted([]store.CommittedEntry{{Index: 1, Time: 9, Commands: []store.Command{appendCmd("old", store.ExpectAny, "gone")}}})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		woken := make(chan error, 1)
		go func() { woken <- dst.Wait(ctx, "b", 0) }()

		require.NoError(t, dst.Restore(bytes.NewReader(buf.Bytes())))
		require.NoError(t, <-woken)
		require.Equal(t, atSnap, dump(t, edst))
		require.Equal(t, uint64(5), dst.AppliedIndex())
		_, err = dst.Info("old")
		require.ErrorIs(t, err, store.ErrNotFound)

		_, err = dst.ApplyCommitted(log) // 3..5 skipped, 7 applied
		require.NoError(t, err)
		require.Equal(t, dump(t, esrc), dump(t, edst))

		// A damaged stream fails the store; reopening empties it, so that
		// the snapshot is restored again from scratch.
		bad := bytes.Clone(buf.Bytes())
		bad[len(bad)-20] ^= 0xFF
		require.ErrorIs(t, dst.Restore(bytes.NewReader(bad)), store.ErrFailed)
		require.NoError(t, dst.Close())
		dst2 := open(t, name, dirDst, store.DefaultOptions())
		require.Zero(t, dst2.AppliedIndex())
		topics, _, err := dst2.Topics("", 10)
		require.NoError(t, err)
		require.Empty(t, topics)
		require.NoError(t, dst2.Restore(bytes.NewReader(buf.Bytes())))
		require.Equal(t, uint64(5), dst2.AppliedIndex())
	})
}

// Readers never see a partly replaced store: while Restore holds the
// engine (here at its first write, the removal of the old content), Read,
// Info, Topics and GetCursor wait, then see the snapshot's content. Before
// the gate a reader could meet the old topic's end with its events gone,
// read that as a trim, and skip them.
func TestRestoreHoldsReaders(t *testing.T) {
	forEngine(t, func(t *testing.T, name string) {
		log := replicaLog()
		src, _ := openEngine(t, name, t.TempDir(), store.DefaultOptions())
		_, err := src.ApplyCommitted(log)
		require.NoError(t, err)
		buf := bytes.NewBuffer(snapshotBytes(t, src))
		want := readAll(t, src, "a", 0, 100)

		dst, fault := openFaultyWith(t, name, t.TempDir(), store.DefaultOptions())
		_, err = dst.ApplyCommitted([]store.CommittedEntry{{Index: 1, Time: 9, Commands: []store.Command{
			appendCmd("a", store.ExpectAny, "old1", "old2"),
			{Kind: store.CommandSetCursor, Topic: "a", Consumer: "c1", CursorID: 10},
		}}})
		require.NoError(t, err)

		release := fault.BlockWrites()
		t.Cleanup(release) // before the store's Close, should the test fail
		restored := make(chan error, 1)
		go func() { restored <- dst.Restore(bytes.NewReader(buf.Bytes())) }()
		require.Eventually(t, func() bool { return fault.Waiting() == 1 }, 10*time.Second, time.Millisecond)

		type answer struct {
			what string
			err  error
			got  any
		}
		answers := make(chan answer, 4)
		go func() {
			p, err := dst.Read("a", 0, 100)
			answers <- answer{"read", err, p.Events}
		}()
		go func() {
			ti, err := dst.Info("a")
			answers <- answer{"info", err, ti.LastSeq}
		}()
		go func() {
			ts, _, err := dst.Topics("", 10)
			answers <- answer{"topics", err, len(ts)}
		}()
		go func() {
			c, err := dst.GetCursor("a", "c1")
			answers <- answer{"cursor", err, c.ID}
		}()
		require.Never(t, func() bool { return len(answers) > 0 }, 200*time.Millisecond, time.Millisecond,
			"a reader got an answer while Restore held the engine")
		release()
		require.NoError(t, <-restored)
		wantCursor, err := src.GetCursor("a", "c1")
		require.NoError(t, err)
		wantTopics, _, err := src.Topics("", 10)
		require.NoError(t, err)
		for range 4 {
			a := <-answers
			require.NoError(t, a.err, a.what)
			switch a.what {
			case "read":
				require.Equal(t, want, a.got)
			case "info":
				require.Equal(t, want[len(want)-1].Seq, a.got)
			case "topics":
				require.Equal(t, len(wantTopics), a.got)
			case "cursor":
				require.Equal(t, wantCursor.ID, a.got)
			}
		}

		// A Restore that broke off leaves no half store to read.
		bad := bytes.Clone(buf.Bytes())
		bad[len(bad)-20] ^= 0xFF
		require.ErrorIs(t, dst.Restore(bytes.NewReader(bad)), store.ErrFailed)
		_, err = dst.Read("a", 0, 100)
		require.ErrorIs(t, err, store.ErrFailed)
		_, err = dst.Info("a")
		require.ErrorIs(t, err, store.ErrFailed)
	})
}

// ApplyCommitted takes its turn as committer: it never runs beside a local
// commit, local appends queued meanwhile are committed after it, and both
// land whole, with dense seqs.
func TestApplyCommittedExcludesLocalCommits(t *testing.T) {
	s := open(t, "leveldb", t.TempDir(), store.DefaultOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const rounds = 200
	done := make(chan error, 3)
	go func() {
		for i := range rounds {
			_, err := s.ApplyCommitted([]store.CommittedEntry{{Index: uint64(i + 1), Time: int64(i + 1),
				Commands: []store.Command{appendCmd("shared", store.ExpectAny, "r")}}})
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 2 {
		go func() {
			for range rounds {
				if _, err := s.Append(ctx, "shared", events("l"), store.ExpectAny); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 3 {
		require.NoError(t, <-done)
	}
	evs := readAll(t, s, "shared", 0, 1000)
	require.Len(t, evs, 3*rounds)
	for i, e := range evs {
		require.Equal(t, uint64(i+1), e.Seq)
	}
	require.Equal(t, uint64(rounds), s.AppliedIndex())
}

// WaitApplied returns once ApplyCommitted reached the index, and ends with
// the context or the store.
func TestWaitApplied(t *testing.T) {
	s := open(t, "pebble", t.TempDir(), store.DefaultOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	apply := func(i uint64) {
		_, err := s.ApplyCommitted([]store.CommittedEntry{{Index: i, Time: int64(i), Commands: []store.Command{appendCmd("t", store.ExpectAny, "x")}}})
		require.NoError(t, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- s.WaitApplied(ctx, 2) }()
	apply(1)
	select {
	case err := <-waited:
		t.Fatalf("WaitApplied(2) returned %v at index 1", err)
	default:
	}
	apply(2)
	require.NoError(t, <-waited)
	require.NoError(t, s.WaitApplied(ctx, 1))

	cctx, ccancel := context.WithCancel(ctx)
	go func() { waited <- s.WaitApplied(cctx, 3) }()
	ccancel()
	require.ErrorIs(t, <-waited, context.Canceled)
	go func() { waited <- s.WaitApplied(ctx, 3) }()
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-waited, store.ErrClosed)
}

// A reader that WaitApplied lets through sees what the entries applied:
// AppliedIndex moves only once the batch is published.
func TestWaitAppliedSeesTheEntry(t *testing.T) {
	s := open(t, "leveldb", t.TempDir(), store.DefaultOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := uint64(1); i <= 300; i++ {
		seen := make(chan uint64, 1)
		go func() {
			if err := s.WaitApplied(ctx, i); err != nil {
				seen <- 0
				return
			}
			info, err := s.Info(fmt.Sprintf("t%d", i))
			if err != nil {
				seen <- 0
				return
			}
			seen <- info.LastSeq
		}()
		_, err := s.ApplyCommitted([]store.CommittedEntry{{Index: i, Time: int64(i),
			Commands: []store.Command{appendCmd(fmt.Sprintf("t%d", i), store.ExpectAny, "x")}}})
		require.NoError(t, err)
		require.Equal(t, uint64(1), <-seen, "entry %d visible once WaitApplied returned", i)
	}
}
