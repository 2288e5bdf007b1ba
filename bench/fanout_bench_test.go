package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// fanoutFollowers are the follower counts of the fan-out benchmarks: how
// the write path's latency grows with the readers parked at the end of the
// topic it writes (issue 9, item 5: 2,000 followers took Produce from ~1 ms
// to ~103 ms).
var fanoutFollowers = []int{0, 10, 100, 1000, 2000}

// fanoutStreamsPerConn is how many follower streams share one client
// connection in BenchmarkFanoutProduce: 2,000 followers on 40 connections,
// below any per-connection stream cap the server sets.
const fanoutStreamsPerConn = 50

// fanoutDrain bounds the wait for every follower to have received every
// event once the timed loop ends.
const fanoutDrain = 2 * time.Minute

// latencies records one duration per op and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	at := func(q float64) float64 {
		return float64(l[min(len(l)-1, int(q*float64(len(l))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// followerSet counts what followers received and checks that each saw the
// topic's events in order, with dense seqs. Use newFollowerSet.
type followerSet struct {
	received atomic.Int64
	wake     chan struct{} // holds a token after a receipt or a failure
	mu       sync.Mutex
	err      error
}

func newFollowerSet() *followerSet { return &followerSet{wake: make(chan struct{}, 1)} }

// add counts n events received and wakes await.
func (f *followerSet) add(n int64) {
	f.received.Add(n)
	f.signal()
}

func (f *followerSet) signal() {
	select {
	case f.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

func (f *followerSet) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	f.signal()
}

func (f *followerSet) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// await waits until n events in all were received, or fails b: on a
// follower's failure, or after fanoutDrain.
func (f *followerSet) await(b *testing.B, n int64) {
	deadline := time.NewTimer(fanoutDrain)
	defer deadline.Stop()
	for f.received.Load() < n {
		if err := f.failed(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-f.wake:
		case <-deadline.C:
			b.Fatalf("followers received %d events of %d within %v", f.received.Load(), n, fanoutDrain)
		}
	}
	if err := f.failed(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFanoutAppend measures Store.Append while followers wait at the
// end of the topic: each follower is a goroutine doing what the server's
// Consume does with follow on (Read a page; at the end, Wait), without
// gRPC. One op is one fsync'd Append of one 100 B event by one appender;
// the next starts when it returns, while the followers still read. p50-µs
// and p99-µs are the Append latencies.
func BenchmarkFanoutAppend(b *testing.B) {
	for _, eng := range engines.Names {
		for _, n := range fanoutFollowers {
			b.Run(fmt.Sprintf("engine=%s/sync=true/size=100B/followers=%d", eng, n), func(b *testing.B) {
				benchFanoutAppend(b, eng, n)
			})
		}
	}
}

func benchFanoutAppend(b *testing.B, eng string, followers int) {
	st := openStore(b, eng, b.TempDir(), true)
	ctx, cancel := context.WithCancel(context.Background())
	events := []store.Event{{Payload: payloadOf(100)}}
	// The topic exists and followers start at its end.
	res, err := st.Append(ctx, "fan", events, store.ExpectAny)
	if err != nil {
		b.Fatal(err)
	}
	fs := newFollowerSet()
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	for range followers {
		// A context of its own, as each Consume stream has.
		ctx, cancel := context.WithCancel(ctx)
		wg.Go(func() {
			defer cancel()
			pos, seq := store.After(res.FirstID), res.FirstSeq
			for {
				p, err := st.Read("fan", pos, 0)
				if err != nil {
					fs.fail(err)
					return
				}
				if len(p.Events) == 0 {
					if err := st.Wait(ctx, "fan", pos); err != nil {
						if !errors.Is(err, context.Canceled) {
							fs.fail(err)
						}
						return
					}
					continue
				}
				for i := range p.Events {
					if seq++; p.Events[i].Seq != seq {
						fs.fail(fmt.Errorf("follower got seq %d, want %d", p.Events[i].Seq, seq))
						return
					}
				}
				fs.add(int64(len(p.Events)))
				pos = p.Next
			}
		})
	}
	// A warm-up append that every follower receives: all are running.
	if _, err := st.Append(ctx, "fan", events, store.ExpectAny); err != nil {
		b.Fatal(err)
	}
	fs.await(b, int64(followers))
	lat := make(latencies, 0, b.N)
	b.ReportAllocs()
	cpu := cpuClock()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := st.Append(ctx, "fan", events, store.ExpectAny); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportCPU(b, cpu, b.N)
	lat.report(b)
	fs.await(b, int64(followers)*int64(b.N+1))
}

// BenchmarkFanoutProduce is BenchmarkFanoutAppend through a loopback gRPC
// server: followers are Consume streams with follow on, started at the end
// of the topic (fanoutStreamsPerConn per client connection), and one op is
// one Produce of one 100 B event on a connection of its own. Client and
// server share the process, so the followers' receiving costs CPU beside
// the server's sending.
func BenchmarkFanoutProduce(b *testing.B) {
	for _, eng := range engines.Names {
		for _, n := range fanoutFollowers {
			b.Run(fmt.Sprintf("engine=%s/sync=true/size=100B/followers=%d", eng, n), func(b *testing.B) {
				benchFanoutProduce(b, eng, n)
			})
		}
	}
}

func benchFanoutProduce(b *testing.B, eng string, followers int) {
	addr, _ := startServer(b, eng, b.TempDir(), true)
	producer := dial(b, addr)
	ctx, cancel := context.WithCancel(context.Background())
	events := []client.EventData{{Payload: payloadOf(100)}}
	if _, err := producer.Produce(ctx, "fan", events); err != nil {
		b.Fatal(err)
	}
	fs := newFollowerSet()
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	heap0 := liveHeap()
	var conn *client.Client
	for i := range followers {
		if i%fanoutStreamsPerConn == 0 {
			conn = dial(b, addr)
		}
		sub, err := conn.Subscribe(ctx, "fan", client.ConsumeOptions{From: client.End(), Follow: true})
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer sub.Close()
			var seq uint64
			for {
				ev, err := sub.Next()
				if err != nil {
					if ctx.Err() == nil {
						fs.fail(err)
					}
					return
				}
				if seq != 0 && ev.Seq != seq+1 {
					fs.fail(fmt.Errorf("follower got seq %d after %d", ev.Seq, seq))
					return
				}
				seq = ev.Seq
				fs.add(1)
			}
		})
	}
	if _, err := producer.Produce(ctx, "fan", events); err != nil {
		b.Fatal(err)
	}
	fs.await(b, int64(followers))
	// What a follower at the end holds while it waits: its stream on
	// both sides (server and client share the process) and its
	// connection's share (goroutine stacks are not counted). Reported
	// after the loop: ResetTimer drops metrics reported before it.
	heapPer := float64(liveHeap()-heap0) / float64(max(followers, 1))
	lat := make(latencies, 0, b.N)
	b.ReportAllocs()
	cpu := cpuClock()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := producer.Produce(ctx, "fan", events); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportCPU(b, cpu, b.N)
	lat.report(b)
	if followers > 0 {
		b.ReportMetric(heapPer, "heap-B/follower")
	}
	fs.await(b, int64(followers)*int64(b.N+1))
}

// liveHeap is the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
