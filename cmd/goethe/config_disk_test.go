package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engine/enginetest"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/server"
	"github.com/goethe-log/goethe/store"
)

func TestMinFreeBytesFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  func(string) (string, bool)
		want byteSize
		err  string
	}{
		{nil, env(), byteSize{}, ""},
		{[]string{"--min-free-bytes", "0"}, env(), byteSize{n: 0, set: true}, ""},
		{[]string{"--min-free-bytes=1048576"}, env(), byteSize{n: 1 << 20, set: true}, ""},
		{[]string{"--min-free-bytes", "64MiB"}, env(), byteSize{n: 64 << 20, set: true}, ""},
		{[]string{"--min-free-bytes", "2 GiB"}, env(), byteSize{n: 2 << 30, set: true}, ""},
		{nil, env("GOETHE_MIN_FREE_BYTES", "512KiB"), byteSize{n: 512 << 10, set: true}, ""},
		{[]string{"--min-free-bytes", "16777215TiB"}, env(), byteSize{n: 16777215 << 40, set: true}, ""}, // the largest in TiB
		{[]string{"--min-free-bytes", "16777216TiB"}, env(), byteSize{}, "min-free-bytes"},               // one past: overflows
		{[]string{"--min-free-bytes", "-1"}, env(), byteSize{}, "min-free-bytes"},
		{[]string{"--min-free-bytes", "1MB"}, env(), byteSize{}, "min-free-bytes"},
		{[]string{"--min-free-bytes", ""}, env(), byteSize{}, "min-free-bytes"},
		{nil, env("GOETHE_MIN_FREE_BYTES", "lots"), byteSize{}, "GOETHE_MIN_FREE_BYTES"},
	} {
		cfg, err := parseConfig(c.args, c.env, &bytes.Buffer{})
		if c.err != "" {
			require.ErrorContains(t, err, c.err, "%v", c.args)
			continue
		}
		require.NoError(t, err, "%v", c.args)
		require.Equal(t, c.want, cfg.disk.minFree, "%v", c.args)
	}
}

func TestDefaultMinFree(t *testing.T) {
	for _, c := range []struct{ size, want uint64 }{
		{0, 0},
		{100 << 20, 1 << 20},         // 1%
		{25600 << 20, 256 << 20},     // 1% is the cap, exactly
		{25600<<20 + 100, 256 << 20}, // past it: capped
		{1 << 40, DefaultMinFreeCap}, // a large volume
		{25600<<20 - 100, 268435455}, // just below the cap: 1%
	} {
		require.Equal(t, c.want, defaultMinFree(c.size), "size %d", c.size)
	}
}

// storeOptions: the default reserve is computed from the volume, a set
// value is taken as is, 0 turns the guard off, and a reserve as large as
// the volume is refused (one byte less is taken).
func TestDiskStoreOptions(t *testing.T) {
	dir := t.TempDir()
	vol, err := statVolume(dir)
	require.NoError(t, err)
	require.Positive(t, vol.size)

	var c diskConfig
	var o store.Options
	got, err := c.storeOptions(&o, "leveldb", dir, dir)
	require.NoError(t, err)
	require.Equal(t, defaultMinFree(vol.size), got)
	require.Equal(t, got, o.MinFreeBytes)
	require.NotNil(t, o.FreeBytes)
	require.NotNil(t, o.Reopen)
	free, err := o.FreeBytes()
	require.NoError(t, err)
	require.Positive(t, free)

	for _, v := range []uint64{0, vol.size - 1} {
		c = diskConfig{minFree: byteSize{n: v, set: true}}
		got, err = c.storeOptions(&o, "leveldb", dir, dir)
		require.NoError(t, err)
		require.Equal(t, v, got)
	}
	c = diskConfig{minFree: byteSize{n: vol.size, set: true}}
	_, err = c.storeOptions(&o, "leveldb", dir, dir)
	require.ErrorContains(t, err, "--min-free-bytes")

	_, err = c.storeOptions(&o, "leveldb", filepath.Join(dir, "missing"), dir)
	require.ErrorContains(t, err, "--data-dir")
}

// BenchmarkStatVolume is the cost of one free-space measurement, which the
// store makes at most once per store.DefaultFreeBytesMaxAge.
func BenchmarkStatVolume(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		if _, err := statVolume(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// helperEnv makes the test binary run goethe itself: see
// TestGoetheProcess.
const helperEnv = "GOETHE_TEST_RUN_GOETHE"

// TestGoetheProcess is not a test: started by startGoethe as a subprocess
// with helperEnv set, it runs goethe with the arguments after "--", prints
// "listening <addr>" on stdout once it serves, and exits with goethe's
// exit code, stopping on SIGTERM.
func TestGoetheProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("runs only as goethe's subprocess")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	code := run(ctx, args, os.LookupEnv, os.Stderr, func(a net.Addr) { fmt.Printf("listening %s\n", a) })
	os.Exit(code)
}

// goetheProcess is goethe run as a real subprocess (the test binary, see
// TestGoetheProcess).
type goetheProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	addr   string // "" if it exited before serving
	code   int
}

// startGoethe runs goethe with args in a subprocess and waits, up to
// bound, until it serves or exits.
func startGoethe(t *testing.T, bound time.Duration, args ...string) *goetheProcess {
	t.Helper()
	p := &goetheProcess{stderr: &syncBuffer{}}
	p.cmd = exec.Command(os.Args[0], append([]string{"-test.run=^TestGoetheProcess$", "--"}, args...)...)
	p.cmd.Env = append(os.Environ(), helperEnv+"=1")
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if ok {
			p.addr = a
			t.Cleanup(func() { p.stop(t) })
			return p
		}
		// stdout closed: the process exited.
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		require.NotEqual(t, 0, p.code, "exited 0 without serving: %v %s", err, p.stderr.String())
		return p
	case <-time.After(bound):
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		t.Fatalf("neither served nor exited within %v: %s", bound, p.stderr.String())
	}
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *goetheProcess) stop(t *testing.T) int {
	if p.cmd.ProcessState != nil {
		return p.cmd.ProcessState.ExitCode()
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		t.Fatal("did not stop on SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

// startOnFullDiskBound is how long goethe may take to start, or to refuse
// to, on a full volume: "at once", with room for a slow, shared machine.
const startOnFullDiskBound = 30 * time.Second

// TestStartOnFullDisk: goethe started, as a real process, on a data folder
// whose volume (a small tmpfs; skipped where one cannot be mounted) is
// full either serves reads — the log whole, Produce refused with
// RESOURCE_EXHAUSTED, health of goethe.v1.Goethe NOT_SERVING — or exits at
// once with one line on stderr that says the volume is full. It never
// hangs nor spins. Once space is freed it serves writes again.
func TestStartOnFullDisk(t *testing.T) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			vol := enginetest.SmallTmpfs(t, enginetest.FullDiskTmpfsSize)
			dir := filepath.Join(vol, "data")
			args := []string{"--engine", name, "--data-dir", dir, "--listen", "127.0.0.1:0", "--min-free-bytes", "0"}

			p := startGoethe(t, startOnFullDiskBound, args...)
			require.NotEmpty(t, p.addr, p.stderr.String())
			c, err := client.Dial(p.addr)
			require.NoError(t, err)
			ctx := context.Background()
			var want []string
			for i := range 20 {
				pl := fmt.Sprintf("event-%d", i)
				_, err := c.Produce(ctx, "t", []client.EventData{{Payload: []byte(pl)}})
				require.NoError(t, err)
				want = append(want, pl)
			}
			require.NoError(t, c.Close())
			require.Equal(t, 0, p.stop(t), p.stderr.String())

			release := enginetest.FillDisk(t, vol)
			p = startGoethe(t, startOnFullDiskBound, args...)
			if p.addr == "" {
				msg := p.stderr.String()
				require.Equal(t, 1, strings.Count(msg, "\n"), "one line: %q", msg)
				require.True(t, strings.HasPrefix(msg, "goethe: "), msg)
				require.Contains(t, msg, "is full", msg)
				t.Logf("%s refused to start on a full volume: %s", name, msg)
			} else {
				t.Logf("%s serves reads on a full volume", name)
				c, err := client.Dial(p.addr)
				require.NoError(t, err)
				defer c.Close()
				var got []string
				for ev, err := range c.Consume(ctx, "t", client.ConsumeOptions{}) {
					require.NoError(t, err)
					got = append(got, string(ev.Payload))
				}
				require.Equal(t, want, got)
				// An engine may have room left in its files (bolt's
				// file grows in steps): write until the volume refuses.
				big := strings.Repeat("x", 4<<10)
				for i := 0; i < 4096 && err == nil; i++ {
					_, err = c.Produce(ctx, "t", []client.EventData{{Payload: []byte(big)}})
				}
				require.ErrorIs(t, err, client.ErrTooLarge)
				requireHealth(t, p.addr, healthpb.HealthCheckResponse_NOT_SERVING)
				require.Equal(t, 0, p.stop(t), p.stderr.String())
			}

			release()
			p = startGoethe(t, startOnFullDiskBound, args...)
			require.NotEmpty(t, p.addr, p.stderr.String())
			c, err = client.Dial(p.addr)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Produce(ctx, "t", []client.EventData{{Payload: []byte("after")}})
			require.NoError(t, err)
			requireHealth(t, p.addr, healthpb.HealthCheckResponse_SERVING)
		})
	}
}

func requireHealth(t *testing.T, addr string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	require.Eventually(t, func() bool {
		res, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: server.ServiceName})
		return err == nil && res.Status == want
	}, 10*time.Second, 5*time.Millisecond, "health of %s is %v", server.ServiceName, want)
}
