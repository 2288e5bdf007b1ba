package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The README's walk-through is the code blocks that follow a marker line,
// `<!-- walkthrough -->` for the first terminal, and
// `<!-- walkthrough: second terminal -->` or `<!-- walkthrough: third
// terminal -->` for terminals where a command runs on while the reader
// types in the first one, and `<!-- walkthrough: server terminal -->` for
// the terminal where the server runs. In a block, a line "$ CMD" is a shell
// command (a trailing backslash continues it), the lines after it are its
// output (standard output and standard error, as a terminal shows them),
// and "^C" is a Ctrl-C. A block of a second or third terminal without a
// command continues the command running there.
//
// The test runs every command with sh in a folder whose bin/ holds the
// built goethe and goethectl (the paths `make build cli` give them),
// against a fresh server named by $GOETHE_SERVER. A second- or
// third-terminal command runs in the background: the test waits until it
// has printed the lines the README shows before it goes on; ^C sends it
// SIGINT, after which it must exit with status 0; a command the README does
// not interrupt must end by itself, with status 0, before its terminal's
// next command or the walk-through's end. In the server terminal, ^C stops
// the test's server with SIGINT (it must exit with status 0) and
// "$ bin/goethe" starts it again on the same data folder and address; the
// server's log is not compared.
//
// A `<!-- walkthrough: node N terminal -->` block runs a cluster member as
// the README starts it ("$ bin/goethe --node-id …"), in the background, its
// log not compared; ^C stops it (status 0). Before every other command the
// test waits until each running member serves (knows a leader), as a
// person would before typing on. Loopback addresses with ports 7000–7999
// (127.0.0.1:7421) are replaced by free ports, the same one for the same
// README address throughout, and printed back as the README's.
//
// Output must match line by line, except for event ids (19 digits) and
// RFC 3339 times, which differ from run to run. The first time the README
// shows such a value, the test binds it to the value the binary printed
// there; later, the same README value must be printed as the same actual
// value, and a command that uses it (--from 1767…) gets the actual value,
// as a person would copy it from the screen. A command is expected to fail
// exactly when its output's last line is a "goethectl: " error.
const (
	readmePath       = "../README.md"
	walkthroughTerm2 = "second terminal"
	walkthroughTerm3 = "third terminal"
	serverTerminal   = "server terminal"
	commandTimeout   = 30 * time.Second
	outputTimeout    = 15 * time.Second
)

var (
	markerRE = regexp.MustCompile(`^<!-- walkthrough(?:: (.+?))? -->$`)
	nodeRE   = regexp.MustCompile(`^node \d+ terminal$`)
	// portRE matches the README's loopback addresses that the test maps
	// to free ports.
	portRE = regexp.MustCompile(`\b127\.0\.0\.1:7\d\d\d\b`)
	// listenRE finds a member's gRPC address in its command line.
	listenRE = regexp.MustCompile(`--listen[ =](\S+)`)
)

// isNode reports whether terminal runs a cluster member.
func isNode(terminal string) bool { return nodeRE.MatchString(terminal) }

// step is one command of the walk-through, or the continuation of the
// command running in the second terminal.
type step struct {
	line      int    // the README line of the command or block
	terminal  string // "" for the first terminal
	cmd       string // "" continues the terminal's running command
	output    []string
	interrupt bool // a ^C follows the output
}

func (s step) String() string {
	if s.cmd == "" {
		return fmt.Sprintf("README.md:%d (%s, continued)", s.line, s.terminal)
	}
	return fmt.Sprintf("README.md:%d $ %s", s.line, s.cmd)
}

// parseWalkthrough extracts the walk-through's steps from a README.
func parseWalkthrough(readme string) ([]step, error) {
	var steps []step
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		m := markerRE.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		terminal := m[1]
		if terminal != "" && terminal != walkthroughTerm2 && terminal != walkthroughTerm3 && terminal != serverTerminal && !isNode(terminal) {
			return nil, fmt.Errorf("README.md:%d: unknown terminal %q", i+1, terminal)
		}
		i++
		for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
			i++
		}
		if i == len(lines) || !strings.HasPrefix(lines[i], "```") {
			return nil, fmt.Errorf("README.md:%d: a walkthrough marker must precede a code block", i+1)
		}
		block := i + 1
		var cur *step
		for i++; ; i++ {
			if i == len(lines) {
				return nil, fmt.Errorf("README.md:%d: unterminated code block", block)
			}
			line := lines[i]
			if strings.HasPrefix(line, "```") {
				break
			}
			switch {
			case strings.HasPrefix(line, "$ "):
				cmd, start := strings.TrimPrefix(line, "$ "), i
				for strings.HasSuffix(cmd, `\`) && i+1 < len(lines) {
					i++
					cmd += "\n" + lines[i] // the shell joins the lines, as a terminal's does
				}
				steps = append(steps, step{line: start + 1, terminal: terminal, cmd: cmd})
				cur = &steps[len(steps)-1]
			case line == "^C":
				switch {
				case terminal == "":
					return nil, fmt.Errorf("README.md:%d: ^C is only for a command of another terminal", i+1)
				case terminal == serverTerminal || isNode(terminal):
					// Stops the server, however it was started.
					steps = append(steps, step{line: i + 1, terminal: terminal, interrupt: true})
					cur = nil
					continue
				case cur == nil:
					return nil, fmt.Errorf("README.md:%d: ^C with no command running", i+1)
				}
				cur.interrupt = true
			default:
				if terminal == serverTerminal || isNode(terminal) {
					return nil, fmt.Errorf("README.md:%d: a server's log is not part of the walk-through", i+1)
				}
				if cur == nil {
					if terminal == "" {
						return nil, fmt.Errorf("README.md:%d: output before any command", i+1)
					}
					steps = append(steps, step{line: i + 1, terminal: terminal})
					cur = &steps[len(steps)-1]
				}
				if cur.interrupt {
					return nil, fmt.Errorf("README.md:%d: output after ^C", i+1)
				}
				cur.output = append(cur.output, line)
			}
		}
	}
	return steps, nil
}

// Values that differ from run to run: event ids and RFC 3339 times.
const (
	idPattern   = `\d{19}`
	timePattern = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)`
)

var literalRE = regexp.MustCompile(`\b(?:` + idPattern + `|` + timePattern + `)`)

// binder maps the ids and times the README shows to those the binaries
// printed in their place.
type binder struct {
	actual map[string]string // README value → printed value
	readme map[string]string // printed value → README value
}

func newBinder() *binder {
	return &binder{actual: map[string]string{}, readme: map[string]string{}}
}

// match matches a printed line against the README's, binding the README's
// ids and times.
func (b *binder) match(want, got string) error {
	var pat strings.Builder
	var lits []string
	prev := 0
	pat.WriteString("^")
	for _, loc := range literalRE.FindAllStringIndex(want, -1) {
		pat.WriteString(regexp.QuoteMeta(want[prev:loc[0]]))
		lit := want[loc[0]:loc[1]]
		if regexp.MustCompile(`^` + idPattern + `$`).MatchString(lit) {
			pat.WriteString(`(` + idPattern + `)`)
		} else {
			pat.WriteString(`(` + timePattern + `)`)
		}
		lits = append(lits, lit)
		prev = loc[1]
	}
	pat.WriteString(regexp.QuoteMeta(want[prev:]) + "$")
	m := regexp.MustCompile(pat.String()).FindStringSubmatch(got)
	if m == nil {
		return fmt.Errorf("the README shows\n\t%s\nthe binary printed\n\t%s", want, got)
	}
	for i, lit := range lits {
		if err := b.bind(lit, m[i+1]); err != nil {
			return fmt.Errorf("%w, in\n\t%s", err, got)
		}
	}
	return nil
}

func (b *binder) bind(lit, got string) error {
	if v, ok := b.actual[lit]; ok && v != got {
		return fmt.Errorf("the README shows %s where it showed it before, but the binary printed %s, not %s", lit, got, v)
	}
	if l, ok := b.readme[got]; ok && l != lit {
		return fmt.Errorf("the README shows %s and %s for the same value %s", l, lit, got)
	}
	b.actual[lit], b.readme[got] = got, lit
	return nil
}

// substitute replaces the README's ids and times in a command with the
// values printed in their place.
func (b *binder) substitute(cmd string) (string, error) {
	var unbound []string
	out := literalRE.ReplaceAllStringFunc(cmd, func(lit string) string {
		v, ok := b.actual[lit]
		if !ok {
			unbound = append(unbound, lit)
			return lit
		}
		return v
	})
	if len(unbound) > 0 {
		return "", fmt.Errorf("the command uses %s, which no earlier output shows", strings.Join(unbound, ", "))
	}
	return out, nil
}

// lines splits output into lines, without the last line's newline.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func TestREADMEWalkthrough(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	require.NoError(t, err)
	steps, err := parseWalkthrough(string(readme))
	require.NoError(t, err)

	// The walk-through shows what the README promises.
	var all strings.Builder
	restarted := false
	for _, s := range steps {
		all.WriteString(s.cmd + "\n")
		restarted = restarted || s.terminal == serverTerminal && s.interrupt
	}
	require.True(t, restarted, "the README's walk-through no longer restarts the server under a producer and a follower")
	for _, want := range []string{"goethectl produce ", "| bin/goethectl produce ", "goethectl consume ", "--follow", "--consumer ", "--commit",
		"--from 1", "--from 20", "--from seq:", "--from -1h", "--until ", "--json", "--expect-seq", "goethectl cursor get ", "goethectl topics",
		"goethectl topic set ", "goethectl topic trim ", "goethectl topic delete ", "bin/goethe"} {
		require.Contains(t, all.String(), want, "the README's walk-through no longer shows %q", want)
	}

	dataDir := t.TempDir()
	srv := startServer(t, "leveldb", dataDir)
	dir := t.TempDir()
	require.NoError(t, os.Symlink(binDir, filepath.Join(dir, "bin")))
	env := append(binEnv(), "GOETHE_SERVER="+srv.addr)

	w := &walker{t: t, dir: dir, env: env, b: newBinder(), bg: map[string]*background{}, srv: srv, dataDir: dataDir,
		nodes: map[string]*background{}, ports: map[string]string{}}
	defer w.stopBackground()
	for _, s := range steps {
		switch {
		case isNode(s.terminal):
			w.runNode(s)
			continue
		case s.terminal == serverTerminal:
			w.runServer(s)
			continue
		}
		if s.cmd != "" {
			w.waitNodes()
		}
		if s.terminal == "" {
			w.run(s)
		} else {
			w.runBackground(s)
		}
	}
	for term, bg := range w.bg {
		w.waitExit(bg, term)
	}
	require.NotNil(t, w.srv, "the walk-through ends with the server stopped; start it again in the server terminal")
	for term, bg := range w.nodes {
		require.NoError(t, syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGINT), term)
		<-bg.exited
		require.NoError(t, bg.err, "%s: the member's exit at the end:\n%s", term, bg.out.String())
	}
}

// walker runs the steps.
type walker struct {
	t       *testing.T
	dir     string
	env     []string
	b       *binder
	bg      map[string]*background // each other terminal's running command
	srv     *server                // nil while the server terminal has stopped it
	dataDir string
	nodes   map[string]*background // each node terminal's running member
	ports   map[string]string      // README address → free loopback address
}

// background is a command running in another terminal than the first.
type background struct {
	step   step
	cmd    *exec.Cmd
	out    *syncBuffer
	seen   int // output lines compared so far
	exited chan struct{}
	err    error
}

// command makes the shell command of a step. prefix goes before it.
func (w *walker) command(ctx context.Context, s step, prefix string) *exec.Cmd {
	w.t.Helper()
	cmdline, err := w.b.substitute(s.cmd)
	require.NoError(w.t, err, "%s", s)
	cmdline = portRE.ReplaceAllStringFunc(cmdline, w.port)
	cmd := exec.CommandContext(ctx, "sh", "-c", prefix+cmdline)
	cmd.Dir, cmd.Env = w.dir, w.env
	return cmd
}

// run runs a first-terminal command to its end and compares its output.
func (w *walker) run(s step) {
	t := w.t
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := w.command(ctx, s, "")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "%s: did not finish within %s", s, commandTimeout)
	got := lines(out.String())
	wantFail := len(s.output) > 0 && strings.HasPrefix(s.output[len(s.output)-1], "goethectl: ")
	if wantFail {
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "%s: should fail, as the README shows; it exited with %v:\n%s", s, err, out.String())
	} else {
		require.NoError(t, err, "%s:\n%s", s, out.String())
	}
	w.compare(s, s.output, got)
}

func (w *walker) compare(s step, want, got []string) {
	w.t.Helper()
	for i := range got {
		for readme, actual := range w.ports {
			got[i] = strings.ReplaceAll(got[i], actual, readme)
		}
	}
	require.Len(w.t, got, len(want), "%s: the README shows\n%s\nthe binary printed\n%s", s, strings.Join(want, "\n"), strings.Join(got, "\n"))
	for i := range want {
		require.NoError(w.t, w.b.match(want[i], got[i]), "%s", s)
	}
}

// runServer stops the server (^C) or starts it again ("$ bin/goethe") on
// the same data folder and address, as a person restarting it in its
// terminal would.
func (w *walker) runServer(s step) {
	t := w.t
	t.Helper()
	if s.cmd == "" {
		require.NotNil(t, w.srv, "%s: the server is not running", s)
		require.NoError(t, w.srv.cmd.Process.Signal(syscall.SIGINT))
		select {
		case <-w.srv.exited:
			require.NoError(t, w.srv.err, "%s: goethe's exit after ^C:\n%s", s, w.srv.stderr.String())
		case <-time.After(stopTimeout):
			t.Fatalf("%s: goethe did not stop within %s of ^C:\n%s", s, stopTimeout, w.srv.stderr.String())
		}
		w.srv = nil
		return
	}
	require.True(t, s.cmd == "bin/goethe" || strings.HasPrefix(s.cmd, "bin/goethe "), "%s: the server terminal only starts bin/goethe", s)
	require.Nil(t, w.srv, "%s: the server still runs; stop it with ^C first", s)
	w.srv = startServer(t, "leveldb", w.dataDir, "--listen", envValue(w.env, "GOETHE_SERVER"))
}

// port maps a README address to a free loopback one, the same each time.
func (w *walker) port(readme string) string {
	if a, ok := w.ports[readme]; ok {
		return a
	}
	a := freeLoopback(w.t, 1)[0]
	w.ports[readme] = a
	return a
}

// runNode starts a cluster member as the README does, in the background,
// or stops it on ^C.
func (w *walker) runNode(s step) {
	t := w.t
	t.Helper()
	if s.cmd != "" {
		require.Nil(t, w.nodes[s.terminal], "%s: the %s still runs a member", s, s.terminal)
		bg := w.start(s, "exec ")
		w.nodes[s.terminal] = bg
		t.Cleanup(func() {
			_ = syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGKILL)
			<-bg.exited
		})
	}
	if !s.interrupt {
		return
	}
	bg := w.nodes[s.terminal]
	require.NotNil(t, bg, "%s: no member runs in the %s", s, s.terminal)
	require.NoError(t, syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGINT))
	select {
	case <-bg.exited:
	case <-time.After(stopTimeout):
		t.Fatalf("%s: the member did not stop within %s of ^C:\n%s", s, stopTimeout, bg.out.String())
	}
	require.NoError(t, bg.err, "%s: the member's exit after ^C:\n%s", s, bg.out.String())
	delete(w.nodes, s.terminal)
}

// waitNodes waits until every running member serves: it knows a leader.
func (w *walker) waitNodes() {
	t := w.t
	t.Helper()
	for term, bg := range w.nodes {
		m := listenRE.FindStringSubmatch(portRE.ReplaceAllStringFunc(bg.step.cmd, w.port))
		require.NotNil(t, m, "%s: a member's command must give its --listen address", bg.step)
		conn, err := grpc.NewClient(m[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		ok := assert.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "goethe.v1.Goethe"})
			return err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING
		}, startTimeout, pollEvery)
		conn.Close()
		if !ok {
			select {
			case <-bg.exited:
				t.Fatalf("%s: the member in the %s exited: %v\n%s", bg.step, term, bg.err, bg.out.String())
			default:
			}
			t.Fatalf("%s: the member in the %s does not serve (no leader?):\n%s", bg.step, term, bg.out.String())
		}
	}
}

// envValue is the value of key in env, "" when unset.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// runBackground starts or continues a command of another terminal, waits
// until it has printed the lines the README shows, and sends ^C when the
// README does.
func (w *walker) runBackground(s step) {
	t := w.t
	t.Helper()
	if s.cmd != "" {
		if prev := w.bg[s.terminal]; prev != nil {
			// A command the README did not interrupt ends by itself.
			w.waitExit(prev, s.terminal)
		}
		// An interactive shell survives the Ctrl-C of its foreground job;
		// sh -c does with a trap (which its commands do not inherit).
		w.bg[s.terminal] = w.start(s, "trap : INT\n")
	}
	bg := w.bg[s.terminal]
	require.NotNil(t, bg, "%s: nothing runs in the %s", s, s.terminal)
	upTo := bg.seen + len(s.output)
	require.Eventually(t, func() bool { return len(lines(bg.out.String())) >= upTo }, outputTimeout, pollEvery,
		"%s: the %s did not print what the README shows within %s; it printed:\n%s", s, s.terminal, outputTimeout, bg.out.String())
	got := lines(bg.out.String())
	w.compare(s, s.output, got[bg.seen:upTo])
	bg.seen = upTo
	if !s.interrupt {
		return
	}
	require.NoError(t, syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGINT))
	select {
	case <-bg.exited:
	case <-time.After(outputTimeout):
		t.Fatalf("%s: the %s's command did not end on ^C", s, s.terminal)
	}
	require.NoError(t, bg.err, "%s: ^C should end %q with status 0:\n%s", s, bg.step.cmd, bg.out.String())
	require.Equal(t, bg.seen, len(lines(bg.out.String())), "%s: more output than the README shows:\n%s", s, bg.out.String())
	delete(w.bg, s.terminal)
}

// start starts s's command in the background, prefixed by prefix, in a
// process group of its own, which ^C signals, as a terminal does.
func (w *walker) start(s step, prefix string) *background {
	w.t.Helper()
	cmd := w.command(context.Background(), s, prefix)
	bg := &background{step: s, cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = bg.out, bg.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(w.t, cmd.Start(), "%s", s)
	go func() {
		bg.err = cmd.Wait()
		close(bg.exited)
	}()
	return bg
}

// waitExit waits for a background command the README did not interrupt to
// end by itself, with status 0 and no output beyond what the README shows.
func (w *walker) waitExit(bg *background, terminal string) {
	t := w.t
	t.Helper()
	select {
	case <-bg.exited:
	case <-time.After(commandTimeout):
		t.Fatalf("%s: the %s's command did not end by itself within %s; end it with ^C if it should not", bg.step, terminal, commandTimeout)
	}
	require.NoError(t, bg.err, "%s: exit status:\n%s", bg.step, bg.out.String())
	require.Equal(t, bg.seen, len(lines(bg.out.String())), "%s: more output than the README shows:\n%s", bg.step, bg.out.String())
	delete(w.bg, terminal)
}

// stopBackground kills the commands the walk-through left running.
func (w *walker) stopBackground() {
	for _, bg := range w.bg {
		_ = syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGKILL)
		<-bg.exited
	}
}

func (bg *background) String() string { return bg.step.cmd }

func TestParseWalkthrough(t *testing.T) {
	readme := "intro\n" +
		"<!-- walkthrough -->\n```console\n$ a 1\nout 1\n$ b \\\n  --x\n```\n" +
		"```console\n$ ignored\n```\n" +
		"<!-- walkthrough: second terminal -->\n\n```console\n$ follow\nf1\n```\n" +
		"<!-- walkthrough: second terminal -->\n```console\nf2\n^C\n```\n" +
		"<!-- walkthrough: server terminal -->\n```console\n^C\n$ bin/goethe\n```\n" +
		"<!-- walkthrough: third terminal -->\n```console\n$ produce\n```\n"
	steps, err := parseWalkthrough(readme)
	require.NoError(t, err)
	require.Equal(t, []step{
		{line: 4, cmd: "a 1", output: []string{"out 1"}},
		{line: 6, cmd: "b \\\n  --x"},
		{line: 15, terminal: walkthroughTerm2, cmd: "follow", output: []string{"f1"}},
		{line: 20, terminal: walkthroughTerm2, output: []string{"f2"}, interrupt: true},
		{line: 25, terminal: serverTerminal, interrupt: true},
		{line: 26, terminal: serverTerminal, cmd: "bin/goethe"},
		{line: 30, terminal: walkthroughTerm3, cmd: "produce"},
	}, steps)

	for _, bad := range []string{
		"<!-- walkthrough -->\ntext\n",
		"<!-- walkthrough -->\n```\n$ a\n",
		"<!-- walkthrough -->\n```\nout\n```\n",
		"<!-- walkthrough -->\n```\n$ a\n^C\n```\n",
		"<!-- walkthrough: fourth terminal -->\n```\n$ a\n```\n",
		"<!-- walkthrough: second terminal -->\n```\n^C\n```\n",
		"<!-- walkthrough: server terminal -->\n```\n$ bin/goethe\nlog line\n```\n",
	} {
		_, err := parseWalkthrough(bad)
		require.Error(t, err, bad)
	}
}

func TestBinder(t *testing.T) {
	b := newBinder()
	require.NoError(t, b.match(`{"id":1767261600482913564,"time":"2026-01-01T10:00:00.482913564Z"}`,
		`{"id":1795660945906708536,"time":"2026-11-26T02:42:25.9067085Z"}`))
	cmd, err := b.substitute("consume orders --from 1767261600482913564 --from 2026-01-01T10:00:00.482913564Z")
	require.NoError(t, err)
	require.Equal(t, "consume orders --from 1795660945906708536 --from 2026-11-26T02:42:25.9067085Z", cmd)
	_, err = b.substitute("consume --from 1767261600000000000")
	require.ErrorContains(t, err, "no earlier output shows")

	require.NoError(t, b.match("id 1767261600482913564", "id 1795660945906708536"), "the same value again")
	require.ErrorContains(t, b.match("id 1767261600482913564", "id 1795660945906708537"), "where it showed it before")
	require.ErrorContains(t, b.match("id 1767261600482913565", "id 1795660945906708536"), "for the same value")
	require.ErrorContains(t, b.match("seq 1", "seq 2"), "the README shows")
	require.ErrorContains(t, b.match("a.b", "axb"), "the README shows", "the rest is literal")
}
