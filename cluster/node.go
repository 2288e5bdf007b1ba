// Package cluster replicates a Goethe store with Raft (hashicorp/raft, with
// hashicorp/raft-wal as log and stable store). Goethe builds it against its
// fork in third_party/hashicorp-raft, whose leader writes its own log in
// parallel with replication (see staging.go); against upstream it works
// alike, with the leader's write before replication.
//
// # Basics
//
// A Node is one member of one Raft group. Writes are proposed on the leader
// as log entries carrying the commands and the leader's clock reading; once
// committed, every member applies them to its store with
// store.ApplyCommitted, in one engine batch per batch of entries, so every
// member holds the same events under the same ids, seqs and times, byte for
// byte. Reads go to the store directly: they see the member's applied
// state, which on a follower may lag the leader's.
//
// The Raft log and snapshots live in the node's folder (Config.Dir); the
// store, in its own engine folder, holds the index of the last entry it
// applied, so a restarted member applies only the entries after it. Raft
// snapshots are consistent copies of the store streamed from an engine view
// (store.Snapshot); a member too far behind for the log replaces its store
// with one.
//
// # Caveats
//
// The store must take no writes but the node's (store.Append on a member
// would not be replicated). A write whose leader lost its leadership before
// the commit was known ends with ErrOutcomeUnknown: the entry may or may not
// be committed, and a retry may duplicate it.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"

	"github.com/goethe-log/goethe/store"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotLeader: this node is not the leader, so the write was not
	// proposed and may be retried elsewhere. The error is a
	// *NotLeaderError naming the leader when one is known.
	ErrNotLeader = errors.New("cluster: not the leader")
	// ErrOutcomeUnknown: the write was proposed, but the node lost its
	// leadership, shut down, or the caller's context ended before its
	// commit was known. It may be committed (and applied everywhere) or
	// not; only reading the topic tells.
	ErrOutcomeUnknown = errors.New("cluster: outcome unknown")
	// ErrUnavailable: the write was not proposed because the leader
	// could not take it in time (its queue was full); it may be retried.
	ErrUnavailable = errors.New("cluster: leader busy, write not proposed")
	// ErrClosed: the node is shut down.
	ErrClosed = errors.New("cluster: node closed")
)

// NotLeaderError is the error of a write made on a follower (or a
// candidate). LeaderID and LeaderAddr are empty when no leader is known.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string // the leader's Raft address
	// LeaderClientAddr is the leader's client (gRPC) address, set by Log
	// when its configuration knows it; Node leaves it empty.
	LeaderClientAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAddr == "" {
		return "cluster: not the leader, and no leader is known"
	}
	return fmt.Sprintf("cluster: not the leader; the leader is %s at %s", e.LeaderID, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// transportTimeout is the Raft transport's I/O timeout.
const transportTimeout = 10 * time.Second

// Peer is one initial member: its Raft server id and address, and the
// address of its goethe.v1.Goethe service ("" if not known), which the
// configuration records with it (see MemberAddr).
type Peer struct {
	ID         string
	Addr       string
	ClientAddr string
}

// Config configures a Node. DefaultConfig fills the timing; ID, Dir, Bind
// and Store are required.
type Config struct {
	// ID is this member's Raft server id, unique in the cluster.
	ID string
	// Dir holds the Raft state: the log and stable store (raft-wal, in
	// Dir/wal) and the snapshots (Dir/snapshots). It must not be the
	// store's engine folder.
	Dir string
	// Bind is the address the Raft transport listens on (host:port);
	// Advertise, if set, is the address the other members dial instead.
	Bind      string
	Advertise string
	// ClientAddr is the address of this member's goethe.v1.Goethe
	// service, advertised with its Raft address (MemberAddr), so that
	// followers find the leader's service by the leader's messages. "":
	// not advertised (LogConfig.ClientAddrs may give it).
	ClientAddr string
	// Transport, if set, replaces the TCP transport on Bind: tests pass a
	// raft.InmemTransport to cut and heal links. The node closes it if it
	// has a Close method.
	Transport raft.Transport
	// TLS, if set, makes the transport on Bind speak mutual TLS with it
	// (see MemberTLS): every member must then be given a certificate of
	// the same CA.
	TLS *tls.Config
	// Peers are the initial members, this one included, etcd-style: a
	// node with no Raft state bootstraps the group with them. Every
	// initial member must be given the same list. Empty: wait to be added
	// to an existing group by its leader (Node.AddVoter).
	Peers []Peer
	// Store is the replicated store. The node writes it; the caller opens
	// and closes it (after the node).
	Store *store.Store

	// Raft timing; see raft.Config. Shorter timeouts elect a new leader
	// sooner and mistake a busy leader for a dead one more often.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotInterval and SnapshotThreshold: every interval, a snapshot is
	// taken if the log grew by threshold entries since the last one.
	// TrailingLogs entries stay in the log after a snapshot, for followers
	// that are a little behind.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotsRetained is how many snapshots are kept on disk.
	SnapshotsRetained int
	// ProposeTimeout bounds the wait to hand a write to the leader's
	// queue when the caller's context has no earlier deadline.
	ProposeTimeout time.Duration
	// SegmentSize is the size of a raft-wal segment file, in bytes.
	SegmentSize int
	// Clock returns ns since the Unix epoch: the leader's reading is the
	// time of the events it proposes.
	Clock func() int64
	// Logger receives Raft's and the node's logs; nil logs warnings and
	// errors to stderr.
	Logger hclog.Logger
}

// DefaultConfig returns the defaults: raft's timing halved (a new leader
// within about 1 to 2 s of the old one's loss), snapshots every 2 minutes
// once 8192 entries were written.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      10 * time.Millisecond,
		SnapshotInterval:   120 * time.Second,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotsRetained:  2,
		ProposeTimeout:     5 * time.Second,
		SegmentSize:        64 << 20,
		Clock:              func() int64 { return time.Now().UnixNano() },
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.HeartbeatTimeout, d.HeartbeatTimeout)
	set(&c.ElectionTimeout, d.ElectionTimeout)
	set(&c.LeaderLeaseTimeout, d.LeaderLeaseTimeout)
	set(&c.CommitTimeout, d.CommitTimeout)
	set(&c.SnapshotInterval, d.SnapshotInterval)
	set(&c.ProposeTimeout, d.ProposeTimeout)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	if c.SnapshotsRetained <= 0 {
		c.SnapshotsRetained = d.SnapshotsRetained
	}
	if c.SegmentSize <= 0 {
		c.SegmentSize = d.SegmentSize
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	}
}

// Node is one running member. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	raft  *raft.Raft
	trans raft.Transport
	wal   *wal.WAL
	log   *stagingLog // wal, plus the batch the leader is writing (staging.go)
	fsm   *fsm
	props *proposals // the writes this node proposed, waiting for their outcome

	// leaderCh is closed, and replaced, when the leader this node knows
	// of changes (see LeaderChanged).
	leaderCh      atomic.Pointer[chan struct{}]
	observer      *raft.Observer
	leaderChanges atomic.Uint64 // leader observations, for Status
	readyTerm     atomic.Uint64 // the term in which ReadIndex committed a barrier (read.go)
}

// Open starts a member: it opens the Raft log in cfg.Dir, bootstraps the
// group with cfg.Peers if the folder holds no Raft state yet, and joins the
// group. If the store's AppliedIndex is behind the newest local snapshot
// (its unsynced writes were lost in a machine crash, or a Restore broke
// off), the store is restored from that snapshot first; otherwise the
// snapshot is not loaded and only the entries after AppliedIndex are
// applied. Open returns once Raft runs, usually before a leader is known.
func Open(cfg Config) (*Node, error) {
	cfg.fill()
	if cfg.ID == "" || cfg.Dir == "" || (cfg.Bind == "" && cfg.Transport == nil) || cfg.Store == nil {
		return nil, fmt.Errorf("cluster: open: ID, Dir, Bind (or Transport) and Store are required")
	}
	walDir := filepath.Join(cfg.Dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: open: %w", err)
	}
	w, err := wal.Open(walDir, wal.WithSegmentSize(cfg.SegmentSize),
		wal.WithLogger(cfg.Logger.Named("wal")))
	if err != nil {
		return nil, fmt.Errorf("cluster: open raft log: %w", err)
	}
	n := &Node{cfg: cfg, wal: w, log: newStagingLog(w)}
	ok := false
	defer func() {
		if !ok {
			n.closeParts()
		}
	}()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), cfg.SnapshotsRetained, cfg.Logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("cluster: open snapshot store: %w", err)
	}
	if n.trans = cfg.Transport; n.trans == nil {
		if cfg.Advertise != "" {
			if _, err := net.ResolveTCPAddr("tcp", cfg.Advertise); err != nil {
				return nil, fmt.Errorf("cluster: advertise address: %w", err)
			}
		}
		tcp, err := NewTCPTransport(cfg.Bind, cfg.Advertise, cfg.ClientAddr, cfg.TLS, transportTimeout, cfg.Logger.Named("transport"))
		if err != nil {
			return nil, fmt.Errorf("cluster: listen on %s: %w", cfg.Bind, err)
		}
		n.trans = tcp
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.BatchApplyCh = true // the leader takes queued proposals in batches
	rc.Logger = cfg.Logger
	// The store is durable and knows what it applied: loading the newest
	// snapshot at every start would replace it for nothing. It is loaded
	// only when the store is behind it.
	list, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("cluster: list snapshots: %w", err)
	}
	rc.NoSnapshotRestoreOnStart = len(list) == 0 || list[0].Index <= cfg.Store.AppliedIndex()

	has, err := raft.HasExistingState(w, w, snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: read raft state: %w", err)
	}
	if !has && len(cfg.Peers) > 0 {
		var conf raft.Configuration
		for _, p := range cfg.Peers {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID),
				Address: raft.ServerAddress(MemberAddr(p.Addr, p.ClientAddr))})
		}
		if err := raft.BootstrapCluster(rc, w, w, snaps, n.trans, conf); err != nil {
			return nil, fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	n.props = newProposals()
	n.fsm = &fsm{st: cfg.Store, log: cfg.Logger.Named("fsm"), stop: make(chan struct{}), props: n.props}
	first := make(chan struct{})
	n.leaderCh.Store(&first)
	n.raft, err = raft.NewRaft(rc, n.fsm, n.log, w, snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	n.watchLeader()
	go n.props.watch(n.fsm.stop)
	ok = true
	return n, nil
}

// watchLeader closes the current LeaderChanged channel at each leader
// observation of Raft's, until Close.
func (n *Node) watchLeader() {
	obs := make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)
	go func() {
		for {
			select {
			case <-obs:
			case <-n.fsm.stop:
				return
			}
			n.leaderChanges.Add(1)
			n.leaderChanged()
		}
	}()
	// A leader elected before the observer was registered is not
	// observed: report the state once it is in place.
	n.leaderChanged()
}

func (n *Node) leaderChanged() {
	next := make(chan struct{})
	close(*n.leaderCh.Swap(&next))
}

// LeaderChanged returns a channel that is closed when the leader this
// node knows of may have changed (a new leader, or none): callers read
// Leader again then, and take a new channel. Nothing is missed between
// taking the channel and reading Leader, in that order. After Close it is
// never closed again.
func (n *Node) LeaderChanged() <-chan struct{} { return *n.leaderCh.Load() }

// Append proposes an append of events to topic, with expectation expect,
// and returns its result once the entry is committed and applied on this
// node (the leader): the events are then on a majority's Raft log and in
// this node's store. index is the entry's Raft index: a reader on any node
// whose store's AppliedIndex reached it sees the events.
//
// Errors: a *NotLeaderError (ErrNotLeader) on a follower, nothing proposed;
// ErrOutcomeUnknown if leadership was lost, the node shut down or ctx ended
// after the proposal; ErrUnavailable if the leader's queue did not take it;
// otherwise what store.Append would answer (a *store.ConflictError,
// store.ErrInvalid…). events are not retained after Append returns.
func (n *Node) Append(ctx context.Context, topic string, events []store.Event, expect store.Expectation) (res store.AppendResult, index uint64, err error) {
	cmd := store.Command{Kind: store.CommandAppend, Topic: topic, Events: events, Expect: expect}
	r, index, err := n.propose(ctx, cmd)
	return r.Append, index, err
}

// SetCursor proposes a cursor update, as store.SetCursor does on one node,
// with Append's errors.
func (n *Node) SetCursor(ctx context.Context, topic, consumer string, id uint64) (index uint64, err error) {
	cmd := store.Command{Kind: store.CommandSetCursor, Topic: topic, Consumer: consumer, CursorID: id}
	_, index, err = n.propose(ctx, cmd)
	return index, err
}

func (n *Node) propose(ctx context.Context, cmd store.Command) (store.Result, uint64, error) {
	type result struct {
		r     store.Result
		index uint64
		err   error
	}
	ch := make(chan result, 1)
	err := n.startAsync(ctx, cmd, func(r store.Result, index uint64, err error) { ch <- result{r, index, err} })
	if err != nil {
		return store.Result{}, 0, err
	}
	select {
	case res := <-ch:
		return res.r, res.index, res.err
	case <-ctx.Done():
		return store.Result{}, 0, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	}
}

func (n *Node) notLeader() error {
	addr, id := n.raft.LeaderWithID()
	r, c := SplitMemberAddr(string(addr))
	return &NotLeaderError{LeaderID: string(id), LeaderAddr: r, LeaderClientAddr: c}
}

// Leader returns the id and Raft address of the leader this node knows of,
// or empty strings.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	r, _ := SplitMemberAddr(string(a))
	return string(i), r
}

// IsLeader reports whether this node is the leader now. Leadership may be
// lost the next moment.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Addr is the Raft address the transport advertises (or the in-memory
// transport's address).
func (n *Node) Addr() string {
	r, _ := SplitMemberAddr(string(n.trans.LocalAddr()))
	return r
}

// Status is a node's view of the group, for status commands and tests.
type Status struct {
	ID, State         string
	LeaderID          string
	LeaderAddr        string
	Term              uint64
	FirstIndex        uint64 // first entry still in this node's log: those before are in snapshots only
	LastIndex         uint64 // last entry in this node's log
	CommitIndex       uint64 // last entry known committed
	AppliedIndex      uint64 // the store's: last entry whose effects it holds
	SnapshotsRestored uint64 // snapshots installed into the store since Open
	// LeaderChanges counts the changes of the leader this node knew of
	// since Open (a loss of the leader is one, a new leader another).
	LeaderChanges uint64
}

// Status returns the node's current view.
func (n *Node) Status() Status {
	id, addr := n.Leader()
	first, _ := n.wal.FirstIndex() // 0 on an error, as for an empty log
	return Status{FirstIndex: first,
		ID: n.cfg.ID, State: n.raft.State().String(), LeaderID: id, LeaderAddr: addr,
		Term: n.raft.CurrentTerm(), LastIndex: n.raft.LastIndex(), CommitIndex: n.raft.CommitIndex(),
		AppliedIndex: n.cfg.Store.AppliedIndex(), SnapshotsRestored: n.fsm.restores.Load(),
		LeaderChanges: n.leaderChanges.Load(),
	}
}

// Snapshot takes a Raft snapshot now (and truncates the log to
// TrailingLogs entries before it), as the threshold would.
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	return nil
}

// AddVoter adds the member id at server address addr (a Raft address, or
// MemberAddr's Raft and client address) to the group, as a voter, on the
// leader (a *NotLeaderError elsewhere). The new member must run
// (Open with no Peers) and catches up from the log or a snapshot; AddVoter
// returns once the configuration change is committed. Adding a member
// already there with the same address changes nothing.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	return n.changeMembers(ctx, func(timeout time.Duration) raft.IndexFuture {
		return n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
	})
}

// RemoveServer removes the member id from the group, on the leader. A leader
// that removes itself steps down once the change is committed.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	return n.changeMembers(ctx, func(timeout time.Duration) raft.IndexFuture {
		return n.raft.RemoveServer(raft.ServerID(id), 0, timeout)
	})
}

func (n *Node) changeMembers(ctx context.Context, change func(time.Duration) raft.IndexFuture) error {
	timeout, err := n.leaderTimeout(ctx)
	if err != nil {
		return err
	}
	err = change(timeout).Error()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return fmt.Errorf("cluster: membership change: %w", err)
}

// Members returns the group's current configuration: id → Raft address of
// every voter.
func (n *Node) Members() (map[string]string, error) {
	ms, err := n.members()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		out[m.ID] = m.RaftAddr
	}
	return out, nil
}

// Err returns the error that stopped this node's applies (a failed store),
// or nil.
func (n *Node) Err() error {
	if p := n.fsm.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Close leaves the group without a handover: Raft stops, pending writes end
// with ErrOutcomeUnknown, the transport and the Raft log close. The store
// stays open (its owner closes it). Close is idempotent.
// HandOver makes another voter the leader if this node leads, so that a
// planned stop (a restart, an upgrade) costs the cluster a handover of a
// few heartbeats instead of an election timeout with every write in it
// failing. It returns once another node leads, at once if this node does
// not lead or is the only voter, or with an error when ctx ends or the
// transfer fails; the caller stops the node either way (Close). Close
// itself never hands over, so that tests of crashes stay crashes.
func (n *Node) HandOver(ctx context.Context) error {
	if n.raft.State() != raft.Leader {
		return nil
	}
	cfg := n.raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		return fmt.Errorf("cluster: hand over: %w", err)
	}
	voters := 0
	for _, s := range cfg.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	if voters < 2 {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- n.raft.LeadershipTransfer().Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("cluster: hand over: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: hand over: %w", ctx.Err())
	}
}

func (n *Node) Close() error {
	select {
	case <-n.fsm.stop:
		return nil
	default:
	}
	close(n.fsm.stop)
	n.raft.DeregisterObserver(n.observer)
	err := n.raft.Shutdown().Error()
	// Raft does not answer the proposals still in its queues.
	n.props.failAll(fmt.Errorf("%w: %w", ErrOutcomeUnknown, ErrClosed))
	if cerr := n.closeParts(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cluster: close: %w", err)
	}
	return nil
}

func (n *Node) closeParts() error {
	var errs []error
	if c, ok := n.trans.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if n.wal != nil {
		errs = append(errs, n.wal.Close())
	}
	return errors.Join(errs...)
}

var _ io.Closer = (*Node)(nil)
