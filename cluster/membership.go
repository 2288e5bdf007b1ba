package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// Membership. A member's client address (its goethe.v1.Goethe service,
// where followers forward writes) travels in the Raft configuration with
// its Raft address, as one server address "raft-host:port|client-host:port"
// (MemberAddr). The configuration is replicated, snapshotted and changed
// by Raft itself, so an added member's client address reaches every member
// in the same commit that adds it, survives restarts, and goes with a
// removed member. The member's transport (NewTCPTransport) dials the Raft
// part and advertises the whole, so the leader hint a follower learns from
// the leader's messages names the leader's client address too. A server
// address without "|" is a Raft address alone (client address unknown:
// LogConfig.ClientAddrs may give it).

// ErrMemberNotFound: a removal named an id that is not a member. Nothing
// changed.
var ErrMemberNotFound = errors.New("cluster: no such member")

// MemberNotFoundError is ErrMemberNotFound for the id ID.
type MemberNotFoundError struct{ ID string }

func (e *MemberNotFoundError) Error() string { return fmt.Sprintf("cluster: no member %q", e.ID) }

// Is makes errors.Is(err, ErrMemberNotFound) true.
func (e *MemberNotFoundError) Is(target error) bool { return target == ErrMemberNotFound }

// addrSep separates the Raft and client parts of a server address: it
// cannot occur in a host:port.
const addrSep = "|"

// MemberAddr is the Raft server address of a member at raftAddr whose
// client address is clientAddr ("" for none): what the configuration
// records and the transport advertises.
func MemberAddr(raftAddr, clientAddr string) string {
	if clientAddr == "" {
		return raftAddr
	}
	return raftAddr + addrSep + clientAddr
}

// SplitMemberAddr splits a server address made by MemberAddr.
func SplitMemberAddr(addr string) (raftAddr, clientAddr string) {
	raftAddr, clientAddr, _ = strings.Cut(addr, addrSep)
	return raftAddr, clientAddr
}

// NewTCPTransport returns raft's network transport over TCP, listening on
// bind and advertising MemberAddr(advertise, clientAddr) (advertise ""
// means the listener's address, which must then not be unspecified). It
// dials the Raft part of any server address. With tlsCfg (MemberTLS) every
// connection, in and out, is mutual TLS. Node uses it when Config.
// Transport is nil; tests that wrap the transport start it themselves.
func NewTCPTransport(bind, advertise, clientAddr string, tlsCfg *tls.Config, timeout time.Duration, logger hclog.Logger) (*raft.NetworkTransport, error) {
	if strings.Contains(bind+advertise+clientAddr, addrSep) {
		return nil, fmt.Errorf("cluster: an address holds %q", addrSep)
	}
	lis, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	adv := advertise
	if adv == "" {
		tcp, ok := lis.Addr().(*net.TCPAddr)
		if !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
			_ = lis.Close()
			return nil, fmt.Errorf("cluster: %s cannot be advertised: give an advertise address", lis.Addr())
		}
		adv = tcp.String()
	}
	sl := &streamLayer{Listener: lis, addr: memberNetAddr(MemberAddr(adv, clientAddr)), tls: tlsCfg}
	if tlsCfg != nil {
		// The handshake runs on each connection's first read, in raft's
		// goroutine for it: one slow peer never holds up the accept loop.
		sl.Listener = tls.NewListener(lis, tlsCfg)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: sl, MaxPool: 3, Timeout: timeout, Logger: logger,
	}), nil
}

// streamLayer is raft's StreamLayer over a TCP listener, dialing the Raft
// part of server addresses.
type streamLayer struct {
	net.Listener
	addr memberNetAddr
	tls  *tls.Config // nil: plain TCP
}

func (s *streamLayer) Addr() net.Addr { return s.addr }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	raftAddr, _ := SplitMemberAddr(string(address))
	if s.tls != nil {
		// The handshake completes within timeout, so a peer whose
		// certificate the cluster does not trust fails here.
		return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", raftAddr, s.tls)
	}
	return net.DialTimeout("tcp", raftAddr, timeout)
}

// memberNetAddr is a server address as a net.Addr.
type memberNetAddr string

func (a memberNetAddr) Network() string { return "tcp" }
func (a memberNetAddr) String() string  { return string(a) }

// members returns the voters of the current configuration, sorted by id,
// with the client addresses the configuration records.
func (n *Node) members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("cluster: configuration: %w", err)
	}
	var out []Member
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			r, c := SplitMemberAddr(string(s.Address))
			out = append(out, Member{ID: string(s.ID), RaftAddr: r, ClientAddr: c})
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// clientAddr returns the client address of member id whose server address
// is addr (either may be ""): the configuration's, else LogConfig.
// ClientAddrs', else "".
func (l *Log) clientAddr(id, addr string) string {
	if _, c := SplitMemberAddr(addr); c != "" {
		return c
	}
	if c := l.clients[id]; c != "" || id == "" {
		return c
	}
	ms, err := l.node.members()
	if err != nil {
		return ""
	}
	for _, m := range ms {
		if m.ID == id {
			return m.ClientAddr
		}
	}
	return ""
}

// leaderClientAddr returns the id of the leader this node knows of and its
// client address ("" when unknown).
func (l *Log) leaderClientAddr() (id, addr string) {
	a, i := l.node.raft.LeaderWithID()
	return string(i), l.clientAddr(string(i), string(a))
}

// Members returns the voters of the current configuration, sorted by id,
// with their client addresses (the configuration's, else
// LogConfig.ClientAddrs').
func (l *Log) Members() ([]Member, error) {
	ms, err := l.node.members()
	for i := range ms {
		if ms[i].ClientAddr == "" {
			ms[i].ClientAddr = l.clients[ms[i].ID]
		}
	}
	return ms, err
}

// AddMember adds the voter id, whose Raft transport listens at raftAddr and
// whose goethe.v1.Goethe service at clientAddr, through the leader (a
// follower forwards the change as an AddClusterMember, one hop), and
// returns the members once the change is committed. The new member must
// run, started without peers (see Config.Peers); it catches up from the
// leader's log or a snapshot. Adding a member that is there already with
// these addresses changes nothing; with other addresses, it updates them.
// Errors: as Node.AddVoter's, or the leader's gRPC status (passed on).
func (l *Log) AddMember(ctx context.Context, id, raftAddr, clientAddr string) ([]Member, error) {
	if id == "" || raftAddr == "" || strings.Contains(raftAddr+clientAddr, addrSep) {
		return nil, fmt.Errorf("%w: a member needs an id and a Raft address, and no %q in its addresses", ErrInvalidMember, addrSep)
	}
	var members []Member
	err := l.onLeader(ctx, func() error {
		err := l.node.AddVoter(ctx, id, MemberAddr(raftAddr, clientAddr))
		if err == nil {
			members, err = l.Members()
		}
		return err
	}, func(ctx context.Context, c goethev1.GoetheClient) error {
		resp, err := c.AddClusterMember(ctx,
			&goethev1.AddClusterMemberRequest{Member: &goethev1.ClusterMember{Id: id, RaftAddress: raftAddr, ClientAddress: clientAddr}})
		members = membersOf(resp.GetMembers())
		return err
	})
	if err != nil {
		return nil, err
	}
	return members, nil
}

// RemoveMember removes the voter id through the leader (a follower
// forwards it, one hop) and returns the members once the change is
// committed. A leader that removes itself steps down then; the others
// elect a new one. Errors: a *MemberNotFoundError (ErrMemberNotFound) when
// id is not a member, otherwise as AddMember's.
func (l *Log) RemoveMember(ctx context.Context, id string) ([]Member, error) {
	var members []Member
	err := l.onLeader(ctx, func() error {
		err := l.removeHere(ctx, id)
		if err == nil {
			members, err = l.Members()
		}
		return err
	}, func(ctx context.Context, c goethev1.GoetheClient) error {
		resp, err := c.RemoveClusterMember(ctx, &goethev1.RemoveClusterMemberRequest{Id: id})
		members = membersOf(resp.GetMembers())
		return err
	})
	if err != nil {
		return nil, err
	}
	return members, nil
}

func (l *Log) removeHere(ctx context.Context, id string) error {
	if !l.node.IsLeader() {
		return l.node.notLeader()
	}
	ms, err := l.node.members()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(ms, func(m Member) bool { return m.ID == id }) {
		return &MemberNotFoundError{ID: id}
	}
	return l.node.RemoveServer(ctx, id)
}

// ErrInvalidMember: an AddMember without an id or a Raft address, or with
// an address that holds "|". Nothing changed.
var ErrInvalidMember = errors.New("cluster: invalid member")

func membersOf(ms []*goethev1.ClusterMember) []Member {
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = Member{ID: m.GetId(), RaftAddr: m.GetRaftAddress(), ClientAddr: m.GetClientAddress()}
	}
	return out
}
