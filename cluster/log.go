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
//     goethe.v1.Goethe service (LogConfig.ClientAddrs) as a Produce or
//     CommitCursor marked with ForwardedKey. An acknowledged forwarded
//     Append returns once this node applied it too (Read and Info then see
//     it), or after ForwardTimeout if this node falls that far behind.
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
//
// # Caveats
//
//   - AppendAsync on a follower forwards before it returns, and calls
//     done from a goroutine of its own once this node applied the append:
//     it keeps the order of a caller's appends, with one of that caller's
//     appends on its way to the leader at a time.
//   - A forwarded SetCursor returns when the leader applied it; a
//     GetCursor on this follower may see the older cursor a moment longer.
//   - On the leader, each append in flight has a goroutine (two, with
//     Node's) waiting for its commit.
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

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool

	changed atomic.Pointer[chan struct{}] // see WriteErrChanged
	stop    chan struct{}
	watched sync.WaitGroup
}

// NewLog returns the Log of cfg.Node and cfg.Store. It starts one
// goroutine, which watches the write state until Close.
func NewLog(cfg LogConfig) (*Log, error) {
	if cfg.Node == nil || cfg.Store == nil {
		return nil, errors.New("cluster: new log: Node and Store are required")
	}
	l := &Log{node: cfg.Node, st: cfg.Store, clients: cfg.ClientAddrs, dial: cfg.DialOptions,
		timeout: cfg.ForwardTimeout, noFwd: cfg.NoForward, conns: map[string]*grpc.ClientConn{}, stop: make(chan struct{})}
	if l.timeout <= 0 {
		l.timeout = DefaultForwardTimeout
	}
	if l.dial == nil {
		l.dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	ch := make(chan struct{})
	l.changed.Store(&ch)
	l.watched.Add(1)
	go l.watchWriteState(l.st.WriteErrChanged(), l.node.LeaderChanged())
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
	cmd := store.Command{Kind: store.CommandAppend, Topic: topic, Events: events, Expect: expect}
	f, err := l.node.start(ctx, cmd)
	if err != nil {
		return store.AppendResult{}, err
	}
	r, index, err := l.node.finish(context.WithoutCancel(ctx), f)
	if err == nil {
		r.Append.Index = index
	}
	return r.Append, err
}

// AppendAsync appends events to topic and calls done with the outcome,
// exactly once: see server.Log. On the leader the entry is queued in Raft
// before AppendAsync returns, so one goroutine's appends commit in order;
// on a follower the append is forwarded before AppendAsync returns (see
// Log's caveats).
func (l *Log) AppendAsync(topic string, events []store.Event, expect store.Expectation, done func(store.AppendResult, error)) {
	if l.node.IsLeader() {
		cmd := store.Command{Kind: store.CommandAppend, Topic: topic, Events: events, Expect: expect}
		f, err := l.node.start(context.Background(), cmd)
		switch {
		case err == nil:
			go func() {
				r, index, err := l.node.finish(context.Background(), f)
				if err == nil {
					r.Append.Index = index
				}
				done(r.Append, l.hint(err))
			}()
			return
		case !errors.Is(err, ErrNotLeader):
			done(store.AppendResult{}, err)
			return
		}
		// Leadership moved before the proposal: nothing was written.
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	r, err := l.forward(ctx, topic, events, expect)
	if err != nil {
		done(r, err)
		return
	}
	// The leader has committed it: the next append may be forwarded while
	// this node applies it.
	go func() {
		l.awaitApplied(topic, r)
		done(r, nil)
	}()
}

// forwardAppend forwards the append to the leader and waits until this
// node applied it.
func (l *Log) forwardAppend(ctx context.Context, topic string, events []store.Event, expect store.Expectation) (store.AppendResult, error) {
	r, err := l.forward(ctx, topic, events, expect)
	if err != nil {
		return r, err
	}
	l.awaitApplied(topic, r)
	return r, nil
}

// awaitApplied waits until this node applied the acknowledged append r,
// or ForwardTimeout passed: the batch is applied here once the topic holds
// its first id (a batch is applied in one engine batch). The append is on
// a majority whatever this finds.
func (l *Log) awaitApplied(topic string, r store.AppendResult) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	_ = l.st.Wait(ctx, topic, r.FirstID)
}

// forward sends the append to the leader as a Produce.
func (l *Log) forward(ctx context.Context, topic string, events []store.Event, expect store.Expectation) (store.AppendResult, error) {
	c, err := l.leaderClient()
	if err != nil {
		return store.AppendResult{}, err
	}
	req := &goethev1.ProduceRequest{Topic: topic, Events: make([]*goethev1.EventData, len(events))}
	for i := range events {
		req.Events[i] = &goethev1.EventData{Payload: events[i].Payload, Headers: events[i].Headers}
	}
	if expect.IsSet() {
		n := expect.LastSeq()
		req.ExpectedLastSeq = &n
	}
	resp, err := c.Produce(metadata.AppendToOutgoingContext(ctx, ForwardedKey, "1"), req)
	if err != nil {
		return store.AppendResult{}, forwardErr(err)
	}
	return store.AppendResult{FirstID: resp.GetFirstId(), FirstSeq: resp.GetFirstSeq(), Count: int(resp.GetCount()),
		Index: resp.GetRaftIndex()}, nil
}

// WaitIndex waits until this node applied the Raft log up to index (an
// AppendResult's Index, from any member): reads then see that write. It
// ends with ctx's error, or store.ErrClosed.
func (l *Log) WaitIndex(ctx context.Context, index uint64) error {
	return l.st.WaitApplied(ctx, index)
}

// SetCursor records consumer's cursor in topic: on the leader as an
// entry, on a follower forwarded as a CommitCursor (see Log).
func (l *Log) SetCursor(ctx context.Context, topic, consumer string, id uint64) error {
	if l.node.IsLeader() || forwarded(ctx) {
		_, err := l.node.SetCursor(ctx, topic, consumer, id)
		if !errors.Is(err, ErrNotLeader) || forwarded(ctx) {
			return l.hint(err)
		}
	}
	c, err := l.leaderClient()
	if err != nil {
		return err
	}
	_, err = c.CommitCursor(metadata.AppendToOutgoingContext(ctx, ForwardedKey, "1"),
		&goethev1.CommitCursorRequest{Topic: topic, Consumer: consumer, Id: id})
	if err != nil {
		return forwardErr(err)
	}
	return nil
}

// Read reads this node's applied state (store.Read).
func (l *Log) Read(topic string, from uint64, limit int) (store.Page, error) {
	return l.st.Read(topic, from, limit)
}

// Wait waits on this node's store (store.Wait); applies wake it.
func (l *Log) Wait(ctx context.Context, topic string, from uint64) error {
	return l.st.Wait(ctx, topic, from)
}

// Info reads this node's applied state (store.Info).
func (l *Log) Info(topic string) (store.TopicInfo, error) { return l.st.Info(topic) }

// Topics reads this node's applied state (store.Topics).
func (l *Log) Topics(after string, limit int) ([]store.TopicInfo, string, error) {
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
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	close(l.stop)
	l.watched.Wait()
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
	id, addr := l.leaderClientAddr() // membership.go
	if id == "" || addr == "" || l.noFwd {
		return nil, l.hint(l.node.notLeader())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	conn := l.conns[addr]
	if conn == nil {
		var err error
		if conn, err = grpc.NewClient(addr, l.dial...); err != nil {
			return nil, fmt.Errorf("cluster: connect to leader %s at %s: %w", id, addr, err)
		}
		l.conns[addr] = conn
	}
	return goethev1.NewGoetheClient(conn), nil
}

// hint sets the leader's client address in a *NotLeaderError.
func (l *Log) hint(err error) error {
	if nle := (*NotLeaderError)(nil); errors.As(err, &nle) && nle.LeaderID != "" && nle.LeaderClientAddr == "" {
		nle.LeaderClientAddr = l.clientAddr(nle.LeaderID, "") // membership.go
	}
	return err
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
