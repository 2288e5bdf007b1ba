package peers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server is a system under test running as a child process that listens on
// 127.0.0.1 only, with its own fresh data folder. Stop ends it by its PID.
type Server struct {
	// Addr is the host:port clients dial.
	Addr string
	// Dir is the server's data folder; its log is Dir/server.log.
	Dir string
	// Args is the command line it was started with.
	Args []string

	cmd     *exec.Cmd
	log     *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// ServerOptions say how to start a server.
type ServerOptions struct {
	// Bin is the server binary (a path, or a name looked up in PATH).
	Bin string
	// Dir is the data folder: created fresh, and must not exist yet or be
	// empty.
	Dir string
	// Port is the loopback port; 0 picks a free one.
	Port int
	// Fsync asks for an fsync before every acknowledgement (JetStream
	// sync_interval always, Redis appendfsync always, Goethe --sync=true);
	// false is the system's default durability (JetStream's periodic sync,
	// Redis appendfsync everysec, Goethe --sync=false).
	Fsync bool
	// Engine is Goethe's storage engine (leveldb, pebble, bolt).
	Engine string
	// PIDFile, when set, gets the child's PID appended to it as a line, so
	// that a script's trap can end it if this process dies first.
	PIDFile string
	// Restart says Dir holds the data of an earlier start of the same
	// server (a cluster member restarted after a kill): it is kept, and
	// the log is appended to.
	Restart bool
}

// NATSConfig returns the nats-server configuration file of a JetStream
// server on 127.0.0.1:port storing in storeDir; with fsync, every write is
// fsync'd before its ack (sync_interval: always), otherwise the server's
// default applies (a periodic sync, every 2 minutes).
func NATSConfig(port int, storeDir string, fsync bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: \"127.0.0.1:%d\"\n", port)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n", storeDir)
	if fsync {
		b.WriteString("  sync_interval: always\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// StartNATS starts nats-server with JetStream (see NATSConfig).
func StartNATS(ctx context.Context, o ServerOptions) (*Server, error) {
	return start(ctx, o, func(port int) ([]string, error) {
		conf := filepath.Join(o.Dir, "nats.conf")
		text := NATSConfig(port, filepath.Join(o.Dir, "jetstream"), o.Fsync)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, err
		}
		return []string{"-c", conf}, nil
	})
}

// StartRedis starts redis-server with an append-only file (appendfsync
// always with Fsync, everysec otherwise) and no RDB snapshots.
func StartRedis(ctx context.Context, o ServerOptions) (*Server, error) {
	return start(ctx, o, func(port int) ([]string, error) {
		policy := "everysec"
		if o.Fsync {
			policy = "always"
		}
		return []string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
			"--dir", o.Dir, "--appendonly", "yes", "--appendfsync", policy,
			"--save", "", "--daemonize", "no", "--logfile", "",
		}, nil
	})
}

// StartGoethe starts a goethe server binary on o.Engine with --sync=o.Fsync.
func StartGoethe(ctx context.Context, o ServerOptions) (*Server, error) {
	return start(ctx, o, func(port int) ([]string, error) {
		return []string{
			"--engine", o.Engine, "--data-dir", filepath.Join(o.Dir, "data"),
			"--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			"--sync=" + strconv.FormatBool(o.Fsync),
		}, nil
	})
}

// start runs o.Bin with the arguments args returns for the port, and waits
// until the port accepts connections.
func start(ctx context.Context, o ServerOptions, args func(port int) ([]string, error)) (*Server, error) {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("peers: data folder: %w", err)
	}
	if entries, err := os.ReadDir(o.Dir); !o.Restart && (err != nil || len(entries) > 0) {
		return nil, fmt.Errorf("peers: data folder %s is not fresh", o.Dir)
	}
	port := o.Port
	if port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	a, err := args(port)
	if err != nil {
		return nil, fmt.Errorf("peers: %s: %w", o.Bin, err)
	}
	log, err := os.OpenFile(filepath.Join(o.Dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("peers: server log: %w", err)
	}
	cmd := exec.Command(o.Bin, a...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = o.Dir
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("peers: start %s: %w", o.Bin, err)
	}
	s := &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:  o.Dir, Args: append([]string{o.Bin}, a...),
		cmd: cmd, log: log, done: make(chan struct{}),
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if o.PIDFile != "" {
		if err := appendLine(o.PIDFile, strconv.Itoa(cmd.Process.Pid)); err != nil {
			s.Stop()
			return nil, err
		}
	}
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls until the server's port accepts a connection, the
// process exits, or the timeout passes.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("peers: %s exited at start (%v): %s", s.Args[0], s.waitErr, s.LogTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("peers: %s not listening on %s after %v: %s", s.Args[0], s.Addr, timeout, s.LogTail())
		}
	}
}

// PID is the server process's id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop sends the server SIGTERM, waits up to 20 s for it to exit, then
// kills it. It returns an error if the server had to be killed or had
// already exited on its own. Stop is idempotent.
func (s *Server) Stop() error {
	defer s.log.Close()
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.cmd.Process.Kill()
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("peers: %s (pid %d) ignored SIGTERM for 20s; killed", s.Args[0], s.PID())
	}
}

// Kill ends the server with SIGKILL (no shutdown of its own) and waits
// until it has exited.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.log.Close()
}

// LogTail returns the last lines of the server's log, for error messages.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	b = bytes.TrimSpace(b)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return string(b)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("peers: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("peers: pid file: %w", err)
	}
	_, err = fmt.Fprintln(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
