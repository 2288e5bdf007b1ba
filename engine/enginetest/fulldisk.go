package enginetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
)

// Resume says how an adapter comes back once space is freed after a Write
// failed with engine.ErrNoSpace.
type Resume int

const (
	// ResumeInPlace: the same open engine takes writes again as soon as
	// space is free.
	ResumeInPlace Resume = iota + 1
	// ResumeAfterReopen: the engine refuses writes until it is closed and
	// opened again; Close works after the failure.
	ResumeAfterReopen
)

// String names the way of resuming, for test logs.
func (r Resume) String() string {
	switch r {
	case ResumeInPlace:
		return "in place"
	case ResumeAfterReopen:
		return "after reopen"
	}
	return fmt.Sprintf("Resume(%d)", int(r))
}

// FullDiskTmpfsSize is the size of the tmpfs RunFullDisk fills: large
// enough for every adapter's files at open, small enough to fill in a
// moment.
const FullDiskTmpfsSize = 8 << 20

// fullDiskMaxWrites bounds the writes RunFullDisk makes after filling the
// volume: an engine that still accepts this many synced 4 KiB writes on a
// full volume is not writing them anywhere.
const fullDiskMaxWrites = 4096

// fullDiskOpenBound bounds how long an Open on a full volume may take before
// the test calls it a hang (a spinning engine never returns).
const fullDiskOpenBound = 60 * time.Second

// RunFullDisk runs the full-volume checks against the engine open returns,
// on a small tmpfs (skipped where one cannot be mounted):
//
//   - WriteFails: once the volume is full, a synced Write fails with an error
//     wrapping both engine.ErrNoSpace and the syscall's ENOSPC, and nothing
//     of it is visible; the process lives, reads still see every entry
//     written before, and once space is freed writes resume as resume says;
//     every entry survives a reopen.
//   - OpenOnFullVolume: Open of an existing folder on a full volume returns
//     promptly, either an error wrapping engine.ErrNoSpace or an engine that
//     serves reads; once space is freed the folder opens with every entry.
func RunFullDisk(t *testing.T, open OpenFunc, resume Resume) {
	t.Run("WriteFails", func(t *testing.T) { testFullDiskWrite(t, open, resume) })
	t.Run("OpenOnFullVolume", func(t *testing.T) { testFullDiskOpen(t, open) })
}

// fullDiskValue returns an incompressible value, so that no engine stores it
// in less space than its size.
func fullDiskValue(rng *rand.Rand, n int) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(rng.Uint32())
	}
	return v
}

func requireAll(t *testing.T, e engine.Engine, want map[string][]byte) {
	t.Helper()
	got := scanAll(t, e, nil, nil)
	require.Len(t, got, len(want), "entries after the full volume")
	for _, kv := range got {
		w, ok := want[string(kv.Key)]
		require.True(t, ok, "unexpected entry %q", kv.Key)
		require.Equal(t, w, kv.Value, "value of %q", kv.Key)
	}
	for k, w := range want {
		v, err := e.Get([]byte(k))
		require.NoError(t, err, "get %q", k)
		require.Equal(t, w, v, "get %q", k)
	}
}

func testFullDiskWrite(t *testing.T, open OpenFunc, resume Resume) {
	dir := SmallTmpfs(t, FullDiskTmpfsSize)
	rng := rand.New(rand.NewPCG(1, 2))
	e, err := open(t, dir)
	require.NoError(t, err)
	defer func() { _ = e.Close() }()

	want := map[string][]byte{}
	var b engine.Batch
	write := func(key string, v []byte) error {
		b.Reset()
		b.Put([]byte(key), v)
		err := e.Write(&b, true)
		if err == nil {
			want[key] = v
		}
		return err
	}
	for i := range 50 {
		require.NoError(t, write(fmt.Sprintf("before%04d", i), fullDiskValue(rng, 1<<10)))
	}

	release := FillDisk(t, dir)
	var failed error
	var failedKey string
	for i := range fullDiskMaxWrites {
		key := fmt.Sprintf("full%05d", i)
		if err := write(key, fullDiskValue(rng, 4<<10)); err != nil {
			failed, failedKey = err, key
			break
		}
	}
	require.Error(t, failed, "%d synced writes succeeded on a full volume", fullDiskMaxWrites)
	t.Logf("write on the full volume: %v", failed)
	require.ErrorIs(t, failed, engine.ErrNoSpace)
	require.True(t, errors.Is(failed, syscall.ENOSPC), "the syscall's error is kept: %v", failed)

	// Another small write fails the same way, or fits in space the engine
	// already holds (then it counts as acknowledged); reads see exactly
	// what was acknowledged.
	if err := write("again", []byte("x")); err != nil {
		require.ErrorIs(t, err, engine.ErrNoSpace)
	}
	requireNotFound(t, e, failedKey)
	requireAll(t, e, want)

	release()
	switch resume {
	case ResumeInPlace:
		require.NoError(t, write("after", []byte("space freed")), "write in place once space is freed")
	case ResumeAfterReopen:
		require.NoError(t, e.Close(), "Close after a failed write")
		e, err = open(t, dir)
		require.NoError(t, err)
		requireAll(t, e, want)
		require.NoError(t, write("after", []byte("space freed")), "write after reopen once space is freed")
	default:
		t.Fatalf("unknown resume %v", resume)
	}
	require.NoError(t, e.Close())
	e, err = open(t, dir)
	require.NoError(t, err)
	requireAll(t, e, want)
}

func testFullDiskOpen(t *testing.T, open OpenFunc) {
	dir := SmallTmpfs(t, FullDiskTmpfsSize)
	rng := rand.New(rand.NewPCG(3, 4))
	e, err := open(t, dir)
	require.NoError(t, err)
	want := map[string][]byte{}
	var b engine.Batch
	for i := range 100 {
		k, v := fmt.Sprintf("k%04d", i), fullDiskValue(rng, 1<<10)
		b.Reset()
		b.Put([]byte(k), v)
		require.NoError(t, e.Write(&b, true))
		want[k] = v
	}
	require.NoError(t, e.Close())

	release := FillDisk(t, dir)
	type opened struct {
		e   engine.Engine
		err error
	}
	done := make(chan opened, 1)
	go func() {
		e, err := open(t, dir)
		done <- opened{e, err}
	}()
	var res opened
	require.Eventually(t, func() bool {
		select {
		case res = <-done:
			return true
		default:
			return false
		}
	}, fullDiskOpenBound, 10*time.Millisecond, "Open on a full volume did not return")
	if res.err != nil {
		t.Logf("open on the full volume: %v", res.err)
		require.ErrorIs(t, res.err, engine.ErrNoSpace)
	} else {
		t.Logf("open on the full volume succeeded; reads are served")
		requireAll(t, res.e, want)
		// A write fails with ErrNoSpace, or fits in space the engine
		// already holds and is then kept like any other.
		b.Reset()
		b.Put([]byte("on-full"), []byte("v"))
		if err := res.e.Write(&b, true); err != nil {
			t.Logf("write on the full volume: %v", err)
			require.ErrorIs(t, err, engine.ErrNoSpace)
		} else {
			want["on-full"] = []byte("v")
		}
		requireAll(t, res.e, want)
		require.NoError(t, res.e.Close())
	}

	release()
	e, err = open(t, dir)
	require.NoError(t, err)
	defer func() { _ = e.Close() }()
	requireAll(t, e, want)
	b.Reset()
	b.Put([]byte("after"), []byte("space freed"))
	require.NoError(t, e.Write(&b, true))
}
