package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/store"
)

// raftDir is the folder of the Raft log and snapshots in --data-dir,
// beside the engine's folder.
const raftDir = "raft"

// clusterConfig holds the flags of cluster mode. Its zero value is single-
// node mode: no --node-id, and nothing else of the group set.
//
// The initial members are static, etcd-style: every initial member is
// started with the same --peers (Raft addresses) and --peer-clients (gRPC
// addresses of goethe.v1.Goethe), and the group is bootstrapped with them
// once, by each member whose Raft folder is empty. Each member's client
// address is recorded with its Raft address in the Raft configuration
// (cluster.MemberAddr), so a follower finds the leader's client address,
// where it forwards writes, from the configuration: --peer-clients is
// needed at bootstrap only (and kept as a fallback).
//
// Later members join: a member started with --join (and an empty data
// folder) does not bootstrap, whatever --peers says, and waits until the
// leader adds it (goethectl cluster add ID RAFT_ADDR CLIENT_ADDR, which
// records its client address); it then catches up from the leader's log or
// a snapshot. A member started with no --peers joins the same way. A
// member's own client address is its entry in --peer-clients, else
// --listen (which must then name a host others can dial).
type clusterConfig struct {
	NodeID      string
	RaftListen  string
	Peers       peerList // id=raft address
	PeerClients peerList // id=client address
	Join        bool
	Security    clusterSecurity // config_cluster_security.go
}

// register adds the group's flags to fs.
func (c *clusterConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.NodeID, "node-id", "", "cluster mode: this member's Raft server id (e.g. n1); empty: single-node mode")
	fs.StringVar(&c.RaftListen, "raft-listen", "", "cluster mode: host:port of the Raft transport (e.g. 127.0.0.1:7521)")
	fs.Var(&c.Peers, "peers", "cluster mode: the initial members, id=raft-address,… (this one included, the same list on every\n"+
		"member), bootstrapped once on first start; empty: join an existing cluster when its leader adds this member")
	fs.BoolVar(&c.Join, "join", false, "cluster mode: do not bootstrap; wait until the cluster's leader adds this member\n"+
		"(goethectl cluster add), then catch up from it; for a member added to a running cluster")
	fs.Var(&c.PeerClients, "peer-clients", "cluster mode: each member's gRPC address, id=host:port,…; a follower forwards writes to the\n"+
		"leader's (a member missing here cannot be forwarded to: writes on followers then fail UNAVAILABLE, NOT_LEADER)")
	c.Security.register(fs)
}

// enabled reports whether the flags ask for cluster mode.
func (c *clusterConfig) enabled() bool { return c.NodeID != "" }

// validate reports the first flag of the group with a bad value.
func (c *clusterConfig) validate() error {
	if !c.enabled() {
		if c.RaftListen != "" || len(c.Peers.ids) > 0 || len(c.PeerClients.ids) > 0 || c.Join {
			return errors.New("--raft-listen, --peers, --peer-clients and --join need --node-id (cluster mode)")
		}
		return nil
	}
	switch {
	case c.RaftListen == "":
		return errors.New("--node-id needs --raft-listen")
	case c.NodeID == "" || strings.ContainsAny(c.NodeID, "|, ="):
		return fmt.Errorf("--node-id %q: an id holds no '|', ',', '=' or space", c.NodeID)
	case !c.Join && len(c.Peers.ids) > 0 && c.Peers.addrs[c.NodeID] == "":
		return fmt.Errorf("--peers must name this member (--node-id %s)", c.NodeID)
	}
	for _, id := range c.Peers.ids {
		if c.Join {
			break // not bootstrapped with them
		}
		if id != c.NodeID && c.PeerClients.addrs[id] == "" {
			return fmt.Errorf("--peer-clients must give the gRPC address of every other member of --peers (%s is missing)", id)
		}
	}
	return nil
}

// storeOptions sets what cluster mode needs of the store: bbolt's applies
// are synced (an unsynced bbolt commit can be torn by a machine crash; see
// store.ApplyCommitted), goleveldb's and pebble's are not (the Raft log is
// synced, and they replay from it).
func (c *clusterConfig) storeOptions(o *store.Options, engineName string) {
	o.SyncApplied = engineName == "bolt"
	o.RetentionByLog = true // the leader proposes the trims (cluster.Log)
}

// checkMode refuses a data folder that the other mode wrote: a member's
// store written by single-node commits would differ from the other
// members' (its events are in no Raft log), and a single-node server on a
// member's folder would make it differ. st is the folder's open store.
func (c *clusterConfig) checkMode(dataDir string, st *store.Store) error {
	_, err := os.Stat(filepath.Join(dataDir, raftDir))
	hasRaft := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("data folder %s: %w", dataDir, err)
	}
	switch {
	case !c.enabled() && hasRaft:
		return fmt.Errorf("data folder %s belongs to a cluster member (it has a %s folder): start it with its --node-id, --raft-listen and --peers",
			dataDir, raftDir)
	case c.enabled() && !hasRaft && st.AppliedIndex() == 0:
		topics, _, err := st.Topics("", 1)
		if err != nil {
			return fmt.Errorf("data folder %s: %w", dataDir, err)
		}
		if len(topics) > 0 {
			return fmt.Errorf("data folder %s holds a single-node log: a cluster member starts from an empty --data-dir", dataDir)
		}
	}
	return nil
}

// clientAddr is this member's client address, as the Raft configuration
// records it: its --peer-clients entry, else listen.
func (c *clusterConfig) clientAddr(listen string) string {
	if a := c.PeerClients.addrs[c.NodeID]; a != "" {
		return a
	}
	return listen
}

// open starts the member on st, with its Raft state in dataDir/raft, and
// returns the Log that the server serves; listen is the server's --listen.
// Raft's logs of level warning and above go to log.
func (c *clusterConfig) open(dataDir, listen string, st *store.Store, log *slog.Logger, sec *securityConfig) (*cluster.Node, *cluster.Log, error) {
	memberTLS, cert, err := c.Security.memberTLS()
	if err != nil {
		return nil, nil, err
	}
	dial, err := c.Security.forwardDialOptions(sec, cert)
	if err != nil {
		return nil, nil, err
	}
	cfg := cluster.DefaultConfig()
	cfg.TLS = memberTLS
	cfg.ID = c.NodeID
	cfg.Dir = filepath.Join(dataDir, raftDir)
	cfg.Bind = c.RaftListen
	cfg.ClientAddr = c.clientAddr(listen)
	cfg.Store = st
	for _, id := range c.Peers.ids {
		if c.Join {
			break // joins: no bootstrap
		}
		client := c.PeerClients.addrs[id]
		if id == c.NodeID {
			client = cfg.ClientAddr
		}
		cfg.Peers = append(cfg.Peers, cluster.Peer{ID: id, Addr: c.Peers.addrs[id], ClientAddr: client})
	}
	cfg.Logger = hclog.FromStandardLogger(slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn})
	node, err := cluster.Open(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("--node-id %s: %w", c.NodeID, err)
	}
	l, err := cluster.NewLog(cluster.LogConfig{Node: node, Store: st, ClientAddrs: c.PeerClients.addrs, DialOptions: dial})
	if err != nil {
		_ = node.Close()
		return nil, nil, err
	}
	return node, l, nil
}

// peerList is a flag of id=host:port pairs separated by commas, ids in
// the order given, each once.
type peerList struct {
	ids   []string
	addrs map[string]string
}

func (p *peerList) String() string {
	if p == nil {
		return ""
	}
	parts := make([]string, len(p.ids))
	for i, id := range p.ids {
		parts[i] = id + "=" + p.addrs[id]
	}
	return strings.Join(parts, ",")
}

// values are the addresses, in the order given.
func (p *peerList) values() []string {
	out := make([]string, len(p.ids))
	for i, id := range p.ids {
		out[i] = p.addrs[id]
	}
	return out
}

func (p *peerList) Set(v string) error {
	*p = peerList{}
	if v == "" {
		return nil
	}
	p.addrs = map[string]string{}
	for part := range strings.SplitSeq(v, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok || id == "" || addr == "":
			return fmt.Errorf("%q: want id=host:port", part)
		case p.addrs[id] != "":
			return fmt.Errorf("%q: id %s given twice", part, id)
		}
		p.ids = append(p.ids, id)
		p.addrs[id] = addr
	}
	return nil
}
