package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/goethe-log/goethe/client"
)

// memberTimeout bounds the question to each member other than --server.
const memberTimeout = 5 * time.Second

var clusterStatusCommand = &command{
	name:    "cluster status",
	summary: "show the cluster's members: state, leader, term and indexes of each",
	help: `
Asks --server for the members of its cluster, then asks each member at its
client address for its own view: its Raft state, term, the last index of
its log, the last it knows committed, and the last it applied (what its
reads see). A member that cannot be reached is shown so, with the reason;
LEADER is the leader each member knows of. With --json, one JSON object per
member per line. A single-node server is not a cluster: the command fails.`,
	nargs: exactly(0),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		asJSON := fs.Bool("json", false, "print one JSON object per member")
		return func(ctx context.Context, e *env, _ []string) error {
			return clusterStatus(ctx, e, g, *asJSON)
		}
	},
}

// memberStatus is one member as cluster status shows it.
type memberStatus struct {
	client.ClusterMember
	Status *client.ClusterStatus `json:"status,omitempty"`
	Error  string                `json:"error,omitempty"`
}

func clusterStatus(ctx context.Context, e *env, g *globals, asJSON bool) error {
	c, err := dial(g)
	if err != nil {
		return err
	}
	defer c.Close()
	first, err := c.ClusterStatus(ctx)
	if err != nil {
		return explain(err, g.server)
	}
	if !first.Clustered {
		return fmt.Errorf("the server at %s is a single node, not a cluster member", g.server)
	}
	members := make([]memberStatus, len(first.Members))
	for i, m := range first.Members {
		members[i] = memberStatus{ClusterMember: m}
		switch {
		case m.ID == first.NodeID:
			members[i].Status = &first
		case m.ClientAddress == "":
			members[i].Error = "client address unknown to " + first.NodeID
		default:
			st, err := askMember(ctx, g, m.ClientAddress)
			if err != nil {
				members[i].Error = explain(err, m.ClientAddress).Error()
			} else {
				members[i].Status = &st
			}
		}
	}
	out := bufio.NewWriter(e.stdout)
	if asJSON {
		var buf bytes.Buffer
		for i := range members {
			line, err := marshalLine(&buf, &members[i])
			if err != nil {
				return err
			}
			out.Write(line)
		}
		return out.Flush()
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tSTATE\tLEADER\tTERM\tLAST\tCOMMIT\tAPPLIED\tRAFT\tCLIENT")
	for _, m := range members {
		if m.Status == nil {
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t%s\t%s\n", m.ID, "unreachable: "+m.Error, m.RaftAddress, m.ClientAddress)
			continue
		}
		s := m.Status
		leader := s.LeaderID
		if leader == "" {
			leader = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", m.ID, s.State, leader, s.Term, s.LastIndex, s.CommitIndex,
			s.AppliedIndex, m.RaftAddress, m.ClientAddress)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return out.Flush()
}

// askMember asks the member at addr for its view, with the security of the
// command line.
func askMember(ctx context.Context, g *globals, addr string) (client.ClusterStatus, error) {
	mg := *g
	mg.server = addr
	c, err := dial(&mg)
	if err != nil {
		return client.ClusterStatus{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, memberTimeout)
	defer cancel()
	st, err := c.ClusterStatus(ctx)
	if err == nil && !st.Clustered {
		err = errors.New("not a cluster member")
	}
	return st, err
}

var clusterAddCommand = &command{
	name:    "cluster add",
	args:    "ID RAFT_ADDR CLIENT_ADDR",
	summary: "add a member to the cluster",
	help: `
Adds the member ID, whose Raft transport listens at RAFT_ADDR and whose
goethe service at CLIENT_ADDR (both host:port), as a voter of the cluster of
--server (a follower passes the change to the leader). The new member must
run already, started with --join and an empty --data-dir; once added it
catches up from the leader. Prints the members once the change is
committed. Needs a token with admin over "*".`,
	nargs: exactly(3),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			return changeMembers(ctx, e, g, func(c *client.Client) ([]client.ClusterMember, error) {
				return c.AddClusterMember(ctx, client.ClusterMember{ID: args[0], RaftAddress: args[1], ClientAddress: args[2]})
			})
		}
	},
}

var clusterRemoveCommand = &command{
	name:    "cluster remove",
	args:    "ID",
	summary: "remove a member from the cluster",
	help: `
Removes the member ID from the cluster of --server (a follower passes the
change to the leader). A removed leader steps down and the others elect a
new one; the removed member's process keeps running, alone, until it is
stopped. Prints the members once the change is committed. Needs a token
with admin over "*".`,
	nargs: exactly(1),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			return changeMembers(ctx, e, g, func(c *client.Client) ([]client.ClusterMember, error) {
				return c.RemoveClusterMember(ctx, args[0])
			})
		}
	},
}

// changeMembers makes a membership change on --server and prints the
// members after it.
func changeMembers(ctx context.Context, e *env, g *globals, change func(*client.Client) ([]client.ClusterMember, error)) error {
	c, err := dial(g)
	if err != nil {
		return err
	}
	defer c.Close()
	members, err := change(c)
	if err != nil {
		return explain(err, g.server)
	}
	out := bufio.NewWriter(e.stdout)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tRAFT\tCLIENT")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.ID, m.RaftAddress, m.ClientAddress)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return out.Flush()
}
