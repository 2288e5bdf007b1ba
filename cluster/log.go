package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// ForwardedKey is the gRPC metadata key that marks a write forwarded by a
// follower's Log. A Log that receives a marked write and is not the
// leader refuses it (*NotLeaderError) instead of forwarding it again: a
// write takes at most one hop.
const ForwardedKey = "goethe-forwarded"

// DefaultForwardTimeout bounds a write that a follower forwards without a
// caller's deadline (AppendAsync), and the follower's wait to apply what
// the leader acknowledged.
const DefaultForwardTimeout = 10 * time.Second

// LogConfig configures a Log. Node and Store are required.
type LogConfig struct {
	// Node is the member; Store, the store it replicates into.
	Node  *Node
	Store *store.Store
	// ClientAddrs maps each member's Raft server id to the address of its
	// goethe.v1.Goethe gRPC service. A follower forwards writes to the
	// leader's; with the leader missing here, a follower refuses writes
	// with a *NotLeaderError. The map is static: a member added later
	// needs it too (every member is restarted with the new map).
	ClientAddrs map[string]string
	// DialOptions are the options of the follower's connections to the
	// leader; nil: plaintext.
	DialOptions []grpc.DialOption
	// ForwardTimeout: see DefaultForwardTimeout (used when ≤ 0).
	ForwardTimeout time.Duration
	// NoForward makes a follower forward nothing to the leader: writes,
	// membership changes and linearizable reads' questions are refused
	// with a *NotLeaderError naming the leader and its client address
	// (when known), for clients that go to the leader themselves
	// (client.Client's Produce follows the hint).
	NoForward bool
}

// Log is a replicated log with the contract of server.Log: a
// goethe.v1.Goethe server on every member serves the same topics.
//
// # Basics
//
//   - Writes (Append, AppendAsync, SetCursor) on the leader are Raft
//     entries (Node.Append); they are acknowledged once a majority holds
//     them and this node applied them.
//   - On a follower they are forwarded, in one hop, to the leader's
//     goethe.v1.Goethe service (LogConfig.ClientAddrs), marked with
//     ForwardedKey: appends as requests of one ProduceStream that every
//     caller on this follower shares (many in flight, answers batched), a
//     SetCursor as a CommitCursor. A forwarded append is acknowledged when
//     the leader answers: it is on a majority's log then, and this node's
//     reads (Read, Info, Topics) wait, if need be, until this node applied
//     every append it had acknowledged (or ForwardTimeout passed, if this
//     node falls that far behind), so that they see it. The wait moved
//     there from the write: waiting to apply before the answer cost the
//     time the leader's commit index takes to reach a follower, which
//     hashicorp/raft sends with the next entries or, when none follow,
//     after Config.CommitTimeout to twice that, on every write of a client
//     that waits for each answer (0.78k events/s through a follower
//     against 16-23k through the leader, 16 producers; see
//     results/bench/cluster).
//   - The leader's answers come back as they are: errors of a forwarded
//     write are the leader's gRPC status errors, which a server passes on
//     unchanged. A forward that fails without the leader's answer (a dead
//     leader, a cut connection, an ended context) is ErrOutcomeUnknown.
//   - With no leader known, or a leader whose client address is not
//     configured, writes end with a *NotLeaderError (ErrNotLeader), nothing
//     written; its LeaderClientAddr is set when known.
//   - Reads (Read, Wait, Info, Topics, GetCursor) are served by this
//     node's store: its applied state, which on a follower may lag the
//     leader's; Wait is woken by applies.
//   - SetTopicConfig, Trim and DeleteTopic are writes like the others: the
//     leader plans a trim's bounded steps and a delete from its applied
//     state and proposes them, and every replica applies the same steps (a
//     step planned on a state the topic has left fails alike everywhere,
//     and is planned again). A follower forwards them to the leader's
//     SetTopicConfig, TrimTopic and DeleteTopic.
//   - Retention is enforced by the leader only: every
//     store.Store.RetentionInterval it plans the steps that bring each
//     topic within its limits and proposes them. A replica's store trims
//     nothing on its own (store.Options.RetentionByLog); each replica
//     reclaims the events of deleted topics itself.
//
// # Caveats
//
//   - AppendAsync on a follower sends the append on the forward stream
//     before it returns (so a caller's appends reach the leader, and
//     commit, in order) and calls done from the stream's receiving
//     goroutine. An append without an answer after ForwardTimeout breaks
//     the stream: it and every other append waiting on it end with
//     ErrOutcomeUnknown.
//   - Reads of a topic on a follower wait for the appends of every topic
//     that this follower acknowledged, not only that topic's: one index
//     covers them all.
//   - A forwarded append larger than the leader's largest request ends
//     the stream, and the other appends in flight on it with it: the
//     members must share their size limits.
//   - A forwarded SetCursor returns when the leader applied it; a
//     GetCursor on this follower may see the older cursor a moment longer.
//   - Forwarded writes carry no credentials of the caller: a leader that
//     checks tokens or client certificates would refuse them.
//
// Log owns neither the Node nor the Store: Close closes its connections
// only; the caller closes the node, then the store.
type Log struct {
	node    *Node
	st      *store.Store
	clients map[string]string
	dial    []grpc.DialOption
	timeout time.Duration
	noFwd   bool
	// acked is the highest Raft index of an append this node forwarded
	// and had acknowledged: reads wait until this node applied it.
	acked atomic.Uint64

	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn
	streams []*forwardStream // every forward stream that may not have ended
	closed  bool

	// fwdMu serializes the choice of the forward stream; fwd is the one to
	// the current leader, if open.
	fwdMu sync.Mutex
	fwd   *forwardStream

	changed atomic.Pointer[chan struct{}] // see WriteErrChanged
	stop    chan struct{}
	watched sync.WaitGroup
}

// NewLog returns the Log of cfg.Node and cfg.Store. It starts two
// goroutines, which watch the write state and enforce retention (see Log)
// until Close, and, on a follower that forwards, two per stream to the
// leader (see forwardStream). The store must be opened with
// store.Options.RetentionByLog: a replica's store must not trim on its own.
func NewLog(cfg LogConfig) (*Log, error) {
	if cfg.Node == nil || cfg.Store == nil {
		return nil, errors.New("cluster: new log: Node and Store are required")
	}
	if !cfg.Store.RetentionByLog() {
		return nil, errors.New("cluster: new log: the store must be opened with RetentionByLog: retention goes through the Raft log")
	}
	l := &Log{node: cfg.Node, st: cfg.Store, clients: cfg.ClientAddrs, dial: cfg.DialOptions,
		timeout: cfg.ForwardTimeout, noFwd: cfg.NoForward, conns: map[string]*grpc.ClientConn{}, stop: make(chan struct{})}
	if l.timeout <= 0 {
		l.timeout = DefaultForwardTimeout
	}
	if l.dial == nil {
		l.dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	// A member's connection to a leader that was down waits out gRPC's
	// reconnect backoff (up to 2 minutes by default) before it tries
	// again, failing every forward meanwhile: a restarted leader is the
	// common case here, so the wait is kept to a second. The caller's
	// options come after, and win.
	l.dial = append([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: 2 * time.Second,
	})}, l.dial...)
	ch := make(chan struct{})
	l.changed.Store(&ch)
	l.watched.Add(2)
	go l.watchWriteState(l.st.WriteErrChanged(), l.node.LeaderChanged())
	go l.retain()
	return l, nil
}

// Append appends events to topic: see Log. The result's Index is the
// Raft index of the entry (see WaitIndex). Once proposed on the leader,
// its outcome is reported whatever ctx does afterwards (server.Log's
// contract); ctx bounds the wait to propose, and a forward.
func (l *Log) Append(ctx context.Context, topic string, events []store.Event, expect store.Expectation) (store.AppendResult, error) {
	if l.node.IsLeader() || forwarded(ctx) {
		r, err := l.appendHere(ctx, topic, events, expect)
		if !errors.Is(err, ErrNotLeader) || forwarded(ctx) {
			return r, l.hint(err)
		}
		// Leadership moved before the proposal: nothing was written.
	}
	return l.forwardAppend(ctx, topic, events, expect)
}

func (l *Log) appendHere(ctx context.Context, topic string, events []store.Event, expect store.Expectation) (store.AppendResult, error) {
	type result struct {
		r   store.AppendResult
		err error
	}
	ch := make(chan result, 1)
	cmd := store.Command{Kind: store.CommandAppend, Topic: topic, Events: events, Expect: expect}
	// ctx bounds the proposal only: once proposed, the outcome comes
	// (Close completes a proposal Raft drops).
	err := l.node.startAsync(ctx, cmd, func(r store.Result, index uint64, err error) {
		if err == nil {
			r.Append.Index = index
		}
		ch <- result{r.Append, err}
	})
	if err != nil {
		return store.AppendResult{}, err
	}
	res := <-ch
	return res.r, res.err
}

// AppendAsync appends events to topic and calls done with the outcome,
// exactly once: see server.Log. On the leader the entry is queued in Raft
// before AppendAsync returns, so one goroutine's appends commit in order;
// on a follower the append is sent on the stream to the leader before
// AppendAsync returns, which keeps that order too (see Log's caveats).
func (l *Log) AppendAsync(topic string, events []store.Event, expect store.Expectation, done func(store.AppendResult, error)) {
	l.appendAsync(false, topic, events, expect, done)
}

// AppendAsyncContext is AppendAsync for a request of the call whose
// context is ctx (a ProduceStream's): a call that a follower forwarded
// (ForwardedKey) is appended here or refused with a *NotLeaderError,
// never forwarded again. ctx does not bound the append.
func (l *Log) AppendAsyncContext(ctx context.Context, topic string, events []store.Event, expect store.Expectation, done func(store.AppendResult, error)) {
	l.appendAsync(forwarded(ctx), topic, events, expect, done)
}

func (l *Log) appendAsync(fwd bool, topic string, events []store.Event, expect store.Expectation, done func(store.AppendResult, error)) {
	if l.node.IsLeader() || fwd {
		cmd := store.Command{Kind: store.CommandAppend, Topic: topic, Events: events, Expect: expect}
		err := l.node.startAsync(context.Background(), cmd, func(r store.Result, index uint64, err error) {
			if err == nil {
				r.Append.Index = index
			}
			done(r.Append, l.hint(err))
		})
		if err == nil {
			return
		}
		if !errors.Is(err, ErrNotLeader) || fwd {
			done(store.AppendResult{}, l.hint(err))
			return
		}
		// Leadership moved before the proposal: nothing was written.
	}
	l.forwardAsync(topic, events, expect, done)
}

// forwardAppend forwards the append to the leader and waits for its
// answer.
func (l *Log) forwardAppend(ctx context.Context, topic string, events []store.Event, expect store.Expectation) (store.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return store.AppendResult{}, err
	}
	type outcome struct {
		r   store.AppendResult
		err error
	}
	ch := make(chan outcome, 1)
	l.forwardAsync(topic, events, expect, func(r store.AppendResult, err error) { ch <- outcome{r, err} })
	select {
	case o := <-ch:
		return o.r, o.err
	case <-ctx.Done():
		return store.AppendResult{}, fmt.Errorf("%w: forward to the leader: %w", ErrOutcomeUnknown, ctx.Err())
	}
}

// noteAcked records that an append forwarded by this node was
// acknowledged with Raft index index.
func (l *Log) noteAcked(index uint64) {
	for {
		cur := l.acked.Load()
		if index <= cur || l.acked.CompareAndSwap(cur, index) {
			return
		}
	}
}

// caughtUp waits until this node applied every append it forwarded and
// had acknowledged, or ForwardTimeout passed: a read that follows the
// acknowledgment of a write made through this node sees it. One atomic
// load when there is nothing to wait for.
func (l *Log) caughtUp() {
	index := l.acked.Load()
	if index == 0 || l.st.AppliedIndex() >= index {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	_ = l.st.WaitApplied(ctx, index)
}

// forwardAsync sends the append to the leader on the forward stream and
// calls done with the leader's answer, exactly once.
func (l *Log) forwardAsync(topic string, events []store.Event, expect store.Expectation, done func(store.AppendResult, error)) {
	// A stream found broken before the send took nothing: another is
	// opened. Twice broken so is a leader that cannot take writes now.
	for range 2 {
		s, err := l.forwardStream()
		if err != nil {
			done(store.AppendResult{}, err)
			return
		}
		if s.send(topic, events, expect, done) {
			return
		}
	}
	done(store.AppendResult{}, fmt.Errorf("%w: the stream to the leader broke before the append was sent", ErrUnavailable))
}

// forwardStream returns the stream to the current leader, opening it if
// need be; a stream to a former leader is retired (it ends once its calls
// are answered).
func (l *Log) forwardStream() (*forwardStream, error) {
	id, addr, conn, err := l.leaderConn()
	if err != nil {
		return nil, err
	}
	l.fwdMu.Lock()
	defer l.fwdMu.Unlock()
	if l.fwd != nil && l.fwd.addr == addr && l.fwd.usable() {
		return l.fwd, nil
	}
	if l.fwd != nil {
		l.fwd.retire()
	}
	l.fwd = nil
	s, err := openForwardStream(conn, addr, l.timeout, l.noteAcked)
	if err != nil {
		return nil, fmt.Errorf("cluster: forward to leader %s: %w", id, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		go s.close()
		return nil, ErrClosed
	}
	live := l.streams[:0]
	for _, old := range l.streams {
		select {
		case <-old.ended:
		default:
			live = append(live, old)
		}
	}
	l.streams = append(live, s)
	l.fwd = s
	return s, nil
}

// WaitIndex waits until this node applied the Raft log up to index (an
// AppendResult's Index, from any member): reads then see that write. It
// ends with ctx's error, or store.ErrClosed.
func (l *Log) WaitIndex(ctx context.Context, index uint64) error {
	return l.st.WaitApplied(ctx, index)
}

// SetCursor records consumer's cursor in topic: on the leader as an
// entry (with the seq of the event at id, when the leader holds it), on a
// follower forwarded as a CommitCursor (see Log).
func (l *Log) SetCursor(ctx context.Context, topic, consumer string, id uint64) error {
	return l.onLeader(ctx, func() error {
		cmd := store.Command{Kind: store.CommandSetCursor, Topic: topic, Consumer: consumer, CursorID: id,
			CursorSeq: l.st.CursorSeq(topic, id)}
		_, _, err := l.node.propose(ctx, cmd)
		return err
	}, func(ctx context.Context, c goethev1.GoetheClient) error {
		_, err := c.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: topic, Consumer: consumer, Id: id})
		return err
	})
}

// Read reads this node's applied state (store.Read), once it holds the
// appends this node acknowledged.
func (l *Log) Read(topic string, from uint64, limit int) (store.Page, error) {
	l.caughtUp()
	return l.st.Read(topic, from, limit)
}

// Wait waits on this node's store (store.Wait); applies wake it.
func (l *Log) Wait(ctx context.Context, topic string, from uint64) error {
	return l.st.Wait(ctx, topic, from)
}

// Info reads this node's applied state (store.Info), once it holds the
// appends this node acknowledged.
func (l *Log) Info(topic string) (store.TopicInfo, error) {
	l.caughtUp()
	return l.st.Info(topic)
}

// Topics reads this node's applied state (store.Topics), once it holds
// the appends this node acknowledged.
func (l *Log) Topics(after string, limit int) ([]store.TopicInfo, string, error) {
	l.caughtUp()
	return l.st.Topics(after, limit)
}

// GetCursor reads this node's applied state (store.GetCursor).
func (l *Log) GetCursor(topic, consumer string) (store.Cursor, error) {
	return l.st.GetCursor(topic, consumer)
}

// Stats are this node's store's commit counters (store.Stats).
func (l *Log) Stats() store.Stats { return l.st.Stats() }

// WriteErr is nil while this node can take writes: its store's write
// error (store.WriteErr) if any, else a *NotLeaderError while it knows no
// leader.
func (l *Log) WriteErr() error {
	if err := l.st.WriteErr(); err != nil {
		return err
	}
	if id, _ := l.node.Leader(); id == "" {
		return l.hint(l.node.notLeader())
	}
	return nil
}

// WriteErrChanged returns a channel closed when WriteErr may have changed
// (the store's write state or the leader changed). A caller that takes the
// channel, then reads WriteErr, misses no change. After Close it is never
// closed.
func (l *Log) WriteErrChanged() <-chan struct{} { return *l.changed.Load() }

// watchWriteState closes the WriteErrChanged channel at every change of
// the store's write state or of the leader, from the channels stCh and
// leaderCh on: NewLog takes them before it returns, so that no change
// after it is missed. (A wake-up per underlying change, not per change of
// WriteErr: comparing states here could miss a change that a reader saw
// and that was undone before this goroutine looked.)
func (l *Log) watchWriteState(stCh, leaderCh <-chan struct{}) {
	defer l.watched.Done()
	for {
		select {
		case <-stCh:
			stCh = l.st.WriteErrChanged()
		case <-leaderCh:
			leaderCh = l.node.LeaderChanged()
		case <-l.stop:
			return
		}
		next := make(chan struct{})
		close(*l.changed.Swap(&next))
	}
}

// Close closes the connections to the leader and stops the watch of the
// write state. Writes forwarded after Close fail with ErrClosed. It does
// not close the Node or the Store.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	conns, streams := l.conns, l.streams
	l.conns, l.streams = nil, nil
	l.mu.Unlock()
	close(l.stop)
	l.watched.Wait()
	for _, s := range streams {
		s.close() // its calls end with ErrOutcomeUnknown
	}
	var errs []error
	for _, c := range conns {
		errs = append(errs, c.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: close log: %w", err)
	}
	return nil
}

// leaderClient returns a client of the leader's service, or the
// *NotLeaderError of a node that cannot forward.
func (l *Log) leaderClient() (goethev1.GoetheClient, error) {
	_, _, conn, err := l.leaderConn()
	if err != nil {
		return nil, err
	}
	return goethev1.NewGoetheClient(conn), nil
}

// leaderConn returns the leader's id, client address and a connection to
// it, or the *NotLeaderError of a node that cannot forward.
func (l *Log) leaderConn() (id, addr string, conn *grpc.ClientConn, err error) {
	id, addr = l.leaderClientAddr() // membership.go
	if id == "" || addr == "" || l.noFwd {
		return "", "", nil, l.hint(l.node.notLeader())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", "", nil, ErrClosed
	}
	conn = l.conns[addr]
	if conn == nil {
		if conn, err = grpc.NewClient(addr, l.dial...); err != nil {
			return "", "", nil, fmt.Errorf("cluster: connect to leader %s at %s: %w", id, addr, err)
		}
		l.conns[addr] = conn
	}
	return id, addr, conn, nil
}

// hint sets the leader's client address in a *NotLeaderError.
func (l *Log) hint(err error) error {
	if nle := (*NotLeaderError)(nil); errors.As(err, &nle) && nle.LeaderID != "" && nle.LeaderClientAddr == "" {
		nle.LeaderClientAddr = l.clientAddr(nle.LeaderID, "") // membership.go
	}
	return err
}

// onLeader carries out a write that only the leader can make: here runs it
// on this node when it leads, or when the call was forwarded to it (a
// forwarded call is never forwarded again); otherwise, or when leadership
// moved before here proposed (ErrNotLeader: nothing was proposed),
// forward sends it to the leader's service, marked as forwarded. The error
// is here's (with the leader's client address when it is known), the
// leader's status, or ErrOutcomeUnknown (see forwardErr).
func (l *Log) onLeader(ctx context.Context, here func() error, forward func(context.Context, goethev1.GoetheClient) error) error {
	if l.node.IsLeader() || forwarded(ctx) {
		err := here()
		if !errors.Is(err, ErrNotLeader) || forwarded(ctx) {
			return l.hint(err)
		}
	}
	c, err := l.leaderClient()
	if err != nil {
		return err
	}
	if err := forward(metadata.AppendToOutgoingContext(ctx, ForwardedKey, "1"), c); err != nil {
		return forwardErr(err)
	}
	return nil
}

// forwarded reports whether ctx is a call's that a follower forwarded.
func forwarded(ctx context.Context) bool {
	return len(metadata.ValueFromIncomingContext(ctx, ForwardedKey)) > 0
}

// forwardErr is the error of a forwarded write: the leader's status when
// it answered with one of the service's (an ErrorInfo in
// goethev1.ErrorDomain), passed on as it is; otherwise the leader's answer
// is unknown (ErrOutcomeUnknown).
func forwardErr(err error) error {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == goethev1.ErrorDomain {
			return err
		}
	}
	// Not %w: a wrapped status would be taken for the leader's answer.
	return fmt.Errorf("%w: forward to the leader: %v", ErrOutcomeUnknown, err)
}

// Status is this node's view of the group (Node.Status): cheap, for
// metrics scraped often.
func (l *Log) Status() Status { return l.node.Status() }

// Member is one voter of the cluster: its Raft server id and address, and
// its client address: the one the configuration records (see MemberAddr),
// else LogConfig.ClientAddrs' ("" when neither gives it).
type Member struct {
	ID, RaftAddr, ClientAddr string
}

// ClusterStatus returns this node's view (Node.Status) and the voters of
// the current configuration, sorted by id.
func (l *Log) ClusterStatus() (Status, []Member, error) {
	st := l.node.Status()
	members, err := l.Members() // membership.go
	return st, members, err
}
