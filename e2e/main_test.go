package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	goethesrv "github.com/goethe-log/goethe/server"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/goethe-log/goethe/internal/testutil"
)

// binDir holds the binaries TestMain builds: bin/goethe and bin/goethectl,
// the paths `make build` and `make cli` give them.
var binDir string

// Bounds of the polls that wait for a server.
const (
	startTimeout = 30 * time.Second // a race-enabled binary on a loaded machine
	stopTimeout  = 30 * time.Second
	pollEvery    = 10 * time.Millisecond
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	root, err := os.MkdirTemp("", "goethe-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(root)
	binDir = filepath.Join(root, "bin")
	if err := build(binDir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// build compiles cmd/goethe and cmd/goethectl into dir, with the race
// detector if the tests have it.
func build(dir string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/goethe-log/goethe/cmd/goethe", "github.com/goethe-log/goethe/cmd/goethectl")
	cmd := exec.Command("go", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func goetheBin() string    { return filepath.Join(binDir, "goethe") }
func goethectlBin() string { return filepath.Join(binDir, "goethectl") }

// binEnv is the environment of the binaries: the test's, without GOETHE_*
// variables, and without the race detector's second of sleep at exit.
func binEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOETHE_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return append(env, "GORACE=atexit_sleep_ms=0")
}

// syncBuffer collects output written by one goroutine and read by another.
type syncBuffer = testutil.SyncBuffer

// server is a goethe subprocess.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string      // host:port it listens on
	stderr *syncBuffer // its log, JSON lines
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

// startServer starts goethe on engine in dataDir, on a port the kernel
// picks, and returns once the server answers health checks as SERVING. It
// is killed when the test ends, if it still runs.
func startServer(t *testing.T, engine, dataDir string, extra ...string) *server {
	t.Helper()
	s, deadline := startProcess(t, engine, dataDir, extra...)
	s.waitServing(time.Until(deadline))
	return s
}

// startProcess is startServer without the wait for SERVING: it returns once
// the server logged its listen address, with the deadline of its start.
func startProcess(t *testing.T, engine, dataDir string, extra ...string) (*server, time.Time) {
	t.Helper()
	args := append([]string{"--engine", engine, "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--log-format", "json"}, extra...)
	s := &server{t: t, cmd: exec.Command(goetheBin(), args...), stderr: &syncBuffer{}, exited: make(chan struct{})}
	s.cmd.Env = binEnv()
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	require.NoError(t, s.cmd.Start())
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.kill()
		if strings.Contains(s.stderr.String(), "DATA RACE") {
			t.Errorf("the server reported a data race:\n%s", s.stderr.String())
		}
	})
	deadline := time.Now().Add(startTimeout)
	for s.addr == "" {
		s.addr = s.listenAddr()
		select {
		case <-s.exited:
			t.Fatalf("goethe %s exited: %v\n%s", strings.Join(args, " "), s.err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("goethe did not log its listen address within %s:\n%s", startTimeout, s.stderr.String())
		}
		time.Sleep(pollEvery)
	}
	return s, deadline
}

// listenAddr reads the address from the server's "goethe serving" log
// line, or "" if it has not logged it yet.
func (s *server) listenAddr() string {
	sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
	for sc.Scan() {
		var line struct {
			Msg    string `json:"msg"`
			Listen string `json:"listen"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "goethe serving" && line.Listen != "" {
			return line.Listen
		}
	}
	return ""
}

// waitServing polls the standard gRPC health check of the Goethe service
// until it reports SERVING.
func (s *server) waitServing(timeout time.Duration) {
	s.t.Helper()
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(s.t, err)
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	require.Eventually(s.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "goethe.v1.Goethe"})
		return err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, timeout, pollEvery, "goethe at %s is not serving:\n%s", s.addr, s.stderr.String())
}

// kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *server) kill() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-s.exited
}

// stop ends the server with SIGTERM and requires a clean exit.
func (s *server) stop() {
	s.t.Helper()
	require.NoError(s.t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-s.exited:
		require.NoError(s.t, s.err, "goethe's exit after SIGTERM:\n%s", s.stderr.String())
	case <-time.After(stopTimeout):
		s.t.Fatalf("goethe did not stop within %s of SIGTERM:\n%s", stopTimeout, s.stderr.String())
	}
}

// writeAuthFile writes an --auth-file holding entries to path, readable by
// its owner only (as goethe requires).
func writeAuthFile(t *testing.T, path string, entries ...goethesrv.TokenEntry) {
	t.Helper()
	b, err := json.Marshal(goethesrv.AuthFile{Tokens: entries})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}
