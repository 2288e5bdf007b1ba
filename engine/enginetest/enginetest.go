// Package enginetest is the conformance suite every engine.Engine adapter
// passes. An adapter's own test calls Run with a function that opens the
// adapter on a folder, and RunCrossProcessLock from a test of its own to
// prove that two processes cannot hold one folder.
//
// Two more suites cover what an adapter must do when the disk fails it:
// RunFullDisk (a full volume: ENOSPC is engine.ErrNoSpace, reads go on,
// writes resume in place or after a reopen, as the adapter declares) and
// RunDamage (the adapter names how to damage its files: a crash's torn
// tail is recovered, damage in the middle is engine.ErrCorrupted). Tests
// of other packages that need a real full volume use SmallTmpfs and
// FillDisk.
//
// The suite uses real engines in t.TempDir() folders; it needs no fakes.
package enginetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
)

// OpenFunc opens (creating if needed) an engine on dir. The suite closes
// every engine it opens; an OpenFunc must not register its own cleanup that
// would fail on an engine the suite has already closed.
type OpenFunc func(t *testing.T, dir string) (engine.Engine, error)

// Run runs the whole conformance suite against the engine open returns, each
// case as a subtest on a fresh folder. The cases are independent and run
// sequentially.
func Run(t *testing.T, open OpenFunc) {
	cases := []struct {
		name string
		fn   func(t *testing.T, open OpenFunc)
	}{
		{"KeyOrder", testKeyOrder},
		{"RangeBounds", testRangeBounds},
		{"PageLimits", testPageLimits},
		{"Paging", testPaging},
		{"EmptyBatch", testEmptyBatch},
		{"InvalidBatchWritesNothing", testInvalidBatch},
		{"BatchAppliesInOrder", testBatchOrder},
		{"Delete", testDelete},
		{"DeleteRange", testDeleteRange},
		{"DeleteRangeLarge", testDeleteRangeLarge},
		{"Reopen", testReopen},
		{"EmptyValue", testEmptyValue},
		{"LargeValue", testLargeValue},
		{"NotFound", testNotFound},
		{"InvalidArguments", testInvalidArguments},
		{"CallerOwnsSlices", testOwnership},
		{"ConcurrentReadersSeeConsistentSnapshots", testConcurrentReaders},
		{"ExclusiveOpen", testExclusiveOpen},
		{"ExclusiveOpenThroughSymlink", testExclusiveOpenSymlink},
		{"Closed", testClosed},
		{"CloseDuringUse", testCloseDuringUse},
		{"Snapshot", testSnapshot},
		{"CloseWithOpenSnapshot", testCloseWithOpenSnapshot},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open) })
	}
}

// mustOpen opens an engine on dir and closes it when the test ends.
func mustOpen(t *testing.T, open OpenFunc, dir string) engine.Engine {
	t.Helper()
	e, err := open(t, dir)
	require.NoError(t, err)
	require.NotNil(t, e)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func fresh(t *testing.T, open OpenFunc) engine.Engine {
	t.Helper()
	return mustOpen(t, open, t.TempDir())
}

func put(t *testing.T, e engine.Engine, kvs ...string) {
	t.Helper()
	require.Zero(t, len(kvs)%2, "put takes key, value pairs")
	var b engine.Batch
	for i := 0; i < len(kvs); i += 2 {
		b.Put([]byte(kvs[i]), []byte(kvs[i+1]))
	}
	require.NoError(t, e.Write(&b, true))
}

func scanAll(t *testing.T, e engine.Engine, start, end []byte) []engine.KV {
	t.Helper()
	page, err := e.Scan(start, end, 1<<30, 0)
	require.NoError(t, err)
	return page
}

func keysOf(kvs []engine.KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key)
	}
	return out
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

func testKeyOrder(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	long := string(bytes.Repeat([]byte{'a'}, 1000))
	keys := []string{
		"\x00", "\x00\x00", "\x00\x01", "\x01",
		"a", "a\x00", "a\x00\x00", "a\x01", "a\xff", "aa", "ab", "abc", long, long + "\x00",
		"b", "\x7f", "\x80",
		"\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
	}
	shuffled := slices.Clone(keys)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	var b engine.Batch
	for _, k := range shuffled {
		b.Put([]byte(k), []byte("v"+k))
	}
	require.NoError(t, e.Write(&b, true))

	want := slices.Clone(keys)
	slices.Sort(want) // string order is bytewise order
	got := scanAll(t, e, nil, nil)
	require.Equal(t, want, keysOf(got))
	for _, kv := range got {
		require.Equal(t, "v"+string(kv.Key), string(kv.Value))
	}
	for _, k := range keys {
		requireGet(t, e, k, "v"+k)
	}

	// A prefix's range ends before its extensions when end is prefix+"\x00".
	require.Equal(t, []string{"a"}, keysOf(scanAll(t, e, []byte("a"), []byte("a\x00"))))
	// The range of keys starting with "a".
	require.Equal(t,
		[]string{"a", "a\x00", "a\x00\x00", "a\x01", "aa", long, long + "\x00", "ab", "abc", "a\xff"},
		keysOf(scanAll(t, e, []byte("a"), []byte("b"))))
	// 0xFF keys sort last, and a nil end includes them.
	require.Equal(t, []string{"\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"},
		keysOf(scanAll(t, e, []byte("\xff"), nil)))
	require.Equal(t, []string{"\xff", "\xff\x00"},
		keysOf(scanAll(t, e, []byte("\xff"), []byte("\xff\xff"))))
}

func testRangeBounds(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	var b engine.Batch
	var all []string
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		all = append(all, k)
		b.Put([]byte(k), []byte(k))
	}
	require.NoError(t, e.Write(&b, true))

	cases := []struct {
		name       string
		start, end []byte
		want       []string
	}{
		{"everything", nil, nil, all},
		{"empty start", []byte{}, nil, all},
		{"start inclusive, end exclusive", []byte("k05"), []byte("k10"), all[5:10]},
		{"nil end is unbounded", []byte("k15"), nil, all[15:]},
		{"bounds between keys", []byte("k05x"), []byte("k09x"), all[6:10]},
		{"start before first", []byte("a"), []byte("k03"), all[:3]},
		{"end after last", []byte("k18"), []byte("z"), all[18:]},
		{"start equals end", []byte("k05"), []byte("k05"), nil},
		{"empty end with empty start", nil, []byte{}, nil},
		{"start after last", []byte("z"), nil, nil},
		{"end before first", nil, []byte("a"), nil},
		{"single key", []byte("k07"), []byte("k07\x00"), all[7:8]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := scanAll(t, e, c.start, c.end)
			require.Equal(t, len(c.want), len(got))
			if len(c.want) > 0 {
				require.Equal(t, c.want, keysOf(got))
			}
		})
	}
}

func testPageLimits(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	var b engine.Batch
	for i := range 10 {
		// Every entry is 10 bytes: a 4-byte key and a 6-byte value.
		b.Put(fmt.Appendf(nil, "k%03d", i), []byte("value!"))
	}
	big := bytes.Repeat([]byte{'x'}, 4096)
	b.Put([]byte("z"), big)
	require.NoError(t, e.Write(&b, true))

	scan := func(start []byte, limit, maxBytes int) []string {
		t.Helper()
		page, err := e.Scan(start, nil, limit, maxBytes)
		require.NoError(t, err)
		return keysOf(page)
	}
	require.Equal(t, []string{"k000", "k001", "k002"}, scan(nil, 3, 0))
	require.Equal(t, []string{"k000"}, scan(nil, 1, 0))
	// The entry that brings the total to maxBytes or beyond ends the page.
	require.Equal(t, []string{"k000", "k001", "k002"}, scan(nil, 100, 25))
	require.Equal(t, []string{"k000", "k001", "k002"}, scan(nil, 100, 30))
	require.Equal(t, []string{"k000", "k001", "k002", "k003"}, scan(nil, 100, 31))
	// Whichever bound is hit first ends the page.
	require.Equal(t, []string{"k000", "k001"}, scan(nil, 2, 1000))
	// maxBytes <= 0 means no byte bound.
	require.Len(t, scan(nil, 100, 0), 11)
	require.Len(t, scan(nil, 100, -1), 11)
	// A page holds at least one entry, however large.
	require.Equal(t, []string{"k000"}, scan(nil, 100, 1))
	require.Equal(t, []string{"z"}, scan([]byte("z"), 100, 10))
	page, err := e.Scan([]byte("z"), nil, 100, 10)
	require.NoError(t, err)
	require.Equal(t, big, page[0].Value)
}

func testPaging(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]string{}
	var b engine.Batch
	for len(want) < 2000 {
		k := make([]byte, 1+rng.IntN(12))
		for i := range k {
			k[i] = byte(rng.IntN(4)) * 0x55 // 0x00, 0x55, 0xAA, 0xFF: many shared prefixes
		}
		v := make([]byte, rng.IntN(200))
		for i := range v {
			v[i] = byte(rng.Uint32())
		}
		want[string(k)] = string(v)
		b.Put(k, v)
	}
	require.NoError(t, e.Write(&b, true))
	sorted := make([]string, 0, len(want))
	for k := range want {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)

	for _, p := range []struct{ limit, maxBytes int }{{1, 0}, {7, 0}, {100, 512}, {1000, 1}, {3000, 0}} {
		t.Run(fmt.Sprintf("limit=%d,maxBytes=%d", p.limit, p.maxBytes), func(t *testing.T) {
			var got []string
			var start []byte
			pages := 0
			for {
				page, err := e.Scan(start, nil, p.limit, p.maxBytes)
				require.NoError(t, err)
				if len(page) == 0 {
					break
				}
				require.LessOrEqual(t, len(page), p.limit)
				pages++
				for _, kv := range page {
					require.Equal(t, want[string(kv.Key)], string(kv.Value))
					got = append(got, string(kv.Key))
				}
				// The next page starts just after the last key returned.
				start = append(slices.Clone(page[len(page)-1].Key), 0)
			}
			require.Equal(t, sorted, got, "every key exactly once, in order")
			if p.maxBytes == 1 {
				require.Equal(t, len(sorted), pages, "a 1-byte page holds exactly one entry")
			}
		})
	}
}

func testEmptyBatch(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	require.NoError(t, e.Write(&engine.Batch{}, true))
	require.NoError(t, e.Write(&engine.Batch{}, false))
	require.Empty(t, scanAll(t, e, nil, nil))
}

func testInvalidBatch(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	put(t, e, "keep", "1")

	bad := []func(b *engine.Batch){
		func(b *engine.Batch) { b.Put(nil, []byte("v")) },
		func(b *engine.Batch) { b.Put([]byte{}, []byte("v")) },
		func(b *engine.Batch) { b.Delete(nil) },
		func(b *engine.Batch) { b.DeleteRange([]byte("b"), []byte("a")) },
		func(b *engine.Batch) { b.DeleteRange([]byte("a"), []byte("a")) },
		func(b *engine.Batch) { b.DeleteRange(nil, []byte("z")) },
		func(b *engine.Batch) { b.DeleteRange([]byte("a"), nil) },
	}
	for i, add := range bad {
		var b engine.Batch
		b.Put([]byte("a"), []byte("1"))
		b.Delete([]byte("keep"))
		b.DeleteRange([]byte("k"), []byte("l"))
		add(&b)
		b.Put([]byte("z"), []byte("1"))
		err := e.Write(&b, true)
		require.ErrorIs(t, err, engine.ErrInvalid, "case %d", i)
	}
	require.Equal(t, []string{"keep"}, keysOf(scanAll(t, e, nil, nil)), "an invalid batch writes nothing")
}

func testBatchOrder(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	put(t, e, "old1", "o", "old2", "o", "old3", "o")

	var b engine.Batch
	// put then delete-range over it: gone.
	b.Put([]byte("a1"), []byte("x"))
	b.Put([]byte("a2"), []byte("x"))
	b.DeleteRange([]byte("a"), []byte("b"))
	// delete-range then put: kept.
	b.DeleteRange([]byte("c"), []byte("d"))
	b.Put([]byte("c1"), []byte("kept"))
	// put, delete, put: the last put wins.
	b.Put([]byte("e"), []byte("first"))
	b.Delete([]byte("e"))
	b.Put([]byte("e"), []byte("second"))
	// put then delete: gone.
	b.Put([]byte("f"), []byte("x"))
	b.Delete([]byte("f"))
	// overwrite twice: the last value wins.
	b.Put([]byte("g"), []byte("1"))
	b.Put([]byte("g"), []byte("2"))
	// a range delete over stored keys, then a put back into the range, then
	// a second range delete that must also remove the put.
	b.DeleteRange([]byte("old1"), []byte("old3"))
	b.Put([]byte("old1x"), []byte("x"))
	b.Put([]byte("old2"), []byte("again"))
	b.DeleteRange([]byte("old1"), []byte("old2"))
	require.NoError(t, e.Write(&b, true))

	got := scanAll(t, e, nil, nil)
	require.Equal(t, []string{"c1", "e", "g", "old2", "old3"}, keysOf(got))
	requireGet(t, e, "c1", "kept")
	requireGet(t, e, "e", "second")
	requireGet(t, e, "g", "2")
	requireGet(t, e, "old2", "again")
	requireGet(t, e, "old3", "o")
	requireNotFound(t, e, "a1")
	requireNotFound(t, e, "old1x")
}

func testDelete(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	put(t, e, "a", "1", "b", "2", "c", "3")
	var b engine.Batch
	b.Delete([]byte("b"))
	b.Delete([]byte("missing"))
	require.NoError(t, e.Write(&b, true))
	require.Equal(t, []string{"a", "c"}, keysOf(scanAll(t, e, nil, nil)))
	requireNotFound(t, e, "b")

	// A deleted key can be written again.
	put(t, e, "b", "again")
	requireGet(t, e, "b", "again")
}

func testDeleteRange(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	var b engine.Batch
	for i := range 10 {
		b.Put(fmt.Appendf(nil, "k%d", i), []byte("v"))
	}
	b.Put([]byte("k3\x00"), []byte("v"))
	b.Put([]byte("k7\xff"), []byte("v"))
	require.NoError(t, e.Write(&b, true))

	b.Reset()
	b.DeleteRange([]byte("k3"), []byte("k7")) // start inclusive, end exclusive
	require.NoError(t, e.Write(&b, true))
	require.Equal(t, []string{"k0", "k1", "k2", "k7", "k7\xff", "k8", "k9"}, keysOf(scanAll(t, e, nil, nil)))

	b.Reset()
	b.DeleteRange([]byte("a"), []byte("b")) // an empty range is fine
	b.DeleteRange([]byte("k8"), []byte("\xff\xff"))
	require.NoError(t, e.Write(&b, true))
	require.Equal(t, []string{"k0", "k1", "k2", "k7", "k7\xff"}, keysOf(scanAll(t, e, nil, nil)))
	requireNotFound(t, e, "k9")
	requireNotFound(t, e, "k3\x00")
}

func testDeleteRangeLarge(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	var b engine.Batch
	for i := range 5000 {
		b.Put(fmt.Appendf(nil, "k%05d", i), []byte("value"))
	}
	require.NoError(t, e.Write(&b, false))
	b.Reset()
	b.DeleteRange([]byte("k00010"), []byte("k04990"))
	require.NoError(t, e.Write(&b, true))
	got := scanAll(t, e, nil, nil)
	require.Len(t, got, 20)
	require.Equal(t, "k00009", string(got[9].Key))
	require.Equal(t, "k04990", string(got[10].Key))
}

func testReopen(t *testing.T, open OpenFunc) {
	dir := t.TempDir()
	e, err := open(t, dir)
	require.NoError(t, err)
	var b engine.Batch
	for i := range 100 {
		b.Reset()
		b.Put(fmt.Appendf(nil, "synced%03d", i), fmt.Appendf(nil, "v%d", i))
		require.NoError(t, e.Write(&b, true))
	}
	b.Reset()
	b.Delete([]byte("synced000"))
	b.DeleteRange([]byte("synced010"), []byte("synced020"))
	require.NoError(t, e.Write(&b, true))
	b.Reset()
	for i := range 100 {
		b.Put(fmt.Appendf(nil, "unsynced%03d", i), []byte("u"))
	}
	require.NoError(t, e.Write(&b, false), "an unsynced write survives a clean Close")
	require.NoError(t, e.Close())

	e = mustOpen(t, open, dir)
	got := scanAll(t, e, nil, nil)
	require.Len(t, got, 99-10+100)
	requireNotFound(t, e, "synced000")
	requireNotFound(t, e, "synced015")
	requireGet(t, e, "synced099", "v99")
	requireGet(t, e, "unsynced099", "u")

	// The reopened engine takes writes too.
	put(t, e, "after", "reopen")
	require.NoError(t, e.Close())
	e = mustOpen(t, open, dir)
	requireGet(t, e, "after", "reopen")
}

func testEmptyValue(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	var b engine.Batch
	b.Put([]byte("nil"), nil)
	b.Put([]byte("empty"), []byte{})
	require.NoError(t, e.Write(&b, true))
	for _, k := range []string{"nil", "empty"} {
		v, err := e.Get([]byte(k))
		require.NoError(t, err, "an empty value is not a missing key")
		require.Empty(t, v)
	}
	got := scanAll(t, e, nil, nil)
	require.Equal(t, []string{"empty", "nil"}, keysOf(got))
	require.Empty(t, got[0].Value)
	require.Empty(t, got[1].Value)
}

func testLargeValue(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	var b engine.Batch
	b.Put([]byte("big"), big)
	b.Put([]byte("big2"), big[:len(big)-1])
	b.Put([]byte("small"), []byte("s"))
	require.NoError(t, e.Write(&b, true))
	v, err := e.Get([]byte("big"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, v))
	page, err := e.Scan(nil, nil, 10, 1<<20)
	require.NoError(t, err)
	require.Len(t, page, 1, "the first entry alone reaches maxBytes")
	require.True(t, bytes.Equal(big, page[0].Value))
	page, err = e.Scan(nil, nil, 10, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"big", "big2", "small"}, keysOf(page))
	require.True(t, bytes.Equal(big[:len(big)-1], page[1].Value))
}

func testNotFound(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	requireNotFound(t, e, "nothing")
	put(t, e, "b", "1")
	requireNotFound(t, e, "a")
	requireNotFound(t, e, "b\x00")
	requireNotFound(t, e, "c")
	_, err := e.Get([]byte("missing"))
	require.False(t, errors.Is(err, engine.ErrClosed))
}

func testInvalidArguments(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	put(t, e, "a", "1")
	for _, limit := range []int{0, -1} {
		_, err := e.Scan(nil, nil, limit, 0)
		require.ErrorIs(t, err, engine.ErrInvalid, "limit %d", limit)
	}
	_, err := e.Scan([]byte("b"), []byte("a"), 10, 0)
	require.ErrorIs(t, err, engine.ErrInvalid, "inverted range")
	_, err = e.Scan([]byte("a"), []byte{}, 10, 0)
	require.ErrorIs(t, err, engine.ErrInvalid, "inverted range with an empty end")
	_, err = e.Get(nil)
	require.ErrorIs(t, err, engine.ErrInvalid, "empty key")
	_, err = e.Get([]byte{})
	require.ErrorIs(t, err, engine.ErrInvalid, "empty key")
}

func testOwnership(t *testing.T, open OpenFunc) {
	e := fresh(t, open)

	// The caller may reuse its batch buffers once Write returns.
	key := []byte("key1")
	val := []byte("value1")
	var b engine.Batch
	b.Put(key, val)
	b.Put([]byte("key2"), []byte("value2"))
	require.NoError(t, e.Write(&b, true))
	copy(key, "XXXX")
	copy(val, "YYYYYY")
	requireGet(t, e, "key1", "value1")

	// A returned value is the caller's.
	v, err := e.Get([]byte("key1"))
	require.NoError(t, err)
	copy(v, "ZZZZZZ")
	requireGet(t, e, "key1", "value1")

	page := scanAll(t, e, nil, nil)
	require.Len(t, page, 2)
	copy(page[0].Key, "QQQQ")
	copy(page[0].Value, "RRRRRR")
	// Appending to a returned slice does not overwrite its neighbours.
	_ = append(page[0].Key, "overflow"...)
	_ = append(page[0].Value, "overflow"...)
	require.Equal(t, "key2", string(page[1].Key))
	require.Equal(t, "value2", string(page[1].Value))
	require.Equal(t, []string{"key1", "key2"}, keysOf(scanAll(t, e, nil, nil)))
	requireGet(t, e, "key1", "value1")

	// Scan bounds may be reused after the call.
	start, end := []byte("key1"), []byte("key3")
	page, err = e.Scan(start, end, 10, 0)
	require.NoError(t, err)
	copy(start, "aaaa")
	copy(end, "aaaa")
	require.Equal(t, []string{"key1", "key2"}, keysOf(page))

	// A page outlives later writes.
	put(t, e, "key1", "changed")
	require.Equal(t, "value2", string(page[1].Value))
}

// testConcurrentReaders runs one writer whose every batch keeps an invariant
// (keys a/N and b/N exist together) while readers scan and get. A reader that
// ever sees one of a pair without the other has seen a torn batch.
func testConcurrentReaders(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	const batches = 400
	const window = 25 // pairs older than this are deleted
	aKey := func(i int) []byte { return fmt.Appendf(nil, "a/%06d", i) }
	bKey := func(i int) []byte { return fmt.Appendf(nil, "b/%06d", i) }

	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		var b engine.Batch
		for i := range batches {
			b.Reset()
			v := fmt.Appendf(nil, "%d", i)
			b.Put(aKey(i), v)
			b.Put(bKey(i), v)
			if old := i - window; old >= 0 {
				if i%2 == 0 {
					b.DeleteRange(aKey(old), aKey(old+1))
					b.Delete(bKey(old))
				} else {
					b.Delete(aKey(old))
					b.DeleteRange(bKey(old), bKey(old+1))
				}
			}
			if err := e.Write(&b, i%50 == 0); err != nil {
				fail(fmt.Errorf("write %d: %w", i, err))
				return
			}
		}
	}()

	scanner := func() {
		defer wg.Done()
		scans := 0
		for !done.Load() || scans < 10 {
			scans++
			page, err := e.Scan([]byte("a/"), []byte("b0"), 1<<20, 0)
			if err != nil {
				fail(err)
				return
			}
			as, bs := map[string]string{}, map[string]string{}
			for _, kv := range page {
				switch kv.Key[0] {
				case 'a':
					as[string(kv.Key[2:])] = string(kv.Value)
				case 'b':
					bs[string(kv.Key[2:])] = string(kv.Value)
				}
			}
			if len(as) != len(bs) {
				fail(fmt.Errorf("torn snapshot: %d a-keys, %d b-keys", len(as), len(bs)))
				return
			}
			for k, v := range as {
				if bs[k] != v {
					fail(fmt.Errorf("torn snapshot: a/%s=%q but b/%s=%q", k, v, k, bs[k]))
					return
				}
			}
			if len(as) > window {
				fail(fmt.Errorf("snapshot holds %d pairs, more than the writer keeps", len(as)))
				return
			}
		}
	}
	getter := func() {
		defer wg.Done()
		for i := 0; !done.Load(); i = (i + 1) % batches {
			// b/N is written with a/N, so once b/N is seen, a/N (read
			// later) exists unless the writer has since deleted both.
			vb, errB := e.Get(bKey(i))
			if errB != nil && !errors.Is(errB, engine.ErrNotFound) {
				fail(errB)
				return
			}
			va, errA := e.Get(aKey(i))
			if errA != nil && !errors.Is(errA, engine.ErrNotFound) {
				fail(errA)
				return
			}
			if errB == nil && errA == nil && !bytes.Equal(va, vb) {
				fail(fmt.Errorf("a/%d=%q but b/%d=%q", i, va, i, vb))
				return
			}
		}
	}
	for range 3 {
		wg.Add(2)
		go scanner()
		go getter()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, scanAll(t, e, nil, nil), 2*window)
}

func testExclusiveOpen(t *testing.T, open OpenFunc) {
	dir := t.TempDir()
	e := mustOpen(t, open, dir)
	for range 2 {
		requireLocked(t, open, dir)
	}
	// The first engine is unharmed by the failed opens.
	put(t, e, "k", "v")
	requireGet(t, e, "k", "v")
	require.NoError(t, e.Close())

	e = mustOpen(t, open, dir)
	requireGet(t, e, "k", "v")
}

func testExclusiveOpenSymlink(t *testing.T, open OpenFunc) {
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	link := filepath.Join(base, "link")
	require.NoError(t, os.Mkdir(dir, 0o755))
	if err := os.Symlink(dir, link); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	e := mustOpen(t, open, dir)
	requireLocked(t, open, link)
	put(t, e, "k", "v")
	requireGet(t, e, "k", "v")
}

// requireLocked checks that opening dir fails fast with ErrLocked, naming dir.
func requireLocked(t *testing.T, open OpenFunc, dir string) {
	t.Helper()
	begin := time.Now()
	e2, err := open(t, dir)
	if err == nil {
		_ = e2.Close()
	}
	require.ErrorIs(t, err, engine.ErrLocked, "a second open of a held folder")
	require.Contains(t, err.Error(), dir, "the error names the folder")
	require.Less(t, time.Since(begin), 5*time.Second, "a second open fails fast")
}

func testClosed(t *testing.T, open OpenFunc) {
	e, err := open(t, t.TempDir())
	require.NoError(t, err)
	put(t, e, "k", "v")
	require.NoError(t, e.Close())

	var b engine.Batch
	b.Put([]byte("k"), []byte("v"))
	require.ErrorIs(t, e.Write(&b, true), engine.ErrClosed)
	require.ErrorIs(t, e.Write(&b, false), engine.ErrClosed)
	require.ErrorIs(t, e.Write(&engine.Batch{}, true), engine.ErrClosed, "even an empty batch")
	_, err = e.Get([]byte("k"))
	require.ErrorIs(t, err, engine.ErrClosed)
	_, err = e.Get(nil)
	require.ErrorIs(t, err, engine.ErrClosed)
	_, err = e.Scan(nil, nil, 10, 0)
	require.ErrorIs(t, err, engine.ErrClosed)
	_, err = e.Scan(nil, nil, 0, 0)
	require.ErrorIs(t, err, engine.ErrClosed)
	require.NoError(t, e.Close(), "Close is idempotent")
	require.NoError(t, e.Close())
}

// testCloseDuringUse closes an engine while goroutines write, get and scan:
// every call either works or fails with ErrClosed, and nothing panics.
func testCloseDuringUse(t *testing.T, open OpenFunc) {
	e, err := open(t, t.TempDir())
	require.NoError(t, err)
	put(t, e, "k", "v")

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	var started sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			var b engine.Batch
			for i := 0; ; i++ {
				if i == 1 {
					started.Done()
				}
				var err error
				switch g % 3 {
				case 0:
					b.Reset()
					b.Put(fmt.Appendf(nil, "g%d/%d", g, i), []byte("v"))
					if i%16 == 0 {
						// Not in every batch: range tombstones pile up in
						// pebble's memtable and slow every read down.
						b.DeleteRange([]byte("g"), []byte("g\x00"))
					}
					err = e.Write(&b, false)
				case 1:
					_, err = e.Get([]byte("k"))
				case 2:
					_, err = e.Scan(nil, nil, 100, 0)
				}
				if err != nil {
					if !errors.Is(err, engine.ErrClosed) {
						errs <- err
					}
					if i < 1 {
						started.Done()
					}
					return
				}
			}
		}()
	}
	started.Wait()
	var closers sync.WaitGroup
	for range 2 {
		closers.Add(1)
		go func() {
			defer closers.Done()
			if err := e.Close(); err != nil {
				errs <- err
			}
		}()
	}
	closers.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// testSnapshot: a view taken by an engine.Snapshotter sees the writes made
// before it, none made after it (puts, deletes, range deletes), pages like
// Scan, and survives concurrent writes. Engines without the capability skip.
func testSnapshot(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	sn, ok := e.(engine.Snapshotter)
	if !ok {
		t.Skip("engine has no Snapshotter")
	}
	for i := range 100 {
		put(t, e, fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", i))
	}
	put(t, e, "\x00", "", "\xff\xff", "last")
	before := scanAll(t, e, nil, nil)
	v, err := sn.Snapshot()
	require.NoError(t, err)
	defer func() { require.NoError(t, v.Close()) }()

	var b engine.Batch
	b.Put([]byte("k050x"), []byte("new"))
	b.Delete([]byte("k001"))
	b.DeleteRange([]byte("k010"), []byte("k020"))
	require.NoError(t, e.Write(&b, false))
	require.NotEqual(t, keysOf(before), keysOf(scanAll(t, e, nil, nil)))

	all, err := v.Scan(nil, nil, 1<<30, 0)
	require.NoError(t, err)
	require.Equal(t, before, all)
	var paged []engine.KV
	start := []byte{}
	for {
		page, err := v.Scan(start, nil, 7, 0)
		require.NoError(t, err)
		paged = append(paged, page...)
		if len(page) < 7 {
			break
		}
		start = append(bytes.Clone(page[len(page)-1].Key), 0)
	}
	require.Equal(t, before, paged)
	sub, err := v.Scan([]byte("k010"), []byte("k012"), 10, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"k010", "k011"}, keysOf(sub))
	require.NoError(t, v.Close())
	_, err = v.Scan(nil, nil, 1, 0)
	require.ErrorIs(t, err, engine.ErrClosed)
}

// testCloseWithOpenSnapshot: closing the engine with a view open neither
// hangs nor fails, and the view then answers ErrClosed.
func testCloseWithOpenSnapshot(t *testing.T, open OpenFunc) {
	e := fresh(t, open)
	sn, ok := e.(engine.Snapshotter)
	if !ok {
		t.Skip("engine has no Snapshotter")
	}
	put(t, e, "a", "1")
	v, err := sn.Snapshot()
	require.NoError(t, err)
	require.NoError(t, e.Close())
	_, err = v.Scan(nil, nil, 1, 0)
	require.ErrorIs(t, err, engine.ErrClosed)
	require.NoError(t, v.Close())
}
