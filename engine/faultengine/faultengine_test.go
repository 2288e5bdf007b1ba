package faultengine_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/bolt"
	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/enginetest"
	"github.com/goethe-log/goethe/engine/faultengine"
	"github.com/goethe-log/goethe/leveldb"
	"github.com/goethe-log/goethe/pebble"
)

// adapters opens each real engine on a folder, wrapped.
var adapters = []struct {
	name string
	open enginetest.OpenFunc
}{
	{"leveldb", func(t *testing.T, dir string) (engine.Engine, error) {
		return wrap(leveldb.Open(dir, leveldb.Options{}))
	}},
	{"pebble", func(t *testing.T, dir string) (engine.Engine, error) {
		return wrap(pebble.Open(dir, pebble.Options{}))
	}},
	{"bolt", func(t *testing.T, dir string) (engine.Engine, error) {
		return wrap(bolt.Open(dir, bolt.Options{}))
	}},
}

// wrap returns a nil interface, not one holding a nil pointer, on error.
func wrap[T engine.Engine](db T, err error) (engine.Engine, error) {
	if err != nil {
		return nil, err
	}
	return faultengine.Wrap(db), nil
}

// TestConformance: with no fault armed the wrapper is invisible.
func TestConformance(t *testing.T) {
	for _, e := range adapters {
		t.Run(e.name, func(t *testing.T) { enginetest.Run(t, e.open) })
	}
}

// forEachEngine runs fn on a fresh wrapped engine of every kind.
func forEachEngine(t *testing.T, fn func(t *testing.T, fe *faultengine.Engine)) {
	for _, e := range adapters {
		t.Run(e.name, func(t *testing.T) {
			eng, err := e.open(t, t.TempDir())
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, eng.Close()) })
			fn(t, eng.(*faultengine.Engine))
		})
	}
}

func batch(kvs ...string) *engine.Batch {
	var b engine.Batch
	for i := 0; i+1 < len(kvs); i += 2 {
		b.Put([]byte(kvs[i]), []byte(kvs[i+1]))
	}
	return &b
}

func requireGet(t *testing.T, e engine.Engine, key, want string) {
	t.Helper()
	v, err := e.Get([]byte(key))
	require.NoError(t, err, "get %q", key)
	require.Equal(t, want, string(v), "get %q", key)
}

func requireNotFound(t *testing.T, e engine.Engine, key string) {
	t.Helper()
	_, err := e.Get([]byte(key))
	require.ErrorIs(t, err, engine.ErrNotFound, "get %q", key)
}

func keys(t *testing.T, e engine.Engine) []string {
	t.Helper()
	page, err := e.Scan(nil, nil, 1000, 0)
	require.NoError(t, err)
	var out []string
	for _, kv := range page {
		out = append(out, string(kv.Key))
	}
	return out
}

func TestBeforeApplyLeavesNothingVisible(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		require.NoError(t, fe.Write(batch("old", "1", "gone", "2"), true))

		fe.FailNextWrites(1, faultengine.BeforeApply)
		b := batch("new1", "a", "new2", "b", "old", "changed")
		b.Delete([]byte("gone"))
		b.DeleteRange([]byte("a"), []byte("z"))
		err := fe.Write(b, true)
		require.ErrorIs(t, err, faultengine.ErrInjected)
		require.Contains(t, err.Error(), "before apply")

		for _, e := range []engine.Engine{fe, fe.Unwrap()} {
			require.Equal(t, []string{"gone", "old"}, keys(t, e))
			requireGet(t, e, "old", "1")
			requireNotFound(t, e, "new1")
		}

		// The fault is spent: the same batch now applies.
		require.NoError(t, fe.Write(batch("new1", "a"), true))
		requireGet(t, fe, "new1", "a")
	})
}

func TestAfterApplyLeavesBatchVisible(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		fe.FailNextWrites(1, faultengine.AfterApply)
		b := batch("k1", "v1", "k2", "v2")
		err := fe.Write(b, true)
		require.ErrorIs(t, err, faultengine.ErrInjected)
		require.Contains(t, err.Error(), "after apply")
		requireGet(t, fe, "k1", "v1")
		requireGet(t, fe.Unwrap(), "k2", "v2")
		require.Equal(t, faultengine.Stats{Writes: 1, Syncs: 1, Failed: 1, Injected: 1}, fe.Stats())
	})
}

// TestAfterApplyKeepsEngineErrors: when the wrapped engine fails the write
// itself, its error comes back, not an injected one.
func TestAfterApplyKeepsEngineErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		fe.FailWrites(faultengine.AfterApply)
		var b engine.Batch
		b.Put(nil, []byte("v")) // an empty key is invalid
		err := fe.Write(&b, true)
		require.ErrorIs(t, err, engine.ErrInvalid)
		require.NotErrorIs(t, err, faultengine.ErrInjected)
		require.Equal(t, faultengine.Stats{Writes: 1, Syncs: 1, Failed: 1}, fe.Stats())
	})
}

func TestFailNextWritesCountsExactly(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
				fe.FailNextWrites(n, faultengine.BeforeApply)
				for i := range n + 3 {
					k := fmt.Sprintf("k%d", i)
					err := fe.Write(batch(k, "v"), false)
					if i < n {
						require.ErrorIs(t, err, faultengine.ErrInjected, "write %d", i)
						requireNotFound(t, fe, k)
					} else {
						require.NoError(t, err, "write %d", i)
						requireGet(t, fe, k, "v")
					}
				}
				require.Equal(t, faultengine.Stats{Writes: int64(n + 3), Failed: int64(n), Injected: int64(n)}, fe.Stats())
			})
		})
	}
}

func TestFailWritesUntilDisarm(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		fe.FailWrites(faultengine.BeforeApply)
		for i := range 5 {
			require.ErrorIs(t, fe.Write(batch("k", "v"), true), faultengine.ErrInjected, "write %d", i)
		}
		require.ErrorIs(t, fe.Write(&engine.Batch{}, true), faultengine.ErrInjected, "even an empty batch")
		requireNotFound(t, fe, "k")

		fe.Disarm()
		require.NoError(t, fe.Write(batch("k", "v"), true))
		requireGet(t, fe, "k", "v")
	})
}

// TestArmingReplaces: a write fault armed replaces the one before it.
func TestArmingReplaces(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		fe.FailWrites(faultengine.BeforeApply)
		fe.FailNextWrites(1, faultengine.AfterApply)
		require.ErrorIs(t, fe.Write(batch("a", "1"), true), faultengine.ErrInjected)
		requireGet(t, fe, "a", "1")
		require.NoError(t, fe.Write(batch("b", "2"), true), "the FailWrites fault was replaced")
	})
}

func TestFailWritesIf(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		fe.FailWritesIf(faultengine.BeforeApply, func(b *engine.Batch) bool {
			for _, op := range b.Ops() {
				if bytes.HasPrefix(op.Key, []byte("bad")) {
					return true
				}
			}
			return false
		})
		require.NoError(t, fe.Write(batch("good1", "v"), true))
		require.ErrorIs(t, fe.Write(batch("good2", "v", "bad", "v"), true), faultengine.ErrInjected)
		require.NoError(t, fe.Write(batch("good3", "v"), true))
		require.Equal(t, []string{"good1", "good3"}, keys(t, fe))
		require.Equal(t, faultengine.Stats{Writes: 3, Syncs: 3, Failed: 1, Injected: 1}, fe.Stats())
	})
}

func TestFailReads(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		require.NoError(t, fe.Write(batch("k", "v"), true))
		fe.FailReads()
		_, err := fe.Get([]byte("k"))
		require.ErrorIs(t, err, faultengine.ErrInjected)
		_, err = fe.Scan(nil, nil, 10, 0)
		require.ErrorIs(t, err, faultengine.ErrInjected)

		require.NoError(t, fe.Write(batch("k2", "v2"), true), "writes are not failed by a read fault")
		requireGet(t, fe.Unwrap(), "k2", "v2")

		fe.Disarm()
		requireGet(t, fe, "k", "v")
		require.Equal(t, []string{"k", "k2"}, keys(t, fe))
	})
}

// write starts a Write in a goroutine and returns the channel its result
// arrives on.
func write(fe *faultengine.Engine, b *engine.Batch) <-chan error {
	done := make(chan error, 1)
	go func() { done <- fe.Write(b, true) }()
	return done
}

func requireHeld(t *testing.T, fe *faultengine.Engine, n int, done ...<-chan error) {
	t.Helper()
	require.Eventually(t, func() bool { return fe.Waiting() == n }, 10*time.Second, time.Millisecond)
	for _, d := range done {
		select {
		case err := <-d:
			t.Fatalf("a held write returned: %v", err)
		default:
		}
	}
}

func TestBlockWritesHoldsAndReleases(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		release := fe.BlockWrites()
		t.Cleanup(release)

		d1 := write(fe, batch("k1", "v1"))
		d2 := write(fe, batch("k2", "v2"))
		requireHeld(t, fe, 2, d1, d2)
		requireNotFound(t, fe, "k1")
		requireNotFound(t, fe, "k2")
		require.Equal(t, int64(2), fe.Stats().Writes, "held writes are counted as attempted")

		release()
		require.NoError(t, <-d1)
		require.NoError(t, <-d2)
		require.Zero(t, fe.Waiting())
		requireGet(t, fe, "k1", "v1")
		requireGet(t, fe, "k2", "v2")

		release() // idempotent
		require.NoError(t, fe.Write(batch("k3", "v3"), true), "no block left")
	})
}

// TestBlockWritesNest: writes pass only once every block is released.
func TestBlockWritesNest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		r1 := fe.BlockWrites()
		r2 := fe.BlockWrites()
		t.Cleanup(r1)
		t.Cleanup(r2)

		d := write(fe, batch("k", "v"))
		requireHeld(t, fe, 1, d)
		r1()
		r1() // a second call of the same release does not release r2's block
		requireHeld(t, fe, 1, d)
		r2()
		require.NoError(t, <-d)
		requireGet(t, fe, "k", "v")
	})
}

// TestFaultDecidedOnRelease: a fault armed while a write is held applies to
// it, so a test can hold a group's write and then fail it.
func TestFaultDecidedOnRelease(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		release := fe.BlockWrites()
		t.Cleanup(release)
		d := write(fe, batch("k", "v"))
		requireHeld(t, fe, 1, d)

		fe.FailNextWrites(1, faultengine.BeforeApply)
		release()
		require.ErrorIs(t, <-d, faultengine.ErrInjected)
		requireNotFound(t, fe, "k")
	})
}

func TestStats(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		require.Equal(t, faultengine.Stats{}, fe.Stats())
		require.NoError(t, fe.Write(batch("a", "1"), true))
		require.NoError(t, fe.Write(batch("b", "2"), false))
		fe.FailNextWrites(2, faultengine.BeforeApply)
		require.Error(t, fe.Write(batch("c", "3"), true))
		require.Error(t, fe.Write(batch("d", "4"), false))
		fe.FailNextWrites(1, faultengine.AfterApply)
		require.Error(t, fe.Write(batch("e", "5"), true))
		var bad engine.Batch
		bad.Delete(nil)
		require.ErrorIs(t, fe.Write(&bad, false), engine.ErrInvalid, "an engine error counts as failed, not injected")
		require.Equal(t, faultengine.Stats{Writes: 6, Syncs: 3, Failed: 4, Injected: 3}, fe.Stats())
	})
}

// TestConcurrentArming arms, disarms and blocks from other goroutines while
// writers and readers run; under -race it checks the Engine's own locking.
// Every write either applies and returns nil or fails injected without
// applying.
func TestConcurrentArming(t *testing.T) {
	forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
		const writers, perWriter = 4, 50
		var wg sync.WaitGroup
		results := make([][]error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					results[w] = append(results[w], fe.Write(batch(fmt.Sprintf("w%d/%03d", w, i), "v"), false))
					_, _ = fe.Get([]byte("w0/000"))
				}
			}()
		}
		stop := make(chan struct{})
		armed := make(chan struct{})
		go func() {
			defer close(armed)
			for i := 0; ; i++ {
				select {
				case <-stop:
					fe.Disarm()
					return
				default:
				}
				switch i % 5 {
				case 0:
					fe.FailNextWrites(2, faultengine.BeforeApply)
				case 1:
					fe.FailWritesIf(faultengine.BeforeApply, func(b *engine.Batch) bool {
						k := b.Ops()[0].Key
						return k[len(k)-1]%2 == 1
					})
				case 2:
					fe.FailReads()
				case 3:
					fe.BlockWrites()()
				case 4:
					fe.Disarm()
				}
				_ = fe.Waiting()
				_ = fe.Stats()
			}
		}()
		wg.Wait()
		close(stop)
		<-armed

		var failed int64
		for w := range writers {
			for i, err := range results[w] {
				k := fmt.Sprintf("w%d/%03d", w, i)
				if err != nil {
					failed++
					require.ErrorIs(t, err, faultengine.ErrInjected)
					requireNotFound(t, fe, k)
				} else {
					requireGet(t, fe, k, "v")
				}
			}
		}
		require.Equal(t, faultengine.Stats{Writes: writers * perWriter, Failed: failed, Injected: failed}, fe.Stats())
	})
}

// TestFailWritesWithNoSpace: a fault armed with engine.ErrNoSpace as its
// cause fails writes as a full volume does, before and after apply, and the
// error wraps both the cause and ErrInjected.
func TestFailWritesWithNoSpace(t *testing.T) {
	for _, tc := range []struct {
		mode    faultengine.Mode
		visible bool
	}{
		{faultengine.BeforeApply, false},
		{faultengine.AfterApply, true},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, fe *faultengine.Engine) {
				fe.FailNextWritesWith(2, tc.mode, engine.ErrNoSpace)
				for _, k := range []string{"k1", "k2"} {
					err := fe.Write(batch(k, "v"), true)
					require.ErrorIs(t, err, engine.ErrNoSpace)
					require.ErrorIs(t, err, faultengine.ErrInjected)
					if tc.visible {
						requireGet(t, fe.Unwrap(), k, "v")
					} else {
						requireNotFound(t, fe.Unwrap(), k)
					}
				}
				require.NoError(t, fe.Write(batch("k3", "v"), true), "the fault is spent after 2 writes")

				fe.FailWritesWith(tc.mode, engine.ErrNoSpace)
				require.ErrorIs(t, fe.Write(batch("k4", "v"), true), engine.ErrNoSpace)
				fe.FailWritesWith(tc.mode, nil)
				err := fe.Write(batch("k5", "v"), true)
				require.ErrorIs(t, err, faultengine.ErrInjected)
				require.NotErrorIs(t, err, engine.ErrNoSpace)
				fe.Disarm()
				require.NoError(t, fe.Write(batch("k6", "v"), true))
				fe.FailNextWritesWith(0, tc.mode, engine.ErrNoSpace)
				require.NoError(t, fe.Write(batch("k7", "v"), true), "n <= 0 disarms")
			})
		})
	}
}
