package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// topic set shows what applies and where it comes from; topic describes
// it; --clear drops a setting; bad values are usage errors.
func TestTopicSet(t *testing.T) {
	addr := startServer(t)
	out := ok(t, addr, "", "topic", "set", "orders", "--max-age", "7d", "--max-events", "1000", "--max-bytes", "10GiB")
	require.Regexp(t, strings.Join([]string{
		`^topic          orders`,
		`max age        7d +\(set on the topic\)`,
		`max events     1000 +\(set on the topic\)`,
		`max bytes      10GiB +\(set on the topic\)`,
		`dedupe window  \S+ +\(server default\)`,
		`$`}, "\n"), out)
	out = ok(t, addr, "", "topic", "set", "orders", "--clear", "max-events,max-bytes", "--dedupe-window", "0")
	require.Regexp(t, `max events     no limit +\(server default\)`, out)
	require.Regexp(t, `dedupe window  off +\(set on the topic\)`, out)

	out = ok(t, addr, "", "topic", "orders")
	require.Contains(t, out, "events   0\n")
	require.Regexp(t, `max age        7d +\(set on the topic\)`, out)
	// A topic named like a subcommand is reached with "topic info".
	ok(t, addr, "", "topic", "set", "trim", "--max-events", "5")
	require.Contains(t, ok(t, addr, "", "topic", "info", "trim"), "max events     5")

	var j struct {
		Name   string `json:"name"`
		Bytes  uint64 `json:"bytes"`
		Config struct {
			MaxAge       string `json:"max_age"`
			DedupeWindow string `json:"dedupe_window"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal([]byte(ok(t, addr, "", "topic", "orders", "--json")), &j))
	require.Equal(t, "168h0m0s", j.Config.MaxAge)
	require.Empty(t, j.Config.DedupeWindow)

	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"topic", "set", "orders"}, "give at least one of"},
		{[]string{"topic", "set", "orders", "--max-age", "-1h"}, "want a duration of 0 or more"},
		{[]string{"topic", "set", "orders", "--max-events", "many"}, "want a whole number"},
		{[]string{"topic", "set", "orders", "--max-bytes", "10GB"}, "optionally with a unit"},
		{[]string{"topic", "set", "orders", "--clear", "max-size"}, `"max-size" is not a setting`},
	} {
		r := ctl(t, addr, "", tc.args...)
		require.Equal(t, exitUsage, r.code, "%v: %s", tc.args, r.stderr)
		require.Contains(t, r.stderr, tc.says, "%v", tc.args)
	}
}

// topic trim removes a prefix at once, by seq, id, time or all of it; a
// consumer from the beginning starts at the first event left.
func TestTopicTrim(t *testing.T) {
	addr := startServer(t)
	idList := ids(t, ok(t, addr, "a\nb\nc\nd\ne\nf\n", "produce", "log"))
	require.Equal(t, "removed 2 events; log now starts at seq 3\n", ok(t, addr, "", "topic", "trim", "log", "--before", "seq:3"))
	// A consume from the beginning starts at the first event left and
	// says how many it missed: on standard error, or in --json.
	r := ctl(t, addr, "", "consume", "log")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "c\nd\ne\nf\n", r.stdout)
	require.Equal(t, "goethectl: 2 events of log before seq 3 were removed (retention or a trim) before they were read\n", r.stderr)
	var first struct{ Seq, Skipped uint64 }
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(ok(t, addr, "", "consume", "log", "--json"), "\n", 2)[0]), &first))
	require.Equal(t, uint64(3), first.Seq)
	require.Equal(t, uint64(2), first.Skipped)
	require.Equal(t, "d\ne\nf\n", ok(t, addr, "", "consume", "log", "--from", "seq:4"), "no gap after seq 3")
	require.Equal(t, "removed 0 events; log now starts at seq 3\n", ok(t, addr, "", "topic", "trim", "log", "--before", "seq:2"))
	require.Equal(t, "removed 1 events; log now starts at seq 4\n", ok(t, addr, "", "topic", "trim", "log", "--before", "id:"+strconv.FormatUint(idList[3], 10)))
	require.Equal(t, "removed 3 events; log holds none now (its next event gets seq 7)\n", ok(t, addr, "", "topic", "trim", "log", "--before", "end"))
	require.Empty(t, ctl(t, addr, "", "consume", "log").stdout)
	require.Equal(t, uint64(7), seqOf(t, ok(t, addr, "", "produce", "log", "g", "--json")))
	require.Equal(t, "removed 1 events; log holds none now (its next event gets seq 8)\n", ok(t, addr, "", "topic", "trim", "log", "--before", "now"))

	r = ctl(t, addr, "", "topic", "trim", "log")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "--before POS is required")
	require.Contains(t, fails(t, addr, "", "topic", "trim", "absent", "--before", "seq:2"), "absent")
}

// topic delete asks on a terminal, needs --yes otherwise, frees the name.
func TestTopicDelete(t *testing.T) {
	addr := startServer(t)
	ok(t, addr, "", "produce", "gone", "a", "b")
	r := ctl(t, addr, "", "topic", "delete", "gone")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "add --yes to delete")

	// On a terminal it asks, and anything but y keeps the topic.
	r = ctlTTY(t, addr, "n\n", "topic", "delete", "gone")
	require.Equal(t, exitError, r.code)
	require.Contains(t, r.stdout, `Delete topic "gone" with its 2 events`)
	require.Contains(t, ok(t, addr, "", "topics"), "gone")
	r = ctlTTY(t, addr, "y\n", "topic", "delete", "gone")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "deleted topic gone")

	// The name is free: a new topic, from seq 1.
	require.Equal(t, uint64(1), seqOf(t, ok(t, addr, "", "produce", "gone", "c", "--json")))
	require.Equal(t, "deleted topic gone\n", ok(t, addr, "", "topic", "delete", "gone", "-y"))
	require.Contains(t, fails(t, addr, "", "topic", "delete", "gone", "--yes"), "gone")
}

// topics shows each topic's bytes.
func TestTopicsBytes(t *testing.T) {
	addr := startServer(t)
	ok(t, addr, "", "produce", "sized", strings.Repeat("x", 2000))
	out := ok(t, addr, "", "topics")
	require.Contains(t, strings.SplitN(out, "\n", 2)[0], "BYTES")
	require.Regexp(t, `sized +1 +2\.\dKiB `, out)
}

// bench deletes the topics it created, keeps them with --keep, and never
// deletes a topic that was there before.
func TestBenchCleansUp(t *testing.T) {
	addr := startServer(t)
	ok(t, addr, "", "produce", "mine-0", "precious")
	r := ctl(t, addr, "", "bench", "--producers", "2", "--topics", "2", "--events", "100", "--topic-prefix", "mine")
	require.Equal(t, exitOK, r.code, r.stderr)
	out := ok(t, addr, "", "topics")
	require.Contains(t, out, "mine-0")
	require.NotContains(t, out, "mine-1")
	require.Contains(t, ok(t, addr, "", "consume", "mine-0", "--limit", "1"), "precious")

	r = ctl(t, addr, "", "bench", "--events", "10", "--topic-prefix", "kept", "--keep")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, ok(t, addr, "", "topics"), "kept-0")
}

// ctlTTY is ctl with standard input taken for a terminal.
func ctlTTY(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &env{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, getenv: serverAt(addr), stdinTTY: true})
	return result{code, stdout.String(), stderr.String()}
}

// seqOf is the seq of produce --json's one line.
func seqOf(t *testing.T, out string) uint64 {
	t.Helper()
	var r struct{ Seq uint64 }
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	return r.Seq
}
