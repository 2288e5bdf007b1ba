package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/loadgen"
)

// Cluster systems: three members of one system on 127.0.0.1, each a
// process of its own with its own data folder (see StartCluster3).
const (
	// ClusterNATS is a NATS JetStream cluster of 3 servers, streams with 3
	// replicas, file storage, sync_interval always on every server.
	ClusterNATS = "nats"
	// ClusterGoethe is a Goethe cluster of 3 `goethe` processes (cluster
	// mode: --node-id, --raft-listen, --peers, --peer-clients), --sync=true;
	// an ack means the write is on a majority's Raft log, fsync'd.
	ClusterGoethe = "goethe"
)

// Cluster3Size is the number of members of a cluster.
const Cluster3Size = 3

// Cluster3 is a running 3-member cluster. Its methods are not safe for
// concurrent use.
type Cluster3 struct {
	// System is ClusterNATS or ClusterGoethe; Engine is Goethe's engine.
	System, Engine string
	// Names are the members' names (n1, n2, n3): NATS server names, Goethe
	// node ids.
	Names []string
	// Addrs are the members' client addresses (host:port).
	Addrs []string

	bin     string
	opts    []ServerOptions
	args    []func(port int) ([]string, error)
	members []*Server // nil: killed and not restarted
}

// StartCluster3 starts a cluster of system (ClusterNATS or ClusterGoethe,
// on engine) with bin, the members' data folders under dir, and waits until
// it takes writes: a JetStream meta leader, or a Raft leader every member
// knows. On error every member started is stopped.
func StartCluster3(ctx context.Context, system, engine, bin, dir, pidFile string) (*Cluster3, error) {
	c := &Cluster3{System: system, Engine: engine, bin: bin}
	ports, err := freePorts(2 * Cluster3Size)
	if err != nil {
		return nil, err
	}
	client, peer := ports[:Cluster3Size], ports[Cluster3Size:]
	hostPort := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	var peers, clients []string
	for i := range Cluster3Size {
		name := fmt.Sprintf("n%d", i+1)
		c.Names = append(c.Names, name)
		c.Addrs = append(c.Addrs, hostPort(client[i]))
		peers = append(peers, name+"="+hostPort(peer[i]))
		clients = append(clients, name+"="+hostPort(client[i]))
	}
	for i := range Cluster3Size {
		o := ServerOptions{Bin: bin, Dir: filepath.Join(dir, c.Names[i]), Port: client[i], Fsync: true, Engine: engine, PIDFile: pidFile}
		var args func(int) ([]string, error)
		switch system {
		case ClusterNATS:
			conf := natsClusterConfig(c.Names[i], client[i], peer, i, filepath.Join(o.Dir, "jetstream"))
			args = func(int) ([]string, error) {
				path := filepath.Join(o.Dir, "nats.conf")
				if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
					return nil, err
				}
				return []string{"-c", path}, nil
			}
		case ClusterGoethe:
			a := []string{
				"--engine", engine, "--data-dir", filepath.Join(o.Dir, "data"), "--listen", c.Addrs[i], "--sync=true",
				"--node-id", c.Names[i], "--raft-listen", hostPort(peer[i]),
				"--peers", strings.Join(peers, ","), "--peer-clients", strings.Join(clients, ","),
			}
			args = func(int) ([]string, error) { return a, nil }
		default:
			return nil, fmt.Errorf("peers: unknown cluster system %q", system)
		}
		c.opts = append(c.opts, o)
		c.args = append(c.args, args)
	}
	c.members = make([]*Server, Cluster3Size)
	for i := range Cluster3Size {
		if err := c.startMember(ctx, i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.WaitHealthy(ctx, 60*time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// natsClusterConfig is the configuration of JetStream cluster member i:
// clients on 127.0.0.1:port, routes between the members on routePorts,
// every write fsync'd before its ack (sync_interval: always).
func natsClusterConfig(name string, port int, routePorts []int, i int, storeDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\nlisten: \"127.0.0.1:%d\"\n", name, port)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  sync_interval: always\n}\n", storeDir)
	fmt.Fprintf(&b, "cluster {\n  name: \"bench\"\n  listen: \"127.0.0.1:%d\"\n  no_advertise: true\n  routes: [\n", routePorts[i])
	for j, p := range routePorts {
		if j != i {
			fmt.Fprintf(&b, "    \"nats-route://127.0.0.1:%d\"\n", p)
		}
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func (c *Cluster3) startMember(ctx context.Context, i int) error {
	s, err := start(ctx, c.opts[i], c.args[i])
	if err != nil {
		return fmt.Errorf("peers: cluster member %s: %w", c.Names[i], err)
	}
	c.members[i] = s
	c.opts[i].Restart = true // the next start of this member keeps its data
	return nil
}

// Stop stops every running member (SIGTERM, then SIGKILL) and returns the
// first error.
func (c *Cluster3) Stop() error {
	var errs []error
	for i, s := range c.members {
		if s != nil {
			errs = append(errs, s.Stop())
			c.members[i] = nil
		}
	}
	return errors.Join(errs...)
}

// Kill ends member i with SIGKILL.
func (c *Cluster3) Kill(i int) {
	if s := c.members[i]; s != nil {
		s.Kill()
		c.members[i] = nil
	}
}

// Restart starts member i again on its data folder.
func (c *Cluster3) Restart(ctx context.Context, i int) error {
	if c.members[i] != nil {
		return fmt.Errorf("peers: cluster member %s is running", c.Names[i])
	}
	return c.startMember(ctx, i)
}

// Members returns the running members' servers (nil for a killed one).
func (c *Cluster3) Members() []*Server { return c.members }

// Args is member 0's command line, as started.
func (c *Cluster3) Args() []string {
	for _, s := range c.members {
		if s != nil {
			return s.Args
		}
	}
	return nil
}

// Opener returns the Opener of load generator targets on member i: for
// NATS, a connection to it whose streams have 3 replicas; for Goethe, the
// client shape shape on it.
func (c *Cluster3) Opener(i int, shape string) (loadgen.Opener, error) {
	if c.System == ClusterNATS {
		return NATSReplicasOpener("nats://"+c.Addrs[i], Cluster3Size), nil
	}
	return GoetheOpener(c.Addrs[i], shape, 1)
}

// EnsureTopic creates topic's stream (NATS, 3 replicas) if it does not
// exist; Goethe creates topics on first write, so it does nothing there.
func (c *Cluster3) EnsureTopic(ctx context.Context, topic string) error {
	if c.System != ClusterNATS {
		return nil
	}
	return c.withJS(ctx, c.running(), func(ctx context.Context, js jetstream.JetStream) error {
		_, err := js.CreateOrUpdateStream(ctx, natsStreamConfig(topic, Cluster3Size))
		return err
	})
}

// Leader returns the index of the member that leads writes to topic: the
// Raft leader (Goethe), the leader of topic's stream (NATS).
func (c *Cluster3) Leader(ctx context.Context, topic string) (int, error) {
	name := ""
	via := c.running()
	if c.System == ClusterNATS {
		err := c.withJS(ctx, via, func(ctx context.Context, js jetstream.JetStream) error {
			stream, _ := natsNames(topic)
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return err
			}
			info, err := s.Info(ctx)
			if err != nil {
				return err
			}
			if info.Cluster == nil || info.Cluster.Leader == "" {
				return errors.New("no stream leader")
			}
			name = info.Cluster.Leader
			return nil
		})
		if err != nil {
			return -1, err
		}
	} else {
		st, err := c.goetheStatus(ctx, via)
		if err != nil {
			return -1, err
		}
		if st.LeaderID == "" {
			return -1, errors.New("peers: no leader known")
		}
		name = st.LeaderID
	}
	for i, n := range c.Names {
		if n == name {
			return i, nil
		}
	}
	return -1, fmt.Errorf("peers: unknown leader %q", name)
}

// WaitHealthy waits until every running member takes part: for Goethe,
// every running member knows the leader and knows committed what the
// leader had committed; for NATS, JetStream answers on every
// running member and every stream's replicas are current.
func (c *Cluster3) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		if c.System == ClusterNATS {
			for _, i := range c.running() {
				if err := c.withJS(ctx, []int{i}, func(ctx context.Context, js jetstream.JetStream) error {
					if _, err := js.AccountInfo(ctx); err != nil {
						return err
					}
					names := js.StreamNames(ctx)
					for name := range names.Name() {
						s, err := js.Stream(ctx, name)
						if err != nil {
							return err
						}
						info, err := s.Info(ctx)
						if err != nil {
							return err
						}
						if info.Cluster == nil || info.Cluster.Leader == "" {
							return fmt.Errorf("stream %s: no leader", name)
						}
						for _, r := range info.Cluster.Replicas {
							if !r.Current {
								return fmt.Errorf("stream %s: replica %s not current", name, r.Name)
							}
						}
					}
					return names.Err()
				}); err != nil {
					return err
				}
			}
			return nil
		}
		var commit uint64
		for _, i := range c.running() {
			st, err := c.goetheStatus(ctx, []int{i})
			if err != nil {
				return err
			}
			if st.LeaderID == "" {
				return fmt.Errorf("%s knows no leader", c.Names[i])
			}
			if st.State == "Leader" {
				commit = st.CommitIndex
			}
		}
		for _, i := range c.running() {
			st, err := c.goetheStatus(ctx, []int{i})
			if err != nil {
				return err
			}
			// (Its applied index counts writes only, not Raft's own entries.)
			if st.CommitIndex < commit {
				return fmt.Errorf("%s knows entries up to %d committed < %d", c.Names[i], st.CommitIndex, commit)
			}
		}
		return nil
	})
}

// WaitTopic waits until member i's reads see count events in topic
// (Goethe; NATS's stream replicas are waited for by WaitHealthy).
func (c *Cluster3) WaitTopic(ctx context.Context, i int, topic string, count uint64) error {
	if c.System != ClusterGoethe {
		return nil
	}
	cl, err := client.Dial(c.Addrs[i])
	if err != nil {
		return err
	}
	defer cl.Close()
	return poll(ctx, 60*time.Second, func() error {
		info, err := cl.Topic(ctx, topic)
		if err != nil {
			return err
		}
		if info.LastSeq < count {
			return fmt.Errorf("%s holds %d of %d events of %s", c.Names[i], info.LastSeq, count, topic)
		}
		return nil
	})
}

// running returns the indexes of the running members.
func (c *Cluster3) running() []int {
	var out []int
	for i, s := range c.members {
		if s != nil {
			out = append(out, i)
		}
	}
	return out
}

// goetheStatus asks the first member of via that answers for its view.
func (c *Cluster3) goetheStatus(ctx context.Context, via []int) (client.ClusterStatus, error) {
	var errs []error
	for _, i := range via {
		st, err := func() (client.ClusterStatus, error) {
			cl, err := client.Dial(c.Addrs[i])
			if err != nil {
				return client.ClusterStatus{}, err
			}
			defer cl.Close()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return cl.ClusterStatus(cctx)
		}()
		if err == nil {
			return st, nil
		}
		errs = append(errs, err)
	}
	return client.ClusterStatus{}, fmt.Errorf("peers: cluster status: %w", errors.Join(errs...))
}

// withJS runs f with a JetStream context on the first member of via that
// connects, and returns f's error.
func (c *Cluster3) withJS(ctx context.Context, via []int, f func(context.Context, jetstream.JetStream) error) error {
	var errs []error
	for _, i := range via {
		nc, err := nats.Connect("nats://"+c.Addrs[i], nats.Name("goethe-bench-admin"), nats.MaxReconnects(0))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		js, err := jetstream.New(nc)
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = f(cctx, js)
			cancel()
		}
		nc.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("peers: jetstream: %w", errors.Join(errs...))
}

// poll calls f until it returns nil, ctx ends or timeout passes (then it
// returns f's last error). It polls a system it does not control: these
// processes offer no event to wait on.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("peers: not ready after %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct loopback ports free a moment ago: all are
// held open before any is closed.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("peers: free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
