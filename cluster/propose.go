package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/goethe-log/goethe/store"
)

// proposals are the leader's writes waiting for their outcome, each with
// the callback that reports it.
//
// A proposal that commits is completed by the FSM, in ApplyBatch, on Raft's
// FSM goroutine, right after the engine batch that applied it: on the
// leader raft hands its FSM the very entries it was given (the *raft.Log of
// the proposal's future), so an entry is recognised by its Data, whose
// first byte's address is the key (the proposal holds the slice, so no
// other live slice can share that address; entries a follower decoded
// never match). No goroutine waits for a commit.
//
// A proposal that fails (leadership lost, the queue full, Raft shut down)
// is completed by watch, one goroutine per node, which waits for the
// futures in proposal order and completes those still pending when their
// future answers. Raft answers a future only after the FSM applied its
// entry, so for a committed proposal watch finds it completed already.
//
// Raft never answers a proposal still in its queues when it shuts down;
// Node.Close completes those (ErrOutcomeUnknown), and watch, if it waits
// for one, stays blocked until the process ends: one goroutine per closed
// node at most.
type proposals struct {
	mu     sync.Mutex
	byData map[*byte]*proposal // pending, by their entry's first byte
	queue  []*proposal         // for watch, in proposal order
	wake   chan struct{}       // 1-buffered: queue is not empty
	n      atomic.Int64        // len(byData): a follower's applies skip the lock
}

type proposal struct {
	key  *byte
	f    raft.ApplyFuture // set before the proposal is queued for watch
	done func(store.Result, uint64, error)
}

func newProposals() *proposals {
	return &proposals{byData: map[*byte]*proposal{}, wake: make(chan struct{}, 1)}
}

// add registers a proposal of data, before it is handed to Raft.
func (ps *proposals) add(data []byte, done func(store.Result, uint64, error)) *proposal {
	p := &proposal{key: &data[0], done: done}
	ps.mu.Lock()
	ps.byData[p.key] = p
	ps.n.Add(1)
	ps.mu.Unlock()
	return p
}

// queued hands p, whose future is set, to watch.
func (ps *proposals) queued(p *proposal) {
	ps.mu.Lock()
	ps.queue = append(ps.queue, p)
	first := len(ps.queue) == 1
	ps.mu.Unlock()
	if first {
		select {
		case ps.wake <- struct{}{}:
		default:
		}
	}
}

// take removes p if it is pending and reports whether it was: the caller
// that takes it completes it.
func (ps *proposals) take(p *proposal) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.byData[p.key] != p {
		return false
	}
	delete(ps.byData, p.key)
	ps.n.Add(-1)
	return true
}

// applied completes the proposals among logs with their responses (the
// FSM's, resp[i] for logs[i]).
func (ps *proposals) applied(logs []*raft.Log, resp []any) {
	if ps.n.Load() == 0 {
		return
	}
	type completion struct {
		p     *proposal
		resp  any
		index uint64
	}
	var done []completion
	ps.mu.Lock()
	for i, l := range logs {
		if len(l.Data) == 0 {
			continue
		}
		if p := ps.byData[&l.Data[0]]; p != nil {
			delete(ps.byData, p.key)
			ps.n.Add(-1)
			done = append(done, completion{p, resp[i], l.Index})
		}
	}
	ps.mu.Unlock()
	for _, c := range done {
		c.p.done(outcome(c.resp, c.index))
	}
}

// watch completes the proposals whose futures fail, until stop is closed.
func (ps *proposals) watch(stop <-chan struct{}) {
	var batch []*proposal
	for {
		select {
		case <-ps.wake:
		case <-stop:
			return
		}
		ps.mu.Lock()
		batch, ps.queue = ps.queue, batch[:0]
		ps.mu.Unlock()
		for i, p := range batch {
			ps.mu.Lock()
			pending := ps.byData[p.key] == p
			ps.mu.Unlock()
			if pending {
				err := p.f.Error()
				if ps.take(p) {
					p.done(futureOutcome(p.f, err))
				}
			}
			batch[i] = nil
		}
	}
}

// failAll completes every pending proposal with err.
func (ps *proposals) failAll(err error) {
	ps.mu.Lock()
	all := ps.byData
	ps.byData = map[*byte]*proposal{}
	ps.n.Store(0)
	ps.mu.Unlock()
	for _, p := range all {
		p.done(store.Result{}, 0, err)
	}
}

// futureOutcome is the outcome of a proposal whose future answered err.
func futureOutcome(f raft.ApplyFuture, err error) (store.Result, uint64, error) {
	switch {
	case err == nil:
		// Applied, but not recognised by the FSM (not expected: raft
		// hands the leader's FSM the proposed entry).
		return outcome(f.Response(), f.Index())
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return store.Result{}, 0, &NotLeaderError{} // refused before reaching the log; the caller names the leader
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return store.Result{}, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		// raft.ErrLeadershipLost, or raft.ErrRaftShutdown, which a
		// proposal already in the log gets too.
		return store.Result{}, 0, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
}

// outcome is the outcome of a proposal that the FSM answered with resp.
func outcome(resp any, index uint64) (store.Result, uint64, error) {
	switch resp := resp.(type) {
	case []store.Result:
		return resp[0], index, resp[0].Err
	case error:
		if errors.Is(resp, ErrClosed) {
			return store.Result{}, 0, fmt.Errorf("%w: %w", ErrOutcomeUnknown, resp)
		}
		return store.Result{}, 0, resp
	default:
		return store.Result{}, 0, fmt.Errorf("cluster: unexpected apply response %T", resp)
	}
}

// leaderTimeout is how long a change proposed now under ctx may wait for
// Raft to take it: ProposeTimeout, or less to ctx's deadline. It fails with
// ctx's error, or a *NotLeaderError when this node does not lead.
func (n *Node) leaderTimeout(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if n.raft.State() != raft.Leader {
		return 0, n.notLeader()
	}
	timeout := n.cfg.ProposeTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	return timeout, nil
}

// startAsync validates cmd and hands its entry to Raft's queue (the
// leader's order of proposals is the log's order); done gets its outcome,
// exactly once, from the FSM's goroutine (committed and applied here), the
// node's watch (failed), or Close. It does not block on the commit. An
// error returned (ctx's, a validation error, a *NotLeaderError) means
// nothing was proposed and done is not called.
func (n *Node) startAsync(ctx context.Context, cmd store.Command, done func(store.Result, uint64, error)) error {
	if err := cmd.Validate(); err != nil {
		return err
	}
	timeout, err := n.leaderTimeout(ctx)
	if err != nil {
		return err
	}
	if cmd.Kind == store.CommandAppend && cmd.DedupeWindow == 0 {
		// The leader decides the dedupe window of topics without one of
		// their own, as it decides the time: every replica then keeps
		// each key equally long, whatever its own --dedupe-window.
		cmd.DedupeWindow = n.cfg.Store.DedupeWindow()
		if cmd.DedupeWindow == 0 {
			cmd.DedupeWindow = -1 // off
		}
	}
	data := appendEntry(nil, n.cfg.Clock(), []store.Command{cmd})
	notLeader := func(r store.Result, index uint64, err error) {
		if nle := (*NotLeaderError)(nil); errors.As(err, &nle) && nle.LeaderID == "" {
			err = n.notLeader()
		}
		done(r, index, err)
	}
	p := n.props.add(data, notLeader)
	p.f = n.raft.Apply(data, timeout)
	n.props.queued(p)
	return nil
}
