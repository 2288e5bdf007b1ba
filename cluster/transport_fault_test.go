package cluster_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/cluster"
)

// faultNet injects faults into the Raft traffic of the nodes of one test
// cluster: each node's transport is a real TCP transport (raft's
// NetworkTransport on 127.0.0.1) wrapped by a faultTransport, which checks
// every outgoing RPC against the net's rules before (and after) sending it.
//
//   - partition: a node cut off from every other one, both ways (its own
//     RPCs fail, and the others' RPCs to it fail), until heal;
//   - drop: each RPC fails before it is sent with probability dropReq, or
//     is sent and its response lost with probability dropResp (the
//     receiver acted on it, the sender does not know);
//   - delay: each RPC waits a random time in [0, delay) before it is sent.
//
// Since every node's outgoing calls are checked, cutting the outgoing
// calls of both ends of a link cuts it both ways. Pipelined replication is
// refused (raft falls back to one AppendEntries at a time), so that every
// AppendEntries passes the check. Inbound RPCs are not touched.
type faultNet struct {
	mu       sync.Mutex
	cut      map[string]bool // raft address → partitioned
	dropReq  float64
	dropResp float64
	delay    time.Duration
	rng      *rand.Rand
}

func newFaultNet(seed uint64) *faultNet {
	return &faultNet{cut: map[string]bool{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// errFault is the error of an RPC the net refused or lost.
var errFault = errors.New("faultnet: injected fault")

// isolate cuts addr off from every other node, both ways.
func (f *faultNet) isolate(addr string) {
	f.mu.Lock()
	f.cut[addr] = true
	f.mu.Unlock()
}

// heal ends every partition, drop and delay.
func (f *faultNet) heal() {
	f.mu.Lock()
	clear(f.cut)
	f.dropReq, f.dropResp, f.delay = 0, 0, 0
	f.mu.Unlock()
}

// setLossy sets the drop probabilities and the delay bound of every link.
func (f *faultNet) setLossy(dropReq, dropResp float64, delay time.Duration) {
	f.mu.Lock()
	f.dropReq, f.dropResp, f.delay = dropReq, dropResp, delay
	f.mu.Unlock()
}

// decide returns the fate of one RPC from → to.
func (f *faultNet) decide(from, to string) (refuse, loseResponse bool, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut[from] || f.cut[to] {
		return true, false, 0
	}
	if f.delay > 0 {
		wait = time.Duration(f.rng.Int64N(int64(f.delay)))
	}
	return f.rng.Float64() < f.dropReq, f.rng.Float64() < f.dropResp, wait
}

// transport wraps inner, whose local address is self, in the net's rules.
func (f *faultNet) transport(inner raft.Transport) *faultTransport {
	return &faultTransport{Transport: inner, net: f, self: string(inner.LocalAddr())}
}

// tcpTransport starts the cluster's TCP transport on bind, advertising
// clientAddr, and wraps it.
func (f *faultNet) tcpTransport(bind, clientAddr string, log hclog.Logger) (*faultTransport, error) {
	tcp, err := cluster.NewTCPTransport(bind, "", clientAddr, nil, 2*time.Second, log)
	if err != nil {
		return nil, err
	}
	return f.transport(tcp), nil
}

// faultTransport is one node's transport under a faultNet.
type faultTransport struct {
	raft.Transport
	net  *faultNet
	self string
}

var (
	_ raft.Transport   = (*faultTransport)(nil)
	_ raft.WithPreVote = (*faultTransport)(nil)
	_ raft.WithClose   = (*faultTransport)(nil)
)

// send runs call under the net's rules for an RPC to target.
func (t *faultTransport) send(target raft.ServerAddress, call func() error) error {
	refuse, lose, wait := t.net.decide(t.self, string(target))
	if wait > 0 {
		time.Sleep(wait) // the injected delay itself, not a wait for a condition
	}
	if refuse {
		return fmt.Errorf("%w: %s → %s refused", errFault, t.self, target)
	}
	if err := call(); err != nil {
		return err
	}
	if lose {
		return fmt.Errorf("%w: %s → %s response lost", errFault, t.self, target)
	}
	return nil
}

// AppendEntriesPipeline refuses pipelining, so that every AppendEntries
// goes through send.
func (t *faultTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (t *faultTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	return t.send(target, func() error { return t.Transport.AppendEntries(id, target, args, resp) })
}

func (t *faultTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.send(target, func() error { return t.Transport.RequestVote(id, target, args, resp) })
}

func (t *faultTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	pv, ok := t.Transport.(raft.WithPreVote)
	if !ok {
		return errors.New("faultnet: the inner transport has no pre-vote")
	}
	return t.send(target, func() error { return pv.RequestPreVote(id, target, args, resp) })
}

func (t *faultTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	return t.send(target, func() error { return t.Transport.InstallSnapshot(id, target, args, resp, data) })
}

func (t *faultTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.send(target, func() error { return t.Transport.TimeoutNow(id, target, args, resp) })
}

// Close closes the inner transport.
func (t *faultTransport) Close() error {
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// withFaults is a newCluster tweak that gives every node a TCP transport
// on its Bind address under net (a restarted node gets a new one).
func withFaults(t testing.TB, net *faultNet, also func(*cluster.Config)) func(*cluster.Config) {
	return func(cfg *cluster.Config) {
		if also != nil {
			also(cfg)
		}
		tr, err := net.tcpTransport(cfg.Bind, cfg.ClientAddr, cfg.Logger.Named("transport"))
		require.NoError(t, err)
		cfg.Transport = tr
	}
}
