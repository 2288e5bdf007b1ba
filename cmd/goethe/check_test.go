package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/store"
)

// dataFolder makes a data folder of engine name as goethe does, with topic
// "orders" of three events, and returns its path.
func dataFolder(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	engineDir, initialized, err := prepareDataDir(dir, name)
	require.NoError(t, err)
	require.False(t, initialized)
	e, err := engines.Open(name, engineDir)
	require.NoError(t, err)
	s, err := store.Open(e, store.Options{})
	require.NoError(t, err)
	_, err = s.Append(context.Background(), "orders", []store.Event{{Payload: []byte("a")}, {Payload: []byte("b")}, {Payload: []byte("c")}}, store.ExpectAny)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, markInitialized(dir, name))
	return dir
}

func runCheckArgs(args ...string) (status int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	status = runCheck(args, env(), &out, &errOut)
	return status, out.String(), errOut.String()
}

// TestCheckCommand: exit status 0 and a report on a clean folder, 1 and the
// problem on a damaged one, 2 and a clear message on a folder in use.
func TestCheckCommand(t *testing.T) {
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := dataFolder(t, name)

			status, out, errOut := runCheckArgs("--data-dir", dir)
			require.Equal(t, checkClean, status, "%s%s", out, errOut)
			require.Empty(t, errOut)
			require.Contains(t, out, "engine "+name)
			require.Regexp(t, `orders\s+3\s+1\s+3\s+\d+`, out, "a line per topic: events, first and last seq, bytes")
			require.Contains(t, out, "CLEAN: 1 topics, 3 events")

			status, out, _ = runCheckArgs("--data-dir", dir, "--engine", name, "--json")
			require.Equal(t, checkClean, status)
			var res checkResult
			require.NoError(t, json.Unmarshal([]byte(out), &res), out)
			require.True(t, res.Clean)
			require.Equal(t, uint64(3), res.Report.Events)

			// In use: a goethe (here the engine alone) holds the lock.
			e, err := engines.Open(name, filepath.Join(dir, name))
			require.NoError(t, err)
			status, out, errOut = runCheckArgs("--data-dir", dir)
			require.Equal(t, checkCannot, status, out)
			require.Contains(t, errOut, "is in use by a running goethe")
			require.Contains(t, errOut, "stop the server first")

			// Damaged: one flipped byte in the second event.
			testutil.FlipEventByte(t, e, 3, 1)
			require.NoError(t, e.Close())
			status, out, errOut = runCheckArgs("--data-dir", dir)
			require.Equal(t, checkProblems, status, "%s%s", out, errOut)
			require.Contains(t, out, `[topic "orders", seq 2]`)
			require.Contains(t, out, "checksum mismatch")
			require.Contains(t, out, "what to do: restore the data folder from a backup")
			require.Contains(t, out, "1 PROBLEM(S)")
		})
	}
}

// TestCheckCommandCannotCheck: every folder that cannot be checked exits 2
// with a message that says why, and nothing is created.
func TestCheckCommandCannotCheck(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	notGoethe := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(notGoethe, "x"), nil, 0o600))
	made := dataFolder(t, "pebble")
	cases := []struct {
		args []string
		says string
	}{
		{[]string{"--data-dir", missing}, "does not exist"},
		{[]string{"--data-dir", notGoethe}, "is not a goethe data folder: it has no ENGINE file"},
		{[]string{"--data-dir", made, "--engine", "bolt"}, "was made by engine pebble, not bolt"},
		{[]string{"--data-dir", made, "--engine", "rocksdb"}, `--engine "rocksdb": unknown engine`},
		{[]string{"--data-dir", made, "extra"}, `unexpected argument "extra"`},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, tc := range cases {
		status, out, errOut := runCheckArgs(tc.args...)
		require.Equal(t, checkCannot, status, "%v: %s", tc.args, out)
		require.Contains(t, errOut, tc.says, tc.args)
	}
	_, err := os.Stat(missing)
	require.ErrorIs(t, err, os.ErrNotExist, "check creates nothing")
}

// TestCheckCommandFolderStates: a folder where no store ever opened is
// clean; one whose marker says it held a log but whose engine folder is
// gone is a problem.
func TestCheckCommandFolderStates(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "fresh")
	_, _, err := prepareDataDir(fresh, "leveldb")
	require.NoError(t, err)
	status, out, _ := runCheckArgs("--data-dir", fresh)
	require.Equal(t, checkClean, status, out)
	require.Contains(t, out, "holds no log yet")
	_, err = os.Stat(filepath.Join(fresh, "leveldb"))
	require.ErrorIs(t, err, os.ErrNotExist, "check creates no engine files")

	gone := dataFolder(t, "bolt")
	require.NoError(t, os.RemoveAll(filepath.Join(gone, "bolt")))
	status, out, _ = runCheckArgs("--data-dir", gone)
	require.Equal(t, checkProblems, status, out)
	require.Contains(t, out, "PROBLEM: the engine's folder bolt is missing")
}

// TestHelpListsCheck: goethe -h names the check subcommand, and goethe
// check -h describes it.
func TestHelpListsCheck(t *testing.T) {
	var errOut bytes.Buffer
	require.Equal(t, exitOK, run(context.Background(), []string{"-h"}, env(), &errOut, nil))
	require.Contains(t, errOut.String(), "goethe check --data-dir D [--engine E] [--json]")
	status, out, _ := runCheckArgs("-h")
	require.Equal(t, checkClean, status)
	require.Contains(t, out, "Usage: goethe check")
	require.Contains(t, out, "-data-dir")
}

// TestCheckCommandEngineRefuses: damage that makes the engine refuse to
// open (here a flipped byte in goleveldb's journal, with intact records
// after it) is a problem, exit status 1, not a failure to check.
func TestCheckCommandEngineRefuses(t *testing.T) {
	dir := dataFolder(t, "leveldb")
	journals, err := filepath.Glob(filepath.Join(dir, "leveldb", "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, journals)
	b, err := os.ReadFile(journals[0])
	require.NoError(t, err)
	require.Greater(t, len(b), 20)
	b[8] ^= 0xFF // the first record's payload; the records after it are intact
	require.NoError(t, os.WriteFile(journals[0], b, 0o600))
	status, out, errOut := runCheckArgs("--data-dir", dir)
	require.Equal(t, checkProblems, status, "%s%s", out, errOut)
	require.Contains(t, out, "PROBLEM: the leveldb engine refuses to open")
}
