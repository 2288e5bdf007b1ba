package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/goethe-log/goethe/cluster"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// Membership is an ability a Log may have beside ClusterInfo: changes of
// the cluster's voters, which AddClusterMember and RemoveClusterMember
// make. Each returns the members once the change is committed; errors
// wrap cluster.ErrMemberNotFound (a removal of an id that is no member),
// cluster.ErrInvalidMember, or the cluster's write errors (ErrNotLeader…),
// or are the leader's gRPC status when a follower forwarded the change.
// *cluster.Log has it.
type Membership interface {
	AddMember(ctx context.Context, id, raftAddr, clientAddr string) ([]cluster.Member, error)
	RemoveMember(ctx context.Context, id string) ([]cluster.Member, error)
}

var _ Membership = (*cluster.Log)(nil)

// errNotClustered: a cluster call reached a single-node server.
var errNotClustered = errors.New("not a cluster member: this server runs single-node")

// maxMemberIDLen bounds a member id (a Raft server id).
const maxMemberIDLen = 128

// AddClusterMember adds a voter through the Log's Membership, or answers
// FAILED_PRECONDITION (NOT_CLUSTERED) on a single node.
func (v *service) AddClusterMember(ctx context.Context, req *goethev1.AddClusterMemberRequest) (*goethev1.AddClusterMemberResponse, error) {
	ms, ok := v.log.(Membership)
	if !ok {
		return nil, v.status(errNotClustered)
	}
	m := req.GetMember()
	if err := validateMember(m); err != nil {
		return nil, v.status(err)
	}
	members, err := ms.AddMember(ctx, m.GetId(), m.GetRaftAddress(), m.GetClientAddress())
	if err != nil {
		return nil, v.status(err)
	}
	return &goethev1.AddClusterMemberResponse{Members: memberProtos(members)}, nil
}

// RemoveClusterMember removes a voter through the Log's Membership, or
// answers FAILED_PRECONDITION (NOT_CLUSTERED) on a single node.
func (v *service) RemoveClusterMember(ctx context.Context, req *goethev1.RemoveClusterMemberRequest) (*goethev1.RemoveClusterMemberResponse, error) {
	ms, ok := v.log.(Membership)
	if !ok {
		return nil, v.status(errNotClustered)
	}
	if err := validateMemberID(req.GetId()); err != nil {
		return nil, v.status(err)
	}
	members, err := ms.RemoveMember(ctx, req.GetId())
	if err != nil {
		return nil, v.status(err)
	}
	return &goethev1.RemoveClusterMemberResponse{Members: memberProtos(members)}, nil
}

func validateMemberID(id string) error {
	if id == "" || len(id) > maxMemberIDLen || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == '|' }) {
		return fmt.Errorf("%w: a member id is 1 to %d bytes, without spaces, control characters or '|'", errBadRequest, maxMemberIDLen)
	}
	return nil
}

// validateMember checks an added member: an id, and host:port Raft and
// client addresses (a member without a client address could not be
// forwarded to).
func validateMember(m *goethev1.ClusterMember) error {
	if err := validateMemberID(m.GetId()); err != nil {
		return err
	}
	for _, a := range []struct{ name, addr string }{{"raft_address", m.GetRaftAddress()}, {"client_address", m.GetClientAddress()}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil || strings.Contains(a.addr, "|") {
			return fmt.Errorf("%w: member %s %q is not host:port", errBadRequest, a.name, a.addr)
		}
	}
	return nil
}

func memberProtos(ms []cluster.Member) []*goethev1.ClusterMember {
	out := make([]*goethev1.ClusterMember, len(ms))
	for i, m := range ms {
		out[i] = &goethev1.ClusterMember{Id: m.ID, RaftAddress: m.RaftAddr, ClientAddress: m.ClientAddr}
	}
	return out
}
