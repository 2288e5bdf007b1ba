package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/internal/buildinfo"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		pos    []string
		follow bool
		from   string
	}{
		{args: nil, pos: nil},
		{args: []string{"orders"}, pos: []string{"orders"}},
		{args: []string{"orders", "--follow"}, pos: []string{"orders"}, follow: true},
		{args: []string{"--follow", "orders"}, pos: []string{"orders"}, follow: true},
		{args: []string{"orders", "--from", "end", "x"}, pos: []string{"orders", "x"}, from: "end"},
		{args: []string{"orders", "--from=end", "--follow"}, pos: []string{"orders"}, from: "end", follow: true},
		{args: []string{"orders", "--", "--follow", "-1"}, pos: []string{"orders", "--follow", "-1"}},
		{args: []string{"--", "-orders"}, pos: []string{"-orders"}},
		{args: []string{"a", "-", "b"}, pos: []string{"a", "-", "b"}},
		// A time ago or a negative number is positional, or a flag's value.
		{args: []string{"orders", "w", "-5m"}, pos: []string{"orders", "w", "-5m"}},
		{args: []string{"-1", "--follow", "-2d", "x"}, pos: []string{"-1", "-2d", "x"}, follow: true},
		{args: []string{"orders", "--from", "-5m", "-1"}, pos: []string{"orders", "-1"}, from: "-5m"},
		{args: []string{"orders", "--from=-5m"}, pos: []string{"orders"}, from: "-5m"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			follow := fs.Bool("follow", false, "")
			from := fs.String("from", "", "")
			pos, err := parseInterspersed(fs, tc.args)
			require.NoError(t, err)
			require.Equal(t, tc.pos, pos)
			require.Equal(t, tc.follow, *follow)
			require.Equal(t, tc.from, *from)
		})
	}
}

func TestParsePosition(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 123_000_000, time.UTC)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in       string
		want     position
		cursorID uint64 // with a topic whose last id is 77
	}{
		{"beginning", position{kind: posBeginning}, 0},
		{"end", position{kind: posEnd}, 77},
		{"now", position{kind: posEnd}, 77},
		{"id:0", position{kind: posID}, 0},
		{"id:3", position{kind: posID, id: 3}, 3},
		{"seq:3", position{kind: posSeq, seq: 3}, 0},
		{"seq:0", position{kind: posSeq}, 0},
		{"1767261600000000000", position{kind: posID, id: 1767261600000000000}, 1767261600000000000},
		{"1000000000000000", position{kind: posID, id: 1000000000000000}, 1000000000000000},
		{"2026-01-02T15:04:05.123Z", position{kind: posTime, time: at}, uint64(at.UnixNano()) - 1},
		{"1969-01-01T00:00:00Z", position{kind: posTime, time: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)}, 0},
		{"-5m", position{kind: posTime, time: now.Add(-5 * time.Minute)}, uint64(now.Add(-5*time.Minute).UnixNano()) - 1},
		{"5m", position{kind: posTime, time: now.Add(-5 * time.Minute)}, uint64(now.Add(-5*time.Minute).UnixNano()) - 1},
		{"1h30m", position{kind: posTime, time: now.Add(-90 * time.Minute)}, uint64(now.Add(-90*time.Minute).UnixNano()) - 1},
		{"-2d", position{kind: posTime, time: now.Add(-48 * time.Hour)}, uint64(now.Add(-48*time.Hour).UnixNano()) - 1},
		{"0s", position{kind: posTime, time: now}, uint64(now.UnixNano()) - 1},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := parsePositionAt(tc.in, now)
			require.NoError(t, err)
			require.Equal(t, tc.want.kind, p.kind)
			require.Equal(t, tc.want.id, p.id)
			require.Equal(t, tc.want.seq, p.seq)
			require.True(t, tc.want.time.Equal(p.time), "%v", p.time)
			require.Equal(t, tc.cursorID, p.cursorID(77))
		})
	}
	for _, bad := range []string{"", "yesterday", "-1", "2026-01-02", "18446744073709551616", "+5m", "seq:", "seq:-1", "id:x", "5x"} {
		_, err := parsePositionAt(bad, now)
		require.ErrorContains(t, err, strconv.Quote(bad)+" is not a position", bad)
	}
	// A bare small number is refused, and the message says what to type.
	for _, n := range []string{"0", "3", "007", "999999999999999"} {
		_, err := parsePositionAt(n, now)
		require.ErrorContains(t, err, strconv.Quote(n)+" is ambiguous: type seq:", n)
		require.ErrorContains(t, err, "or id:", n)
	}
}

func TestFormatTime(t *testing.T) {
	require.Equal(t, "2026-01-01T10:00:00.000000000Z", formatTime(idTime(1767261600000000000)))
	require.Equal(t, "2026-01-01T10:00:00.000000001Z", formatTime(idTime(1767261600000000001)))
}

func TestTrimEOL(t *testing.T) {
	for in, want := range map[string]string{"": "", "\n": "", "a\n": "a", "a\r\n": "a", "a": "a", "\r": "\r", "a\rb\n": "a\rb"} {
		require.Equal(t, want, string(trimEOL([]byte(in))), "%q", in)
	}
}

// withReason is a status error with an ErrorInfo in goethev1.ErrorDomain,
// as a Goethe server makes them.
func withReason(code codes.Code, msg, reason string, md map[string]string) error {
	st, err := status.New(code, msg).WithDetails(&errdetails.ErrorInfo{Domain: goethev1.ErrorDomain, Reason: reason, Metadata: md})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// explain decides by code and reason; the message is shown as it is, or
// not at all where the reason's metadata says it.
func TestExplain(t *testing.T) {
	const addr = "127.0.0.1:7420"
	for _, tc := range []struct {
		err  error
		want string
	}{
		{withReason(codes.NotFound, "whatever the server says", goethev1.ReasonTopicNotFound, map[string]string{"topic": "x"}), `topic "x" not found`},
		{withReason(codes.NotFound, "whatever", goethev1.ReasonCursorNotFound, map[string]string{"topic": "x", "consumer": "c"}), `no cursor for consumer "c" on topic "x"`},
		{withReason(codes.NotFound, "topic gone", goethev1.ReasonTopicNotFound, nil), "topic gone"},
		{withReason(codes.FailedPrecondition, "whatever", goethev1.ReasonExpectedLastSeqMismatch,
			map[string]string{"topic": "acct", "expected_last_seq": "2", "actual_last_seq": "3"}), `topic "acct": expected last seq 2, actual 3; nothing was stored`},
		{withReason(codes.InvalidArgument, "invalid name: topic name is empty", goethev1.ReasonInvalidName, nil), "invalid name: topic name is empty"},
		{withReason(codes.InvalidArgument, "event 0 is 9 bytes, the limit is 8", goethev1.ReasonLimitExceeded, nil), "event 0 is 9 bytes, the limit is 8"},
		{withReason(codes.Unavailable, "anything", goethev1.ReasonServerStopping, nil), "the server at 127.0.0.1:7420 is stopping"},
		{withReason(codes.Unavailable, "disk gone", goethev1.ReasonStoreFailed, nil),
			"the server at 127.0.0.1:7420 failed a write and takes no more until it is restarted: disk gone"},
		{withReason(codes.Unavailable, "x", goethev1.ReasonNotLeader, nil),
			"the server at 127.0.0.1:7420 knows no cluster leader (an election may be under way); nothing was stored: retry later"},
		{withReason(codes.Unavailable, "x", goethev1.ReasonNotLeader, map[string]string{"leader_id": "n2", "leader_address": "127.0.0.1:7421"}),
			"the server at 127.0.0.1:7420 cannot forward the write to its cluster's leader n2 (at 127.0.0.1:7421); nothing was stored: retry there or later"},
		{withReason(codes.Unavailable, "cluster: outcome unknown: leadership lost", goethev1.ReasonOutcomeUnknown, nil),
			"the cluster's leader was lost before the write was known committed: it may or may not be stored (cluster: outcome unknown: leadership lost)"},
		{withReason(codes.Internal, "boom", goethev1.ReasonInternal, nil), "server error (Internal): boom"},
		{withReason(codes.DataLoss, "event 7: checksum mismatch", goethev1.ReasonDataLoss, nil),
			"the server at 127.0.0.1:7420 met damaged data (see its log): event 7: checksum mismatch"},
		// gRPC's own statuses, and a server without reasons: by code.
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7420: connect: connection refused"`),
			"cannot reach a goethe server at 127.0.0.1:7420: connection refused (start one with goethe, or name it with --server or $GOETHE_SERVER)"},
		{status.Error(codes.Unavailable, "server is stopping"), "the server at 127.0.0.1:7420 is unavailable: server is stopping"},
		{status.Error(codes.NotFound, `not found: topic "x"`), `not found: topic "x"`},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max"), "request too large for the server: grpc: received message larger than max"},
		{status.Error(codes.Canceled, "context canceled"), "interrupted"},
		{status.Error(codes.Internal, "boom"), "server error (Internal): boom"},
		{context.Canceled, "interrupted"},
		{errors.New("plain"), "plain"},
	} {
		require.Equal(t, tc.want, explain(tc.err, addr).Error())
	}
	require.NoError(t, explain(nil, addr))
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string // a part of it
		stderr string // all of it; "…" stands for any text
	}{
		{args: []string{"help"}, code: exitOK, stdout: "Commands:\n  produce TOPIC [PAYLOAD...]"},
		{args: []string{"--help"}, code: exitOK, stdout: "Commands:"},
		{args: []string{"help", "consume"}, code: exitOK, stdout: "Usage: goethectl consume TOPIC [FLAGS]"},
		{args: []string{"help", "cursor", "set"}, code: exitOK, stdout: "Usage: goethectl cursor set TOPIC CONSUMER POS [FLAGS]"},
		{args: []string{"consume", "-h"}, code: exitOK, stdout: "  -f, --follow\n"},
		{args: []string{"help", "cursor"}, code: exitOK, stdout: "Usage: goethectl cursor get TOPIC CONSUMER [FLAGS]"},
		{args: []string{"cursor", "get", "--help"}, code: exitOK, stdout: "Usage: goethectl cursor get TOPIC CONSUMER [FLAGS]"},
		{args: []string{}, code: exitUsage, stderr: "goethectl is…goethectl: no command given (see \"goethectl help\")\n"},
		{args: []string{"--version"}, code: exitOK, stdout: "goethectl " + buildinfo.Read().String() + "\n"},
		{args: []string{"frobnicate"}, code: exitUsage, stderr: "goethectl: unknown command \"frobnicate\" (see \"goethectl help\")\n"},
		{args: []string{"consme", "orders"}, code: exitUsage, stderr: "goethectl: unknown command \"consme\"; did you mean \"consume\"? (see \"goethectl help\")\n"},
		{args: []string{"prodcue"}, code: exitUsage, stderr: "goethectl: unknown command \"prodcue\"; did you mean \"produce\"? (see \"goethectl help\")\n"},
		{args: []string{"topcis"}, code: exitUsage, stderr: "goethectl: unknown command \"topcis\"; did you mean \"topics\"? (see \"goethectl help\")\n"},
		{args: []string{"con"}, code: exitUsage, stderr: "goethectl: unknown command \"con\"; did you mean \"consume\"? (see \"goethectl help\")\n"},
		{args: []string{"benhc"}, code: exitUsage, stderr: "goethectl: unknown command \"benhc\"; did you mean \"bench\"? (see \"goethectl help\")\n"},
		{args: []string{"x"}, code: exitUsage, stderr: "goethectl: unknown command \"x\" (see \"goethectl help\")\n"},
		{args: []string{"help", "consme"}, code: exitUsage, stderr: "goethectl: unknown command \"consme\"; did you mean \"consume\"? (see \"goethectl help\")\n"},
		{args: []string{"help", "help"}, code: exitOK, stdout: "Usage: goethectl help [COMMAND]\n"},
		{args: []string{"cursor"}, code: exitUsage, stderr: "goethectl: \"cursor\" needs a subcommand: \"cursor get\" or \"cursor set\" (see \"goethectl help cursor\")\n"},
		{args: []string{"cluster"}, code: exitUsage, stderr: "goethectl: \"cluster\" needs a subcommand: \"cluster status\", \"cluster add\" or \"cluster remove\" (see \"goethectl help cluster\")\n"},
		{args: []string{"help", "cluster"}, code: exitOK, stdout: "Usage: goethectl cluster status [FLAGS]"},
		{args: []string{"consume"}, code: exitUsage, stderr: "goethectl: usage: goethectl consume TOPIC (see \"goethectl help consume\")\n"},
		{args: []string{"consume", "a", "b"}, code: exitUsage, stderr: "goethectl: usage: goethectl consume TOPIC (see \"goethectl help consume\")\n"},
		{args: []string{"consume", "orders", "--tail"}, code: exitUsage, stderr: "goethectl: consume: flag provided but not defined: --tail (see \"goethectl help consume\")\n"},
		{args: []string{"consume", "orders", "--from", "yesterday"}, code: exitUsage, stderr: "goethectl: --from \"yesterday\" is not a position: …"},
		{args: []string{"consume", "orders", "--from", "3"}, code: exitUsage, stderr: "goethectl: --from \"3\" is ambiguous: type seq:3 for the event with seq 3, or id:3 for the events after id 3 (see \"goethectl help consume\")\n"},
		{args: []string{"consume", "orders", "--limit", "-5"}, code: exitUsage, stderr: "goethectl: consume: invalid value \"-5\" for flag --limit…"},
		{args: []string{"consume", "orders", "--until", "beginning"}, code: exitUsage, stderr: "goethectl: --until \"beginning\": want seq:N, id:N, …"},
		{args: []string{"consume", "orders", "--commit"}, code: exitUsage, stderr: "goethectl: --commit needs --consumer NAME: the consumer whose cursor to store (see \"goethectl help consume\")\n"},
		{args: []string{"produce", "orders", "--header", "novalue"}, code: exitUsage, stderr: "goethectl: produce: invalid value \"novalue\" for flag --header: want key=value…"},
		{args: []string{"produce", "orders", "--expect-seq", "-1"}, code: exitUsage, stderr: "goethectl: produce: invalid value \"-1\" for flag --expect-seq…"},
		{args: []string{"produce", "orders", "--batch", "0"}, code: exitUsage, stderr: "goethectl: --batch 0: want 1 to 10000 lines…"},
		{args: []string{"cursor", "set", "orders", "billing", "soon"}, code: exitUsage, stderr: "goethectl: \"soon\" is not a position…"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(t.Context(), tc.args, &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: noEnv})
			require.Equal(t, tc.code, code, "stderr: %s", stderr.String())
			require.Contains(t, stdout.String(), tc.stdout)
			parts := strings.Split(tc.stderr, "…")
			for i := range parts {
				parts[i] = regexp.QuoteMeta(parts[i])
			}
			require.Regexp(t, "^(?s)"+strings.Join(parts, ".*")+"$", stderr.String())
			if tc.code != exitOK {
				require.Equal(t, 1, strings.Count(stderr.String(), "goethectl: "), "one error line: %s", stderr.String())
			}
		})
	}
}

func noEnv(string) string { return "" }

// TestIsTerminal: standard input that is not a terminal — /dev/null, a
// character device, as under cron or systemd, or a pipe — is not taken for
// one, so produce prints no terminal hint.
func TestIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	require.False(t, isTerminal(null))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.False(t, isTerminal(r))
}
