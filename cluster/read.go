package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/metadata"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// Linearizable reads (GetTopic's linearizable mode) follow Raft's
// "read index" (§6.4 of Ongaro's thesis): the leader takes its commit index,
// confirms with a quorum that it is still the leader (raft's VerifyLeader:
// one round of heartbeats, no log write), and the reader waits until its
// store applied that index (more exactly, the last entry at or below it
// that a store records: see storedIndex). Every write acknowledged before the read began
// is then visible. A new leader's commit index may lag what its
// predecessors committed until an entry of its own term commits: the first
// read of a term commits a barrier entry first.
//
// A follower asks the leader for its read index with a GetClusterStatus
// call marked with ReadIndexKey (and ForwardedKey: the leader answers
// itself, or refuses), whose commit_index the leader sets to the confirmed
// read index; then it waits for its own store to apply it and answers
// from its own state. Asking, rather than forwarding the read, needs no new
// RPC and keeps the answer on the member that was asked, so that the
// caller's later reads there (from the same applied state on) do not go
// back in time.

// ReadIndexKey is the gRPC metadata key that marks a follower's
// GetClusterStatus asking the leader for a confirmed read index: the
// leader answers with its read index in commit_index, or refuses with
// NOT_LEADER.
const ReadIndexKey = "goethe-read-index"

// ReadIndex returns an index such that a store that applied it reflects
// every write acknowledged, on any member, before ReadIndex was called:
// the leader's commit index, confirmed by a quorum. Only the leader
// answers: elsewhere a *NotLeaderError. Errors: ErrNotLeader (leadership
// lost meanwhile; nothing changed, retry on the new leader), ErrUnavailable
// (the barrier of a new term was not taken in time), ErrClosed, or ctx's
// error.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if n.raft.State() != raft.Leader {
		return 0, n.notLeader()
	}
	term := n.raft.CurrentTerm()
	if n.readyTerm.Load() != term {
		timeout := n.cfg.ProposeTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		if err := n.await(ctx, n.raft.Barrier(timeout)); err != nil {
			return 0, err
		}
		if n.raft.CurrentTerm() != term {
			return 0, n.notLeader()
		}
		n.readyTerm.Store(term)
	}
	index := n.raft.CommitIndex()
	if err := n.await(ctx, n.raft.VerifyLeader()); err != nil {
		return 0, err
	}
	if n.raft.CurrentTerm() != term {
		return 0, n.notLeader()
	}
	return n.storedIndex(index), nil
}

// storedIndex returns the index of the last entry at or below commit that
// the store records (a command or a configuration change): raft hands its
// no-op and barrier entries to no FSM, so a store never reaches an index
// that is one of them. It reads the log back from commit to the store's
// AppliedIndex, usually one entry; an entry no longer in the log is below
// a snapshot, whose effects the store holds.
func (n *Node) storedIndex(commit uint64) uint64 {
	applied := n.cfg.Store.AppliedIndex()
	var l raft.Log
	for i := commit; i > applied; i-- {
		if err := n.log.GetLog(i, &l); err != nil {
			return applied
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i
		}
	}
	return applied
}

// await waits for f, or ctx, or the node's shutdown; it maps raft's errors
// of a read (nothing was written, so no outcome is unknown).
func (n *Node) await(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.fsm.stop:
		return ErrClosed
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	default: // raft.ErrNotLeader, ErrLeadershipLost, ErrLeadershipTransferInProgress
		return n.notLeader()
	}
}

// ReadIndex returns an index that this node's store must apply (WaitIndex)
// before a read that must reflect every write acknowledged before the call
// (see Node.ReadIndex). On the leader it is the leader's own; a follower
// asks the leader over its client address (see ReadIndexKey), one hop.
// Errors: a *NotLeaderError when no leader is known or the leader's client
// address is not, or the leader refused (its gRPC status, passed on);
// ErrUnavailable when the leader did not answer.
func (l *Log) ReadIndex(ctx context.Context) (uint64, error) {
	if l.node.IsLeader() || forwarded(ctx) {
		index, err := l.node.ReadIndex(ctx)
		if !errors.Is(err, ErrNotLeader) || forwarded(ctx) {
			return index, l.hint(err)
		}
	}
	c, err := l.leaderClient()
	if err != nil {
		return 0, err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, ForwardedKey, "1", ReadIndexKey, "1")
	resp, err := c.GetClusterStatus(ctx, &goethev1.GetClusterStatusRequest{})
	if err != nil {
		if fe := forwardErr(err); !errors.Is(fe, ErrOutcomeUnknown) {
			return 0, fe // the leader's answer
		}
		return 0, fmt.Errorf("%w: ask the leader for its read index: %v", ErrUnavailable, err)
	}
	return resp.GetCommitIndex(), nil
}

// ReadIndexAsked reports whether ctx is a call's that asks this node for a
// confirmed read index (see ReadIndexKey).
func ReadIndexAsked(ctx context.Context) bool {
	return len(metadata.ValueFromIncomingContext(ctx, ReadIndexKey)) > 0
}
