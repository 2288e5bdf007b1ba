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
