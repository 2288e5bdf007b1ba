package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitFor is the result of an acquire run on a goroutine of its own.
type waitFor struct {
	tok *fanoutToken
	err error
}

func acquireAsync(g *fanoutGate, ctx context.Context) <-chan waitFor {
	ch := make(chan waitFor, 1)
	go func() {
		t, err := g.acquire(ctx)
		ch <- waitFor{t, err}
	}()
	return ch
}

// got requires ch to deliver within a generous bound.
func got(t *testing.T, ch <-chan waitFor) waitFor {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("acquire did not return")
	}
	return waitFor{}
}

// The gate grants k tokens at once and no more: the k+1-th acquire waits,
// blocked, until one is released; k = 1 is the smallest gate.
func TestFanoutGateBound(t *testing.T) {
	for _, k := range []int{1, 2, 5} {
		g := newFanoutGate(k, time.Hour)
		toks := make([]*fanoutToken, k)
		for i := range toks {
			tok, err := g.acquire(context.Background())
			require.NoError(t, err)
			toks[i] = tok
		}
		require.Equal(t, k, g.holders())
		over := acquireAsync(g, context.Background())
		require.Eventually(t, func() bool { return g.waiting() == 1 }, 20*time.Second, time.Millisecond)
		require.Equal(t, k, g.holders(), "k=%d: one past the bound waits", k)
		toks[0].release()
		r := got(t, over)
		require.NoError(t, r.err)
		require.Equal(t, k, g.holders())
		require.Zero(t, g.waiting())
		r.tok.release()
		for _, tok := range toks[1:] {
			tok.release()
		}
		require.Zero(t, g.holders())
	}
}

// Waiters get the token in the order they asked for it: none starves.
func TestFanoutGateFIFO(t *testing.T) {
	g := newFanoutGate(1, time.Hour)
	first, err := g.acquire(context.Background())
	require.NoError(t, err)
	const n = 8
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tok, err := g.acquire(context.Background())
			if err != nil {
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			tok.release()
		})
		// The next asks only once this one waits.
		require.Eventually(t, func() bool { return g.waiting() == i+1 }, 20*time.Second, time.Millisecond)
	}
	first.release()
	wg.Wait()
	require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7}, order)
	require.Zero(t, g.holders())
}

// A waiter whose context ends returns its error at once and takes no
// token; the token goes to the next waiter. A context done before the
// call fails it when no token is free, and is not checked when one is.
func TestFanoutGateContext(t *testing.T) {
	g := newFanoutGate(1, time.Hour)
	held, err := g.acquire(context.Background())
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	a := acquireAsync(g, ctx)
	require.Eventually(t, func() bool { return g.waiting() == 1 }, 20*time.Second, time.Millisecond)
	b := acquireAsync(g, context.Background())
	require.Eventually(t, func() bool { return g.waiting() == 2 }, 20*time.Second, time.Millisecond)
	cancel()
	ra := got(t, a)
	require.ErrorIs(t, ra.err, context.Canceled)
	require.Nil(t, ra.tok)
	require.Equal(t, 1, g.waiting())

	held.release()
	rb := got(t, b)
	require.NoError(t, rb.err)
	require.Equal(t, 1, g.holders())

	_, err = g.acquire(ctx) // done, and no token free
	require.ErrorIs(t, err, context.Canceled)
	rb.tok.release()
	tok, err := g.acquire(ctx) // done, but a token is free
	require.NoError(t, err)
	tok.release()
	require.Zero(t, g.holders())
}

// Cancellations that race with releases lose no token and grant none
// twice: afterwards all k are free.
func TestFanoutGateCancelRace(t *testing.T) {
	const k = 2
	g := newFanoutGate(k, time.Hour)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if i%2 == 0 {
				go cancel()
			}
			tok, err := g.acquire(ctx)
			if err == nil {
				require.LessOrEqual(t, g.holders(), k)
				tok.release()
			}
		})
	}
	wg.Wait()
	require.Zero(t, g.holders())
	require.Zero(t, g.waiting())
	for range k {
		_, err := g.acquire(context.Background())
		require.NoError(t, err)
	}
}

// The lease: a token held for the lease is revoked and its place given to
// the next waiter, not sooner; releasing the revoked token later frees
// nothing more (the bound holds again).
func TestFanoutGateLease(t *testing.T) {
	const lease = 150 * time.Millisecond
	g := newFanoutGate(1, lease)
	start := time.Now()
	stuck, err := g.acquire(context.Background())
	require.NoError(t, err)
	next := acquireAsync(g, context.Background())
	r := got(t, next)
	require.NoError(t, r.err)
	require.GreaterOrEqual(t, time.Since(start), lease, "revoked at the lease, not before")
	require.Equal(t, 1, g.holders())

	stuck.release() // late: its place was given away
	require.Equal(t, 1, g.holders())
	third := acquireAsync(g, context.Background())
	require.Eventually(t, func() bool { return g.waiting() == 1 }, 20*time.Second, time.Millisecond)
	r.tok.release() // well within its lease
	r3 := got(t, third)
	require.NoError(t, r3.err)
	r3.tok.release()
	require.Zero(t, g.holders())
}

// A gate whose queue never empties (a waiter always behind the holder)
// keeps its queue's memory bounded: served places are dropped.
func TestFanoutGateQueueBounded(t *testing.T) {
	g := newFanoutGate(1, time.Hour)
	held, err := g.acquire(context.Background())
	require.NoError(t, err)
	next := acquireAsync(g, context.Background())
	for range 10 * gateCompactAt {
		require.Eventually(t, func() bool { return g.waiting() == 1 }, 20*time.Second, time.Microsecond)
		after := acquireAsync(g, context.Background())
		require.Eventually(t, func() bool { return g.waiting() == 2 }, 20*time.Second, time.Microsecond)
		held.release()
		r := got(t, next)
		require.NoError(t, r.err)
		held, next = r.tok, after
		g.mu.Lock()
		require.LessOrEqual(t, len(g.waiters), 2*gateCompactAt+2)
		g.mu.Unlock()
	}
	held.release()
	r := got(t, next)
	require.NoError(t, r.err)
	r.tok.release()
	require.Zero(t, g.holders())
}
