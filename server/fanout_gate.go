package server

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// The fan-out gate: at most Options.FanoutSenders Consume streams of the
// server send a tail delivery (a page that reaches the topic's end, see
// sharedPages) at once; the other woken followers wait for a token,
// blocked, not runnable. Since fan-out rounds (consume_rounds.go), which
// send to a topic's followers at its end from one goroutine, it applies to
// the followers outside rounds: those with an end of their own (until or
// limit), and every follower with Options.FanoutSolo.
//
// Why (results/bench/fanout/gate/README.md, from a runtime trace of a
// Produce with 2,000 followers on 2 processors): a commit makes every
// follower runnable at once, and the goroutines of the write path (the
// producer's connection reader and loopy writer, whose runtime.Gosched
// before a small write sends it to the global run queue) then wait behind
// all of them for a processor: 5–6 ms per Produce, runnable and not
// running. With the gate, the followers wait for their turn off the run
// queues, and a processor stays free for the write path.
//
// The gate trades follower latency for write latency: a follower's event
// waits for the sends before it. A follower that waited finds the events
// committed meanwhile in its next page and sends them in one message, so
// the work per event falls as the load rises.

// DefaultFanoutSendLease is the default of Options.FanoutSendLease.
const DefaultFanoutSendLease = 5 * time.Millisecond

// DefaultFanoutSenders is the default of Options.FanoutSenders:
// GOMAXPROCS-1, at least 1, so that one processor stays free to poll the
// network and serve the write path while followers are sent to.
func DefaultFanoutSenders() int {
	return max(1, runtime.GOMAXPROCS(0)-1)
}

// fanoutGate hands out k tokens, first come first served. Its guarantees:
//
//   - At most k tokens are held at once, except for tokens revoked after
//     the lease (below): a holder whose send has not finished within it
//     (a client that does not read holds the Send in HTTP/2 flow control)
//     loses its token to the next waiter, so that one stalled stream
//     cannot stall every follower of the server; its own end comes from
//     the slow-consumer timeout, as for any stalled Send.
//   - Waiters get tokens in the order they asked (FIFO): none starves.
//   - A waiter whose context ends stops waiting at once, with the
//     context's error, and takes no token; the next waiter gets it.
//
// Its cost when a token is free: one mutex and one clock read.
type fanoutGate struct {
	k     int
	lease time.Duration

	mu      sync.Mutex
	held    []*fanoutToken // the tokens held and not revoked; len ≤ k
	waiters []*gateWaiter  // FIFO; cancelled ones are skipped when reached
	head    int            // waiters[head:] are waiting
	timer   *time.Timer    // checks the holders' leases while waiters wait
	armed   bool
}

// fanoutToken is one held token; release gives it back.
type fanoutToken struct {
	g     *fanoutGate
	since time.Time // when it was granted
	idx   int       // its index in g.held; -1 once released or revoked
}

type gateWaiter struct {
	ch        chan *fanoutToken // the granted token; buffered, sent under g.mu
	cancelled bool              // under g.mu
}

// newFanoutGate is a gate of k tokens (k ≥ 1) leased for lease (> 0).
func newFanoutGate(k int, lease time.Duration) *fanoutGate {
	g := &fanoutGate{k: k, lease: lease}
	g.timer = time.AfterFunc(time.Hour, g.checkLeases)
	g.timer.Stop()
	return g
}

// acquire waits for a token, or for ctx to end (then it returns ctx's
// error and holds no token). The caller must release the token.
func (g *fanoutGate) acquire(ctx context.Context) (*fanoutToken, error) {
	g.mu.Lock()
	if len(g.held) < g.k && g.head == len(g.waiters) {
		t := g.grantLocked(time.Now())
		g.mu.Unlock()
		return t, nil
	}
	if err := ctx.Err(); err != nil {
		g.mu.Unlock()
		return nil, err
	}
	w := &gateWaiter{ch: make(chan *fanoutToken, 1)}
	g.waiters = append(g.waiters, w)
	if !g.armed {
		g.armed = true
		g.timer.Reset(g.lease)
	}
	g.mu.Unlock()
	select {
	case t := <-w.ch:
		return t, nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	w.cancelled = true
	select {
	case t := <-w.ch: // granted meanwhile: pass it on
		g.releaseLocked(t)
	default:
	}
	g.mu.Unlock()
	return nil, ctx.Err()
}

// release gives the token back: to the first waiter, if any. Releasing a
// token revoked after its lease does nothing.
func (t *fanoutToken) release() {
	g := t.g
	g.mu.Lock()
	g.releaseLocked(t)
	g.mu.Unlock()
}

func (g *fanoutGate) releaseLocked(t *fanoutToken) {
	if t.idx < 0 {
		return // revoked: its place was given away already
	}
	g.dropLocked(t)
	g.handOnLocked(time.Now())
}

// dropLocked removes t from the held tokens.
func (g *fanoutGate) dropLocked(t *fanoutToken) {
	g.held = swapRemove(g.held, t.idx)
	t.idx = -1
}

// indexed is an element that keeps its index in the slice holding it.
type indexed interface{ setIndex(i int) }

func (t *fanoutToken) setIndex(i int) { t.idx = i }

// swapRemove removes s[i] in O(1): the last element takes its place (and
// is told its new index); the order of the others is not kept.
func swapRemove[T indexed](s []T, i int) []T {
	last := len(s) - 1
	s[i] = s[last]
	s[i].setIndex(i)
	var zero T
	s[last] = zero
	return s[:last]
}

// handOnLocked grants free tokens to the first waiters.
func (g *fanoutGate) handOnLocked(now time.Time) {
	for len(g.held) < g.k && g.head < len(g.waiters) {
		w := g.waiters[g.head]
		g.waiters[g.head] = nil
		g.head++
		if w.cancelled {
			continue
		}
		w.ch <- g.grantLocked(now)
	}
	switch {
	case g.head == len(g.waiters):
		// Nobody waits: reuse the queue's memory.
		g.waiters, g.head = g.waiters[:0], 0
	case g.head >= gateCompactAt && 2*g.head >= len(g.waiters):
		// Waiters never ran out: move them to the front, so that a gate
		// under constant load does not grow its queue for ever.
		n := copy(g.waiters, g.waiters[g.head:])
		clear(g.waiters[n:])
		g.waiters, g.head = g.waiters[:n], 0
	}
}

// gateCompactAt is how many served places at the front of a gate's queue
// make it move its waiters to the front, once they are at least half the
// queue: the queue's memory stays within twice its waiters and this.
const gateCompactAt = 1024

// grantLocked makes a held token; len(g.held) < g.k.
func (g *fanoutGate) grantLocked(now time.Time) *fanoutToken {
	t := &fanoutToken{g: g, since: now, idx: len(g.held)}
	g.held = append(g.held, t)
	return t
}

// checkLeases revokes the tokens held for the lease or longer, hands
// their places to waiters, and checks again while waiters wait. It runs
// on the gate's timer.
func (g *fanoutGate) checkLeases() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	next := g.lease
	for i := 0; i < len(g.held); {
		t := g.held[i]
		if held := now.Sub(t.since); held >= g.lease {
			g.dropLocked(t) // moves the last one to i
			continue
		} else if left := g.lease - held; left < next {
			next = left
		}
		i++
	}
	g.handOnLocked(now)
	if g.head < len(g.waiters) {
		g.timer.Reset(next)
		return
	}
	g.armed = false
}

// waiting is how many streams wait for a token (cancelled ones may be
// counted until they are reached); for tests.
func (g *fanoutGate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, w := range g.waiters[g.head:] {
		if !w.cancelled {
			n++
		}
	}
	return n
}

// holders is how many tokens are held and not revoked; for tests.
func (g *fanoutGate) holders() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.held)
}
