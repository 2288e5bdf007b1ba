package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

var (
	sizes       = []int{100, 1024}
	batchSizes  = []int{1, 16, 128}
	appenderSet = []int{1, 16}
	syncModes   = []bool{true, false}
)

const (
	readTopicEvents = 1_000_000 // events in the topic the read benchmarks scan
	otherTopics     = 4         // topics interleaved with it, before and after
	otherEvents     = 50_000    // events in each of them
	readPayload     = 100
	readPage        = 1000
)

// payloadOf returns n pseudo-random bytes: incompressible, so that engines
// that compress blocks (goleveldb, pebble) are not flattered by zeros.
func payloadOf(n int) []byte {
	p := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

func openStore(b *testing.B, name, dir string, sync bool) *store.Store {
	return openStoreMode(b, name, dir, sync, store.CommitLeader)
}

func openStoreMode(b *testing.B, name, dir string, sync bool, mode store.CommitMode) *store.Store {
	b.Helper()
	e, err := engines.Open(name, dir)
	if err != nil {
		b.Fatal(err)
	}
	opts := store.DefaultOptions()
	opts.UnsafeNoSync = !sync
	opts.CommitMode = mode
	s, err := store.Open(e, opts)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func reportEvents(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// runAppenders splits b.N operations among n goroutines and runs op in
// each; the operations are handed out by an atomic counter, so the harness
// adds no goroutine hop of its own.
func runAppenders(b *testing.B, n int, op func(worker int) error) {
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(b.N))
	errs := make(chan error, n)
	b.ResetTimer()
	for w := range n {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := op(w); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// cpuClock reads the process's user and system CPU time (getrusage), for
// CPU per event in benchmarks: the figure that bounds throughput when
// clients and server share the machine's cores.
func cpuClock() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time used since start per event, in µs.
func reportCPU(b *testing.B, start time.Duration, events int) {
	if events > 0 {
		b.ReportMetric(float64(cpuClock()-start)/float64(time.Microsecond)/float64(events), "cpu-µs/event")
	}
}

// BenchmarkAppend measures Store.Append: one op is one Append call of batch
// events, issued by appenders concurrent goroutines, so group commit merges
// their calls.
func BenchmarkAppend(b *testing.B) {
	for _, eng := range engines.Names {
		for _, sync := range syncModes {
			for _, size := range sizes {
				for _, batch := range batchSizes {
					for _, appenders := range appenderSet {
						name := fmt.Sprintf("engine=%s/sync=%t/size=%s/batch=%d/appenders=%d", eng, sync, sizeName(size), batch, appenders)
						b.Run(name, func(b *testing.B) { benchAppend(b, eng, sync, size, batch, appenders) })
					}
				}
			}
		}
	}
}

func benchAppend(b *testing.B, eng string, sync bool, size, batch, appenders int) {
	benchAppendMode(b, eng, sync, size, batch, appenders, store.CommitLeader)
}

// BenchmarkCommitMode compares who commits a group (store.CommitMode): the
// appender that finds the store idle, or always the writer goroutine, with
// one-event appends, by events/s, appends per commit and CPU per event.
func BenchmarkCommitMode(b *testing.B) {
	for _, eng := range engines.Names {
		for _, sync := range syncModes {
			for _, appenders := range appenderSet {
				for _, mode := range []store.CommitMode{store.CommitLeader, store.CommitWriter} {
					name := fmt.Sprintf("engine=%s/sync=%t/size=100B/batch=1/appenders=%d/mode=%s", eng, sync, appenders, mode)
					b.Run(name, func(b *testing.B) { benchAppendMode(b, eng, sync, 100, 1, appenders, mode) })
				}
			}
		}
	}
}

func benchAppendMode(b *testing.B, eng string, sync bool, size, batch, appenders int, mode store.CommitMode) {
	s := openStoreMode(b, eng, b.TempDir(), sync, mode)
	defer s.Close()
	payload := payloadOf(size)
	ctx := context.Background()
	evs := make([][]store.Event, appenders)
	for w := range evs {
		evs[w] = make([]store.Event, batch)
		for i := range evs[w] {
			evs[w][i].Payload = payload
		}
	}
	b.SetBytes(int64(size * batch))
	b.ReportAllocs()
	cpu := cpuClock()
	runAppenders(b, appenders, func(w int) error {
		_, err := s.Append(ctx, "bench", evs[w], store.ExpectAny)
		return err
	})
	reportEvents(b, b.N*batch)
	reportCPU(b, cpu, b.N*batch)
	st := s.Stats()
	b.ReportMetric(float64(st.Requests)/float64(st.Commits), "appends/commit")
}

// BenchmarkRawWrite is the engine alone writing what one Append of batch
// events writes: the event keys and values plus the topic's metadata record,
// in one batch, from one writer. BenchmarkAppend with appenders=1 divided by
// this is the store's overhead.
func BenchmarkRawWrite(b *testing.B) {
	for _, eng := range engines.Names {
		for _, sync := range syncModes {
			for _, size := range sizes {
				for _, batch := range batchSizes {
					name := fmt.Sprintf("engine=%s/sync=%t/size=%s/batch=%d", eng, sync, sizeName(size), batch)
					b.Run(name, func(b *testing.B) { benchRawWrite(b, eng, sync, size, batch) })
				}
			}
		}
	}
}

func benchRawWrite(b *testing.B, eng string, sync bool, size, batch int) {
	e, err := engines.Open(eng, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	payload := payloadOf(size)
	meta := make([]byte, 48)
	var wb engine.Batch
	buf := make([]byte, 0, batch*(size+32))
	id := uint64(time.Now().UnixNano())
	seq := uint64(0)
	b.SetBytes(int64(size * batch))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		wb.Reset()
		buf = buf[:0]
		for range batch {
			seq++
			id++
			start := len(buf)
			buf = binary.BigEndian.AppendUint64(buf, 1)
			buf = binary.BigEndian.AppendUint64(buf, id)
			k := buf[start:len(buf):len(buf)]
			start = len(buf)
			buf = append(buf, 1)
			buf = binary.AppendUvarint(buf, seq)
			buf = append(buf, 0)
			buf = append(buf, payload...)
			wb.Put(k, buf[start:len(buf):len(buf)])
		}
		wb.Put([]byte{0xF2, 0, 0, 0, 0, 0, 0, 0, 1}, meta)
		if err := e.Write(&wb, sync); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportEvents(b, b.N*batch)
}

// readFixture is a data folder holding one topic, "read", of events of one
// payload size among otherTopics other topics whose events interleave with
// its own, built once per engine and size per process.
type readFixture struct {
	dir             string
	events          int
	firstID, lastID uint64
}

var (
	fixtureMu   sync.Mutex
	fixtures    = map[string]*readFixture{}
	fixtureRoot string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureRoot != "" {
		os.RemoveAll(fixtureRoot)
	}
	os.Exit(code)
}

// fixture is the 1,000,000-event topic of 100 B events.
func fixture(b *testing.B, eng string) *readFixture { return fixtureOf(b, eng, readPayload) }

// fixtureOf builds (once) the read topic with events of size bytes: 100 MB
// of payload at most, so 1,000,000 events of 100 B or 100,000 of 1 KiB.
func fixtureOf(b *testing.B, eng string, size int) *readFixture {
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	key := fmt.Sprintf("%s-%d", eng, size)
	if f := fixtures[key]; f != nil {
		return f
	}
	if fixtureRoot == "" {
		var err error
		if fixtureRoot, err = os.MkdirTemp("", "goethe-bench-"); err != nil {
			b.Fatal(err)
		}
	}
	total := min(readTopicEvents, 100_000_000/size)
	dir := fmt.Sprintf("%s/%s", fixtureRoot, key)
	s := openStore(b, eng, dir, false)
	ctx := context.Background()
	payload := payloadOf(size)
	batch := make([]store.Event, 1000)
	for i := range batch {
		batch[i].Payload = payload
	}
	f := &readFixture{dir: dir, events: total}
	// Half the other topics are created before the read topic and half
	// after, so its key range sits between theirs; their events interleave
	// with its events in time.
	for t := range otherTopics / 2 {
		if _, err := s.Append(ctx, fmt.Sprintf("other-%d", t), batch[:1], store.ExpectAny); err != nil {
			b.Fatal(err)
		}
	}
	every := total / (otherEvents / len(batch)) // each other topic gets otherEvents
	for i := 0; i < total; i += len(batch) {
		res, err := s.Append(ctx, "read", batch, store.ExpectAny)
		if err != nil {
			b.Fatal(err)
		}
		if f.firstID == 0 {
			f.firstID = res.FirstID
		}
		if every > 0 && i%every == 0 {
			for t := range otherTopics {
				if _, err := s.Append(ctx, fmt.Sprintf("other-%d", t), batch, store.ExpectAny); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	info, err := s.Info("read")
	if err != nil {
		b.Fatal(err)
	}
	f.lastID = info.LastID
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	fixtures[key] = f
	return f
}

// BenchmarkRead measures a sequential Store.Read of a 1,000,000-event topic,
// page by page; one op is one event, so ns/op is the time per event and
// allocs/op the allocations per event.
func BenchmarkRead(b *testing.B) {
	for _, eng := range engines.Names {
		b.Run(fmt.Sprintf("engine=%s/size=%s/page=%d", eng, sizeName(readPayload), readPage), func(b *testing.B) {
			f := fixture(b, eng)
			s := openStore(b, eng, f.dir, false)
			defer s.Close()
			b.SetBytes(readPayload)
			b.ReportAllocs()
			b.ResetTimer()
			from := store.FromBeginning
			for n := 0; n < b.N; {
				p, err := s.Read("read", from, min(readPage, b.N-n))
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Events) == 0 {
					from = store.FromBeginning // wrap around
					continue
				}
				n += len(p.Events)
				from = p.Next
			}
			b.StopTimer()
			reportEvents(b, b.N)
		})
	}
}

// BenchmarkRawScan is the engine alone scanning the same topic range in
// pages of the same size: BenchmarkRead divided by it is the store's
// read overhead.
func BenchmarkRawScan(b *testing.B) {
	for _, eng := range engines.Names {
		b.Run(fmt.Sprintf("engine=%s/size=%s/page=%d", eng, sizeName(readPayload), readPage), func(b *testing.B) {
			f := fixture(b, eng)
			e, err := engines.Open(eng, f.dir)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			// The read topic is the third created: find its id from its first key.
			start, end := topicRange(b, e)
			b.SetBytes(readPayload)
			b.ReportAllocs()
			b.ResetTimer()
			from := start
			for n := 0; n < b.N; {
				kvs, err := e.Scan(from, end, min(readPage, b.N-n), 4<<20)
				if err != nil {
					b.Fatal(err)
				}
				if len(kvs) == 0 {
					from = start
					continue
				}
				n += len(kvs)
				last := kvs[len(kvs)-1].Key
				from = append(append(from[:0:0], last...), 0)
			}
			b.StopTimer()
			reportEvents(b, b.N)
		})
	}
}

// topicRange finds the key range of the "read" topic through the catalog.
func topicRange(b *testing.B, e engine.Engine) (start, end []byte) {
	v, err := e.Get(append([]byte{0xF1}, "read"...))
	if err != nil {
		b.Fatal(err)
	}
	tid := binary.BigEndian.Uint64(v)
	return binary.BigEndian.AppendUint64(nil, tid), binary.BigEndian.AppendUint64(nil, tid+1)
}

// BenchmarkSeek measures a time seek: Read of one event at a random time
// within the topic's span. One op is one seek.
func BenchmarkSeek(b *testing.B) {
	for _, eng := range engines.Names {
		b.Run(fmt.Sprintf("engine=%s", eng), func(b *testing.B) {
			f := fixture(b, eng)
			s := openStore(b, eng, f.dir, false)
			defer s.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			span := f.lastID - f.firstID
			b.SetBytes(readPayload)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				at := f.firstID + rng.Uint64N(span+1)
				p, err := s.Read("read", at, 1)
				if err != nil || len(p.Events) != 1 {
					b.Fatalf("seek %d: %v, %d events", at, err, len(p.Events))
				}
			}
			b.StopTimer()
			reportEvents(b, b.N)
		})
	}
}
