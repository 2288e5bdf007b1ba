package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testutil"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, env(), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, config{Engine: "leveldb", DataDir: "./goethe-data", Listen: "127.0.0.1:7420", Sync: true,
		MaxEventBytes: 1 << 20, MaxBatchEvents: 10_000, LogFormat: "text", dedupe: dedupeConfig{Window: 2 * time.Minute}}, c)
}

func TestParseConfigEnvAndFlags(t *testing.T) {
	e := env("GOETHE_ENGINE", "pebble", "GOETHE_DATA_DIR", "/env/dir", "GOETHE_LISTEN", "127.0.0.1:1",
		"GOETHE_SYNC", "false", "GOETHE_MAX_EVENT_BYTES", "2048", "GOETHE_MAX_BATCH_EVENTS", "7", "GOETHE_LOG_FORMAT", "json",
		"GOETHE_DEDUPE_WINDOW", "30s")
	c, err := parseConfig(nil, e, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, config{Engine: "pebble", DataDir: "/env/dir", Listen: "127.0.0.1:1", Sync: false,
		MaxEventBytes: 2048, MaxBatchEvents: 7, LogFormat: "json", dedupe: dedupeConfig{Window: 30 * time.Second}}, c, "the environment sets every flag")

	c, err = parseConfig([]string{"--engine", "bolt", "--sync", "--data-dir=/flag/dir", "-max-batch-events", "9", "--dedupe-window", "0"}, e, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, config{Engine: "bolt", DataDir: "/flag/dir", Listen: "127.0.0.1:1", Sync: true,
		MaxEventBytes: 2048, MaxBatchEvents: 9, LogFormat: "json"}, c, "flags win over the environment")
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		args []string
		env  func(string) (string, bool)
		want string
	}{
		{[]string{"--engine", "rocksdb"}, env(), `--engine "rocksdb": unknown engine (valid: leveldb, pebble, bolt)`},
		{nil, env("GOETHE_ENGINE", "LevelDB"), `--engine "LevelDB": unknown engine`},
		{[]string{"--sync=maybe"}, env(), "-sync"},
		{nil, env("GOETHE_SYNC", "maybe"), `GOETHE_SYNC="maybe": invalid value for --sync`},
		{nil, env("GOETHE_MAX_EVENT_BYTES", "1MiB"), "GOETHE_MAX_EVENT_BYTES"},
		{[]string{"--max-event-bytes", "0"}, env(), "--max-event-bytes 0: must be positive"},
		{[]string{"--max-batch-events", "-1"}, env(), "--max-batch-events -1: must be positive"},
		{[]string{"--log-format", "xml"}, env(), `--log-format "xml": must be text or json`},
		{[]string{"--data-dir", ""}, env(), "--data-dir: must not be empty"},
		{[]string{"--listen="}, env(), "--listen: must not be empty"},
		{[]string{"--bogus"}, env(), "-bogus"},
		{[]string{"--dedupe-window", "-1s"}, env(), "--dedupe-window -1s: must not be negative"},
		{[]string{"serve"}, env(), `unexpected argument "serve"`},
	}
	for _, c := range cases {
		var out bytes.Buffer
		_, err := parseConfig(c.args, c.env, &out)
		require.ErrorContains(t, err, c.want, "%v", c.args)
		require.Empty(t, out.String(), "errors are returned, not printed")
	}
	var out bytes.Buffer
	_, err := parseConfig([]string{"-h"}, env(), &out)
	require.ErrorIs(t, err, errHelp)
	for _, f := range []string{"-engine", "-data-dir", "-listen", "-sync", "-max-event-bytes", "-max-batch-events", "-log-format", "-metrics-listen", "GOETHE_", "lose acknowledged events"} {
		require.Contains(t, out.String(), f)
	}
}

func TestPrepareDataDir(t *testing.T) {
	root := t.TempDir()

	// A new folder, nested, gets a marker and an engine folder.
	dir := filepath.Join(root, "a", "b")
	edir, _, err := prepareDataDir(dir, "pebble")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "pebble"), edir)
	b, err := os.ReadFile(filepath.Join(dir, "ENGINE"))
	require.NoError(t, err)
	require.Equal(t, "pebble\n", string(b))

	// The same engine opens it again; another is refused, naming both.
	_, _, err = prepareDataDir(dir, "pebble")
	require.NoError(t, err)
	_, _, err = prepareDataDir(dir, "bolt")
	require.EqualError(t, err, "data folder "+dir+" was made by engine pebble, not bolt: start with --engine pebble, or use another --data-dir")

	// An existing empty folder is fine, a leftover temp marker too.
	empty := filepath.Join(root, "empty")
	require.NoError(t, os.Mkdir(empty, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(empty, "ENGINE.tmp"), []byte("lev"), 0o644))
	_, _, err = prepareDataDir(empty, "bolt")
	require.NoError(t, err)

	// A folder with other files is not a data folder.
	other := filepath.Join(root, "other")
	require.NoError(t, os.Mkdir(other, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(other, "notes.txt"), nil, 0o644))
	_, _, err = prepareDataDir(other, "leveldb")
	require.ErrorContains(t, err, "is not empty and has no ENGINE file")

	// A marker naming no engine, a file in the way.
	bad := filepath.Join(root, "bad")
	require.NoError(t, os.Mkdir(bad, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bad, "ENGINE"), []byte("rocksdb\n"), 0o644))
	_, _, err = prepareDataDir(bad, "leveldb")
	require.ErrorContains(t, err, `names unknown engine "rocksdb"`)
	file := filepath.Join(root, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, _, err = prepareDataDir(file, "leveldb")
	require.ErrorContains(t, err, "not a directory")
}

// instance runs the program in this process until its context is cancelled.
type instance struct {
	addr   string
	cancel context.CancelFunc
	done   chan int
	stderr *syncBuffer
}

// syncBuffer collects output written by one goroutine and read by another.
type syncBuffer = testutil.SyncBuffer

func launch(t *testing.T, args ...string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cancel: cancel, done: make(chan int, 1), stderr: &syncBuffer{}}
	addrs := make(chan string, 1)
	go func() {
		in.done <- run(ctx, args, env(), in.stderr, func(a net.Addr) { addrs <- a.String() })
	}()
	select {
	case in.addr = <-addrs:
	case code := <-in.done:
		cancel()
		t.Fatalf("exited with %d: %s", code, in.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("did not start")
	}
	t.Cleanup(func() { in.stop(t) })
	return in
}

// stop cancels the instance, as SIGTERM does, and returns its exit code.
func (in *instance) stop(t *testing.T) int {
	in.cancel()
	select {
	case code := <-in.done:
		in.done <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop")
	}
	return -1
}

// runFails runs the program and requires it to exit non-zero with one line
// on stderr containing want.
func runFails(t *testing.T, want string, args ...string) {
	t.Helper()
	var stderr bytes.Buffer
	code := run(context.Background(), args, env(), &stderr, func(net.Addr) { t.Error("started") })
	require.NotZero(t, code)
	require.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
	require.True(t, strings.HasPrefix(stderr.String(), "goethe: "), stderr.String())
	require.Contains(t, stderr.String(), want)
}

func TestServeEveryEngine(t *testing.T) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in := launch(t, "--engine", name, "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-format", "json")
			c, err := client.Dial(in.addr)
			require.NoError(t, err)
			defer c.Close()
			ctx := context.Background()
			res, err := c.Produce(ctx, "t", []client.EventData{{Payload: []byte("hello")}})
			require.NoError(t, err)

			// A follow stream ends cleanly when the server stops.
			sub, err := c.Subscribe(ctx, "t", client.ConsumeOptions{From: client.End(), Follow: true})
			require.NoError(t, err)
			require.Equal(t, 0, in.stop(t))
			_, err = sub.Next()
			require.ErrorIs(t, err, client.ErrUnavailable)

			// One JSON line at start names engine, folder, address, sync.
			lines := strings.Split(strings.TrimSpace(in.stderr.String()), "\n")
			var start map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &start))
			require.Equal(t, "goethe serving", start["msg"])
			require.Equal(t, name, start["engine"])
			require.Equal(t, dir, start["data_dir"])
			require.Equal(t, in.addr, start["listen"])
			require.Equal(t, true, start["sync"])

			// Restart on the same folder: the event is there.
			in = launch(t, "--engine", name, "--data-dir", dir, "--listen", "127.0.0.1:0", "--sync=false")
			require.Contains(t, in.stderr.String(), "sync=false")
			c2, err := client.Dial(in.addr)
			require.NoError(t, err)
			defer c2.Close()
			var got []client.Event
			for ev, err := range c2.Consume(ctx, "t", client.ConsumeOptions{}) {
				require.NoError(t, err)
				got = append(got, ev)
			}
			require.Len(t, got, 1)
			require.Equal(t, res.FirstID, got[0].ID)

			// Another engine on this folder is refused, naming both.
			other := engines.Names[0]
			if other == name {
				other = engines.Names[1]
			}
			runFails(t, "was made by engine "+name+", not "+other, "--engine", other, "--data-dir", dir, "--listen", "127.0.0.1:0")
			// A second server on the same folder is refused.
			runFails(t, "is in use by another goethe process", "--engine", name, "--data-dir", dir, "--listen", "127.0.0.1:0")
		})
	}
}

func TestStartFailures(t *testing.T) {
	root := t.TempDir()
	runFails(t, `unknown engine (valid: leveldb, pebble, bolt)`, "--engine", "rocksdb")
	file := filepath.Join(root, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	runFails(t, "data folder "+file, "--data-dir", file)
	runFails(t, "not a goethe data folder", "--data-dir", filepath.Dir(file))

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	dir := filepath.Join(root, "busy")
	runFails(t, "--listen "+busy.Addr().String()+": bind: address already in use", "--data-dir", dir, "--listen", busy.Addr().String())
	// The failed start left the folder usable.
	in := launch(t, "--data-dir", dir, "--listen", "127.0.0.1:0")
	require.Equal(t, 0, in.stop(t))

	var stderr bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"--log-format=xml"}, env(), &stderr, nil))
	require.Equal(t, 0, run(context.Background(), []string{"-h"}, env(), &stderr, nil))
}

// A folder that has held a log never opens as an empty one: when its
// engine's files are gone (or its engine opens empty), the server refuses
// to start instead of starting a new log where topics would restart at
// seq 1. A folder whose first start never got as far as the store opens.
func TestEngineOpenedEmptyIsRefused(t *testing.T) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in := launch(t, "--engine", name, "--data-dir", dir, "--listen", "127.0.0.1:0")
			require.Equal(t, 0, in.stop(t))
			marker, err := os.ReadFile(filepath.Join(dir, "ENGINE"))
			require.NoError(t, err)
			require.Equal(t, name+"\ninitialized\n", string(marker))

			require.NoError(t, os.RemoveAll(filepath.Join(dir, name)))
			runFails(t, "its engine opened with no format record", "--engine", name, "--data-dir", dir, "--listen", "127.0.0.1:0")

			// An old marker (or one written just before a crash) has no
			// second line: the engine may be empty, and the store starts.
			fresh := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(fresh, "ENGINE"), []byte(name+"\n"), 0o644))
			in = launch(t, "--engine", name, "--data-dir", fresh, "--listen", "127.0.0.1:0")
			require.Equal(t, 0, in.stop(t))
		})
	}
}
