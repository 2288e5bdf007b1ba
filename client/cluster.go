package client

import (
	"context"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// ClusterStatus is one server's view of its cluster (GetClusterStatus):
// another member may know a newer term or leader. Clustered is false for
// a single-node server, and the other fields are then empty.
type ClusterStatus struct {
	Clustered bool   `json:"clustered"`
	NodeID    string `json:"node_id,omitempty"`
	// State is the server's Raft state: Leader, Follower, Candidate or
	// Shutdown.
	State    string `json:"state,omitempty"`
	LeaderID string `json:"leader_id,omitempty"` // "": no leader known
	Term     uint64 `json:"term,omitempty"`
	// LastIndex is the last entry of the server's Raft log, CommitIndex
	// the last it knows committed, AppliedIndex the last whose effects its
	// reads see.
	LastIndex    uint64          `json:"last_index,omitempty"`
	CommitIndex  uint64          `json:"commit_index,omitempty"`
	AppliedIndex uint64          `json:"applied_index,omitempty"`
	Members      []ClusterMember `json:"members,omitempty"` // the voters, by id
}

// ClusterMember is one voter: its Raft server id and address, and its
// client address ("" when the answering server was not told it).
type ClusterMember struct {
	ID            string `json:"id"`
	RaftAddress   string `json:"raft_address"`
	ClientAddress string `json:"client_address,omitempty"`
}

// ClusterStatus asks the server for its view of its cluster.
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	res, err := c.api.GetClusterStatus(ctx, &goethev1.GetClusterStatusRequest{})
	if err != nil {
		return ClusterStatus{}, wrapError(err)
	}
	s := ClusterStatus{Clustered: res.GetClustered(), NodeID: res.GetNodeId(), State: res.GetState(),
		LeaderID: res.GetLeaderId(), Term: res.GetTerm(), LastIndex: res.GetLastIndex(),
		CommitIndex: res.GetCommitIndex(), AppliedIndex: res.GetAppliedIndex()}
	for _, m := range res.GetMembers() {
		s.Members = append(s.Members, ClusterMember{ID: m.GetId(), RaftAddress: m.GetRaftAddress(), ClientAddress: m.GetClientAddress()})
	}
	return s, nil
}

// AddClusterMember adds m as a voter of the server's cluster (through its
// leader: a follower forwards the change) and returns the members once the
// change is committed. m needs its id, Raft address and client address;
// the new member must run already, started without peers (goethe
// --node-id … --raft-listen … --join), and catches up from the leader.
// Adding a member that is there with the same addresses changes nothing.
// Needs a token with admin over "*". Errors: FAILED_PRECONDITION with
// reason NOT_CLUSTERED from a single-node server (errors.Is(err,
// ErrConflict) holds for that code too: check the reason with IsReason);
// ErrUnavailable (NOT_LEADER, OUTCOME_UNKNOWN: the change may or may not
// have been made) as for a Produce.
func (c *Client) AddClusterMember(ctx context.Context, m ClusterMember) ([]ClusterMember, error) {
	res, err := c.api.AddClusterMember(ctx, &goethev1.AddClusterMemberRequest{
		Member: &goethev1.ClusterMember{Id: m.ID, RaftAddress: m.RaftAddress, ClientAddress: m.ClientAddress}})
	if err != nil {
		return nil, wrapError(err)
	}
	return clusterMembers(res.GetMembers()), nil
}

// RemoveClusterMember removes the voter id from the server's cluster
// (through its leader) and returns the members once the change is
// committed. Removing the leader makes it step down; the others elect a
// new one. Needs admin over "*". Errors: ErrNotFound with reason
// MEMBER_NOT_FOUND when id is not a member; otherwise as AddClusterMember.
func (c *Client) RemoveClusterMember(ctx context.Context, id string) ([]ClusterMember, error) {
	res, err := c.api.RemoveClusterMember(ctx, &goethev1.RemoveClusterMemberRequest{Id: id})
	if err != nil {
		return nil, wrapError(err)
	}
	return clusterMembers(res.GetMembers()), nil
}

func clusterMembers(ms []*goethev1.ClusterMember) []ClusterMember {
	out := make([]ClusterMember, len(ms))
	for i, m := range ms {
		out[i] = ClusterMember{ID: m.GetId(), RaftAddress: m.GetRaftAddress(), ClientAddress: m.GetClientAddress()}
	}
	return out
}
