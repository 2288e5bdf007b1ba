package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/server"
	"github.com/goethe-log/goethe/store"
)

// startServer serves a fresh leveldb store on a loopback port and returns
// its address; the server stops when the test ends.
func startServer(t *testing.T) string {
	addr, _ := testutil.StartServer(t, "leveldb", t.TempDir(), store.DefaultOptions(), server.Options{})
	return addr
}

type result struct {
	code           int
	stdout, stderr string
}

// ctl runs goethectl args against the server at addr (through
// $GOETHE_SERVER) with stdin as its standard input.
func ctl(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &env{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, getenv: serverAt(addr)})
	return result{code, stdout.String(), stderr.String()}
}

func serverAt(addr string) func(string) string {
	return func(k string) string {
		if k == serverEnv {
			return addr
		}
		return ""
	}
}

// ok runs ctl and requires success, returning standard output.
func ok(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	r := ctl(t, addr, stdin, args...)
	require.Equal(t, exitOK, r.code, "goethectl %s: %s", strings.Join(args, " "), r.stderr)
	require.Empty(t, r.stderr)
	return r.stdout
}

// fails runs ctl, requires exit status 1 and returns the one error line.
func fails(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	r := ctl(t, addr, stdin, args...)
	require.Equal(t, exitError, r.code, "goethectl %s: %s", strings.Join(args, " "), r.stdout)
	require.True(t, strings.HasPrefix(r.stderr, "goethectl: "), r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	return strings.TrimSuffix(r.stderr, "\n")
}

// ids parses produce's output.
func ids(t *testing.T, out string) []uint64 {
	t.Helper()
	var ids []uint64
	for line := range strings.Lines(out) {
		id, err := strconv.ParseUint(strings.TrimSpace(line), 10, 64)
		require.NoError(t, err, line)
		ids = append(ids, id)
	}
	return ids
}

func TestProduceConsume(t *testing.T) {
	addr := startServer(t)
	got := ids(t, ok(t, addr, "", "produce", "orders", "order 1 created", "--header", "source=web", "order 2 paid", "--header", "v=1"))
	require.Len(t, got, 2)
	require.Equal(t, got[0]+1, got[1], "the ids of one produce are consecutive")
	require.Equal(t, "order 1 created\norder 2 paid\n", ok(t, addr, "", "consume", "orders"))

	out := ok(t, addr, "", "consume", "--json", "orders")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 2)
	var ev map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &ev))
	require.Equal(t, map[string]any{
		"topic":   "orders",
		"id":      strconv.FormatUint(got[1], 10),
		"seq":     float64(2),
		"time":    formatTime(idTime(got[1])),
		"headers": map[string]any{"source": "web", "v": "1"},
		"payload": "order 2 paid",
	}, ev)
	require.Contains(t, lines[1], fmt.Sprintf(`"id":"%d",`, got[1]), "ids are printed exactly, as strings")

	// Binary payloads, empty lines and CRLF through standard input.
	ok(t, addr, "\xff\x00bin\n\nwin\r\n<&>", "produce", "blobs")
	out = ok(t, addr, "", "consume", "blobs", "--json")
	var evs []jsonEvent
	for line := range strings.Lines(out) {
		var e jsonEvent
		require.NoError(t, json.Unmarshal([]byte(line), &e))
		evs = append(evs, e)
	}
	require.Len(t, evs, 4)
	require.Nil(t, evs[0].Payload)
	require.Equal(t, []byte("\xff\x00bin"), evs[0].PayloadBase64)
	require.Equal(t, "", *evs[1].Payload)
	require.Equal(t, "win", *evs[2].Payload)
	require.Equal(t, "<&>", *evs[3].Payload)
	require.Contains(t, out, `"payload":"<&>"`)
	require.Contains(t, out, `"headers":{}`)

	// topics and topic.
	out = ok(t, addr, "", "topics")
	require.Regexp(t, `^TOPIC +EVENTS +BYTES +FIRST SEQ +LAST SEQ +FIRST TIME +LAST TIME +LAST ID\nblobs +4 +\d+B +1 +4 +\S+Z +\S+Z +\d{19}\norders +2 +\d+B +1 +2 +`+
		formatTime(idTime(got[0]))+` +`+formatTime(idTime(got[1]))+` +`+strconv.FormatUint(got[1], 10)+`\n$`, out)
	out = ok(t, addr, "", "topics", "--json")
	require.Equal(t, 2, strings.Count(out, "\n"))
	var jt jsonTopic
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(out, "\n", 3)[1]), &jt))
	require.Equal(t, "orders", jt.Name)
	require.Equal(t, uint64(2), jt.Count)
	require.Equal(t, got[0], jt.FirstID)
	require.Equal(t, got[1], jt.LastID)
	require.Equal(t, formatTime(idTime(got[1])), jt.LastTime)

	out = ok(t, addr, "", "topic", "orders")
	require.Regexp(t, `^topic +orders\ncreated +\S+Z\nevents +2\nbytes +\d+B\nfirst +seq 1 +id `+strconv.FormatUint(got[0], 10)+` +\S+Z\nlast +seq 2 +id `+strconv.FormatUint(got[1], 10)+` +\S+Z\n`+
		`max age +no limit +\(server default\)\nmax events +no limit +\(server default\)\nmax bytes +no limit +\(server default\)\ndedupe window +\S+ +\(server default\)\n$`, out)
	require.NoError(t, json.Unmarshal([]byte(ok(t, addr, "", "topic", "orders", "--json")), &jt))
	require.Equal(t, uint64(2), jt.LastSeq)
}

func TestProduceStdinBatches(t *testing.T) {
	addr := startServer(t)
	var in, jsonIn strings.Builder
	const n = 2345
	for i := range n {
		fmt.Fprintf(&in, "event %d\n", i)
		fmt.Fprintf(&jsonIn, `{"payload":"event %d"}`+"\n", i)
	}
	out := ok(t, addr, jsonIn.String(), "produce", "many", "--batch", "1000", "--json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, n)
	var prev uint64
	for i, line := range lines {
		var r struct {
			ID  uint64 `json:",string"`
			Seq uint64
		}
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		require.Equal(t, uint64(i+1), r.Seq)
		require.Greater(t, r.ID, prev)
		prev = r.ID
	}
	require.Equal(t, in.String(), ok(t, addr, "", "consume", "many"))

	// A zero linger still batches what is queued; an empty input
	// produces nothing.
	ok(t, addr, "a\nb\n", "produce", "many", "--linger", "0s")
	require.Empty(t, ok(t, addr, "", "produce", "many"))
	require.Equal(t, "a\nb\n", ok(t, addr, "", "consume", "many", "--from", strconv.FormatUint(prev, 10)))
}

func TestProduceExpectSeq(t *testing.T) {
	addr := startServer(t)
	ok(t, addr, "", "produce", "acct", "--expect-seq", "0", "opened")
	msg := fails(t, addr, "", "produce", "acct", "--expect-seq", "0", "opened again")
	require.Equal(t, `goethectl: topic "acct": expected last seq 0, actual 1; nothing was stored`, msg)

	// Standard input: each batch expects the seq the previous one left.
	ok(t, addr, "a\nb\nc\nd\ne\n", "produce", "acct", "--expect-seq", "1", "--batch", "2")
	require.Equal(t, "opened\na\nb\nc\nd\ne\n", ok(t, addr, "", "consume", "acct"))
	msg = fails(t, addr, "f\n", "produce", "acct", "--expect-seq", "5")
	require.Equal(t, `goethectl: line 1 not stored: topic "acct": expected last seq 5, actual 6; nothing was stored`, msg)
}

func TestConsumeFrom(t *testing.T) {
	addr := startServer(t)
	var got []uint64
	for i := range 5 {
		got = append(got, ids(t, ok(t, addr, "", "produce", "log", fmt.Sprint("e", i)))...)
	}
	id := func(i int) string { return strconv.FormatUint(got[i], 10) }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "beginning"}, "e0\ne1\ne2\ne3\ne4\n"},
		{[]string{"--from", "end"}, ""},
		{[]string{"--from", id(1)}, "e2\ne3\ne4\n"},
		{[]string{"--from", strconv.FormatUint(got[1]+1, 10)}, "e2\ne3\ne4\n"}, // not an event: the next one
		{[]string{"--from", "id:0"}, "e0\ne1\ne2\ne3\ne4\n"},
		{[]string{"--from", "id:" + id(1)}, "e2\ne3\ne4\n"},
		{[]string{"--from", "seq:3"}, "e2\ne3\ne4\n"},
		{[]string{"-o", "seq:1"}, "e0\ne1\ne2\ne3\ne4\n"},
		{[]string{"--from", "seq:0"}, "e0\ne1\ne2\ne3\ne4\n"},
		{[]string{"--from", "seq:6"}, ""},
		{[]string{"--from", "-1h"}, "e0\ne1\ne2\ne3\ne4\n"},
		{[]string{"--from", "1h"}, "e0\ne1\ne2\ne3\ne4\n"},
		{[]string{"--from", "now"}, ""},
		{[]string{"--until", "seq:2"}, "e0\ne1\n"},
		{[]string{"--from", "seq:2", "--until", "seq:4"}, "e1\ne2\ne3\n"},
		{[]string{"--until", "id:" + id(2)}, "e0\ne1\ne2\n"},
		{[]string{"--until", strconv.FormatUint(got[2]-1, 10)}, "e0\ne1\n"},
		{[]string{"--until", formatTime(idTime(got[3]))}, "e0\ne1\ne2\ne3\n"},
		{[]string{"--until", "now"}, "e0\ne1\ne2\ne3\ne4\n"},
		{[]string{"--until", "-1h"}, ""},
		{[]string{"--until", "seq:3", "--follow"}, "e0\ne1\ne2\n"}, // ends at the bound
		{[]string{"--until", "id:" + id(4), "-f", "-n", "9"}, "e0\ne1\ne2\ne3\ne4\n"},
		// A time bound ends a follower once past, after the events stored
		// until then; one in the past ends it at the first later event.
		{[]string{"--until", "now", "--follow"}, "e0\ne1\ne2\ne3\ne4\n"},
		{[]string{"--until", formatTime(time.Now().Add(200 * time.Millisecond)), "--follow"}, "e0\ne1\ne2\ne3\ne4\n"},
		{[]string{"--until", "-1h", "--follow"}, ""},
		{[]string{"--until", "now", "--follow", "--from", "end"}, ""},
		{[]string{"--from", id(4)}, ""},
		{[]string{"--from", formatTime(idTime(got[3]))}, "e3\ne4\n"}, // at or after
		{[]string{"--from", idTime(got[3] - 1).Format(time.RFC3339Nano)}, "e3\ne4\n"},
		{[]string{"--from", "2000-01-01T00:00:00Z"}, "e0\ne1\ne2\ne3\ne4\n"},
		{[]string{"--from", "2200-01-01T00:00:00+02:00"}, ""},
		{[]string{"--limit", "2"}, "e0\ne1\n"},
		{[]string{"--limit", "2", "--from", id(2)}, "e3\ne4\n"},
		{[]string{"--follow", "--limit", "2", "--from", id(2)}, "e3\ne4\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			require.Equal(t, tc.want, ok(t, addr, "", append([]string{"consume", "log"}, tc.args...)...))
		})
	}
}

func TestConsumerCursor(t *testing.T) {
	addr := startServer(t)
	got := ids(t, ok(t, addr, "a\nb\nc\nd\n", "produce", "jobs"))

	// No cursor yet: from the beginning.
	require.Equal(t, "a\nb\n", ok(t, addr, "", "consume", "jobs", "--consumer", "w", "--commit", "--limit", "2"))
	out := ok(t, addr, "", "cursor", "get", "jobs", "w")
	require.Regexp(t, `^topic +jobs\nconsumer +w\nid +`+strconv.FormatUint(got[1], 10)+` +`+formatTime(idTime(got[1]))+`\nupdated +\S+Z\nlag +2\n$`, out)
	require.Equal(t, "c\nd\n", ok(t, addr, "", "consume", "jobs", "--consumer", "w", "--commit"))
	require.Empty(t, ok(t, addr, "", "consume", "jobs", "--consumer", "w", "--commit"))

	// Without --commit the cursor stays; --from overrides it.
	require.Equal(t, "a\nb\nc\nd\n", ok(t, addr, "", "consume", "jobs", "--consumer", "other"))
	require.Equal(t, "c\nd\n", ok(t, addr, "", "consume", "jobs", "--consumer", "w", "--from", strconv.FormatUint(got[1], 10)))
	require.Contains(t, fails(t, addr, "", "cursor", "get", "jobs", "other"), `no cursor for consumer "other" on topic "jobs"`)

	var c jsonCursor
	require.NoError(t, json.Unmarshal([]byte(ok(t, addr, "", "cursor", "get", "jobs", "w", "--json")), &c))
	require.Equal(t, jsonCursor{Topic: "jobs", Consumer: "w", ID: got[3], Time: formatTime(idTime(got[3])), Updated: c.Updated,
		LastID: got[3], LastSeq: 4, Lag: 0}, c)

	// cursor set: an id, a seq, a time, beginning, end.
	for _, tc := range []struct{ pos, want string }{
		{strconv.FormatUint(got[0], 10), "b\nc\nd\n"},
		{"id:" + strconv.FormatUint(got[1], 10), "c\nd\n"},
		{"seq:2", "b\nc\nd\n"},
		{"seq:1", "a\nb\nc\nd\n"},
		{"seq:4", "d\n"},
		{"seq:5", ""},
		{"seq:99", ""},
		{"-1h", "a\nb\nc\nd\n"},
		{formatTime(idTime(got[2])), "c\nd\n"},
		{"beginning", "a\nb\nc\nd\n"},
		{"end", ""},
	} {
		require.Empty(t, ok(t, addr, "", "cursor", "set", "jobs", "w", tc.pos))
		require.Equal(t, tc.want, ok(t, addr, "", "consume", "jobs", "--consumer", "w"), tc.pos)
	}
	// --until with --commit stores the cursor at the last event printed.
	require.Equal(t, "a\nb\n", ok(t, addr, "", "consume", "jobs", "-c", "u", "--commit", "--until", "seq:2", "-f"))
	require.Equal(t, "c\nd\n", ok(t, addr, "", "consume", "jobs", "-c", "u"))
	require.Equal(t, `goethectl: topic "nope" not found`, fails(t, addr, "", "cursor", "set", "nope", "w", "id:1"))
	require.Equal(t, `goethectl: topic "nope" not found`, fails(t, addr, "", "cursor", "set", "nope", "w", "seq:1"))
}

// syncBuffer collects output written by one goroutine and read by another.
type syncBuffer = testutil.SyncBuffer

func TestFollowInterruptCommits(t *testing.T) {
	addr := startServer(t)
	ok(t, addr, "", "produce", "live", "first")

	ctx, interrupt := context.WithCancel(t.Context())
	defer interrupt()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"consume", "live", "--follow", "--consumer", "tail", "--commit"},
			&env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: serverAt(addr)})
	}()
	require.Eventually(t, func() bool { return stdout.String() == "first\n" }, 10*time.Second, 5*time.Millisecond)
	last := ids(t, ok(t, addr, "", "produce", "live", "second", "third"))[1]
	require.Eventually(t, func() bool { return stdout.String() == "first\nsecond\nthird\n" }, 10*time.Second, 5*time.Millisecond)

	interrupt() // Ctrl-C
	select {
	case code := <-exited:
		require.Equal(t, exitOK, code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("consume --follow did not end on interrupt")
	}
	require.Empty(t, stderr.String())
	var c jsonCursor
	require.NoError(t, json.Unmarshal([]byte(ok(t, addr, "", "cursor", "get", "live", "tail", "--json")), &c))
	require.Equal(t, last, c.ID, "the cursor is at the last event printed")

	// A follower of a topic that does not exist yet sees its first event.
	ctx, interrupt = context.WithCancel(t.Context())
	defer interrupt()
	var out2 syncBuffer
	go func() {
		exited <- run(ctx, []string{"consume", "--follow", "later"}, &env{stdin: strings.NewReader(""), stdout: &out2, stderr: &stderr, getenv: serverAt(addr)})
	}()
	require.Eventually(t, func() bool {
		ok(t, addr, "", "produce", "later", "hello")
		return strings.HasPrefix(out2.String(), "hello\n")
	}, 10*time.Second, 20*time.Millisecond)
	interrupt()
	require.Equal(t, exitOK, <-exited)
}

func TestErrors(t *testing.T) {
	addr := startServer(t)
	require.Equal(t, `goethectl: topic "nope" not found`, fails(t, addr, "", "consume", "nope"))
	require.Empty(t, ok(t, addr, "", "consume", "nope", "--follow", "--until", "now"), "a follower of no topic ends at a time bound")
	require.Equal(t, `goethectl: topic "nope" not found`, fails(t, addr, "", "topic", "nope"))
	require.Equal(t, `goethectl: invalid name: topic name has control character U+0007 at byte 1`, fails(t, addr, "", "produce", "a\ab", "x"))
	require.Contains(t, fails(t, addr, "", "produce", "big", "--retry=false", strings.Repeat("x", server.DefaultMaxEventBytes+1)),
		"event 0 is 1048577 bytes (payload and headers), the limit is 1048576")
	msg := fails(t, addr, "ok\n"+strings.Repeat("y", server.DefaultMaxEventBytes+1)+"\n", "produce", "big", "--retry=false", "--linger", "1h", "--batch", "2")
	require.True(t, strings.HasPrefix(msg, "goethectl: lines 1-2 not stored: "), msg)
	require.Contains(t, msg, "event 1 is 1048577 bytes")

	// No server: the address and what to do.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := lis.Addr().String()
	require.NoError(t, lis.Close())
	require.Equal(t, "goethectl: cannot reach a goethe server at "+dead+": connection refused (start one with goethe, or name it with --server or $GOETHE_SERVER)",
		fails(t, addr, "", "--server", dead, "topics"))
	require.Contains(t, fails(t, addr, "", "topics", "--server", dead), dead, "--server after the command")
	require.Contains(t, fails(t, dead, "", "produce", "x", "y"), "the events may or may not be stored")
	require.Equal(t, "goethectl: the server at "+addr+" is a single node, not a cluster member", fails(t, addr, "", "cluster", "status"))
	require.Equal(t, "goethectl: not a cluster member: this server runs single-node",
		fails(t, addr, "", "cluster", "add", "n4", "127.0.0.1:7524", "127.0.0.1:7424"))
	require.Equal(t, "goethectl: not a cluster member: this server runs single-node", fails(t, addr, "", "cluster", "remove", "n3"))
}

// bench runs each client mode and says which one it used.
func TestBench(t *testing.T) {
	addr := startServer(t)
	for _, tc := range []struct {
		args []string
		says string
	}{
		{nil, "client mode async: producer goroutines share 1 connection, one asynchronous Producer on each"},
		{[]string{"--mode", "async", "--connections", "2", "--pipelined", "--batch", "10"}, "client mode async: producer goroutines share 2 connections"},
		{[]string{"--mode", "stream"}, "client mode stream: a connection per producer goroutine, a ProduceStream per goroutine"},
		{[]string{"--mode", "unary", "--connections", "1"}, "client mode unary: producer goroutines share 1 connection, a unary call per batch"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := ctl(t, addr, "", append([]string{"bench", "--producers", "4", "--events", "400", "--topic-prefix", fmt.Sprint("b", len(tc.args))}, tc.args...)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, tc.says)
			require.Regexp(t, `produce +400 `, r.stdout)
		})
	}
	r := ctl(t, addr, "", "bench", "--events", "10", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var res struct{ Label string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	require.Contains(t, res.Label, "client mode async")

	r = ctl(t, addr, "", "bench", "--mode", "carrier-pigeon")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, `--mode "carrier-pigeon": want async, stream or unary`)
	r = ctl(t, addr, "", "bench", "--connections", "-1")
	require.Equal(t, exitUsage, r.code)
}

// TestProduceJSONCopiesATopic: produce --json reads what consume --json
// prints (text and base64 payloads, headers, ids as strings), so a topic is
// copied event for event; --header adds to each event's headers; a line
// that is not an event stops the input there, and the message says which
// line and that the lines before it were stored.
func TestProduceJSONCopiesATopic(t *testing.T) {
	addr := startServer(t)
	ok(t, addr, "", "produce", "src", "plain", "-H", "k=v", "-H", "x=y")
	ok(t, addr, "\xff\x00bin\n\n<&>\n", "produce", "src")
	src := ok(t, addr, "", "consume", "src", "--json")

	out := ok(t, addr, src, "produce", "dst", "--json")
	require.Equal(t, 4, strings.Count(out, "\n"))
	require.Contains(t, out, `"seq":4}`)
	type event struct {
		Seq           uint64
		Headers       map[string]string
		Payload       *string
		PayloadBase64 []byte `json:"payload_base64"`
	}
	decode := func(out string) []event {
		var evs []event
		for line := range strings.Lines(out) {
			var e event
			require.NoError(t, json.Unmarshal([]byte(line), &e))
			evs = append(evs, e)
		}
		return evs
	}
	require.Equal(t, decode(src), decode(ok(t, addr, "", "consume", "dst", "--json")), "the copy has the same events")
	require.Equal(t, "plain\n\xff\x00bin\n\n<&>\n", ok(t, addr, "", "consume", "dst"))

	// Hand-written lines, --header on top.
	ok(t, addr, `{"payload":"a","headers":{"k":"1","keep":"2"}}`+"\n"+`{}`+"\n", "produce", "hand", "-j", "--header", "k=flag")
	evs := decode(ok(t, addr, "", "consume", "hand", "--json"))
	require.Equal(t, map[string]string{"k": "flag", "keep": "2"}, evs[0].Headers)
	require.Equal(t, "a", *evs[0].Payload)
	require.Equal(t, "", *evs[1].Payload, "no payload is an empty one")

	for _, tc := range []struct{ in, says string }{
		{"{\"payload\":\"ok\"}\nplain text\n", "line 2: not a JSON event as consume --json prints it: want a JSON object; line 1 was stored"},
		{"{\"payload\":\"ok\"}\n\n", "line 2: not a JSON event"},
		{`{"paylod":"typo"}`, `line 1: not a JSON event as consume --json prints it: json: unknown field "paylod"; nothing was stored`},
		{`{"payload":"a","payload_base64":"YQ=="}`, "line 1: not a JSON event as consume --json prints it: both payload and payload_base64"},
		{`{"payload":"a"}{"payload":"b"}`, "more than one JSON value on the line"},
		{`{"payload":"a"}}`, "more than one JSON value on the line"},
		{"null", "want a JSON object"},
	} {
		require.Contains(t, fails(t, addr, tc.in, "produce", "bad", "--json"), tc.says, tc.in)
	}
	require.Contains(t, fails(t, addr, "{}\n{}\n{}\nx\n{}\n", "produce", "bad3", "--json"), "line 4: not a JSON event as consume --json prints it: want a JSON object; lines 1-3 were stored")
	require.Equal(t, "ok\nok\n", ok(t, addr, "", "consume", "bad"), "the lines before a bad one are stored, none after")
	require.Equal(t, "\n\n\n", ok(t, addr, "", "consume", "bad3"))
}
