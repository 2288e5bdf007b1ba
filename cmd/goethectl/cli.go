package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/internal/buildinfo"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong
)

// serverEnv is the environment variable that names the server when
// --server is not given.
const serverEnv = "GOETHE_SERVER"

// env is what a command reads and writes besides its arguments; main fills
// it with the process's, tests with buffers.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// stdinTTY says that stdin is a terminal: produce then tells the user
	// it reads lines.
	stdinTTY bool
}

// command is one subcommand.
type command struct {
	name    string
	args    string // the positional arguments, for the usage line
	summary string // one line for the command list
	help    string // paragraphs after the usage line
	// flags registers the command's flags on fs and returns the function
	// that runs it with the positional arguments.
	flags func(fs *flag.FlagSet, g *globals) func(ctx context.Context, e *env, args []string) error
	// nargs checks the number of positional arguments.
	nargs func(n int) bool
}

const serverUsage = "connect to the server at `ADDR`, host:port (default " + client.DefaultAddr + ", or $" + serverEnv + ")"

// globals are the flags every command has.
type globals struct {
	server   string
	security securityFlags // security.go: TLS and the bearer token
}

// usageError is a wrong command line: reported with a hint to the help,
// exit status 2.
type usageError struct {
	cmd string // "" for the top level
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// commands lists the subcommands in the order the help shows them.
var commands = []*command{produceCommand, consumeCommand, topicsCommand, topicCommand, topicInfoCommand, topicSetCommand,
	topicTrimCommand, topicDeleteCommand, cursorGetCommand, cursorSetCommand, clusterStatusCommand, clusterAddCommand,
	clusterRemoveCommand}

// commandGroups are the first words of two-word commands, with their
// subcommands as the usage error names them.
var commandGroups = map[string]string{
	"cursor":  `"cursor get" or "cursor set"`,
	"cluster": `"cluster status", "cluster add" or "cluster remove"`,
}

// lookupCommand finds the command named by the first one or two arguments
// ("cursor get") and returns it with the arguments that follow its name.
func lookupCommand(args []string) (*command, []string, error) {
	name := args[0]
	if name == "topic" && len(args) > 1 && slices.Contains(topicSubcommands, args[1]) {
		name, args = name+" "+args[1], args[1:]
	} else if subs, ok := commandGroups[name]; ok {
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			return nil, nil, usagef(name, `%q needs a subcommand: %s`, name, subs)
		}
		name, args = name+" "+args[1], args[1:]
	}
	for _, c := range commands {
		if c.name == name {
			return c, args[1:], nil
		}
	}
	if s := suggest(name); s != "" {
		return nil, nil, usagef("", "unknown command %q; did you mean %q?", name, s)
	}
	return nil, nil, usagef("", "unknown command %q", name)
}

// commandNames are every command a user can type, for suggest.
func commandNames() []string {
	names := []string{"bench", "help", "cursor"}
	for _, c := range commands {
		names = append(names, c.name)
	}
	return names
}

// suggest is the command name closest to a mistyped one, as git and the
// nats CLI suggest: within an edit distance of 2 (1 for names of up to 4
// bytes), or one that the typed name is a prefix of; "" when none is.
func suggest(typed string) string {
	best, bestDist := "", 0
	for _, name := range commandNames() {
		d := editDistance(typed, name)
		if strings.HasPrefix(name, typed) && len(typed) >= 2 {
			d = min(d, 1)
		}
		if limit := min(2, max(1, len(typed)/3)); d <= limit && (best == "" || d < bestDist) {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the edit distance of a and b, by bytes, in which a
// swap of two neighbours counts as one edit (optimal string alignment):
// "benhc" is 1 from "bench".
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// run runs the command line args (without the program name) and returns
// the exit status. Errors are written to e.stderr as one line.
func run(ctx context.Context, args []string, e *env) int {
	err := dispatch(ctx, args, e)
	switch ue := (*usageError)(nil); {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		hint := "goethectl help"
		if ue.cmd != "" {
			hint += " " + ue.cmd
		}
		fmt.Fprintf(e.stderr, "goethectl: %s (see %q)\n", ue.msg, hint)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "goethectl: %s\n", oneLine(err.Error()))
		return exitError
	}
}

func dispatch(ctx context.Context, args []string, e *env) error {
	g := &globals{server: client.DefaultAddr}
	if s := e.getenv(serverEnv); s != "" {
		g.server = s
	}
	g.security.fromEnv(e.getenv)
	top := flag.NewFlagSet("goethectl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	top.StringVar(&g.server, "server", g.server, "")
	top.StringVar(&g.server, "s", g.server, "")
	var version bool
	top.BoolVar(&version, "version", false, "")
	g.security.register(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(e.stdout)
			return err
		}
		return usagef("", "%s", flagMessage(err))
	}
	args = top.Args()
	if version {
		fmt.Fprintf(e.stdout, "goethectl %s\n", buildinfo.Read())
		return nil
	}
	if len(args) == 0 {
		writeUsage(e.stderr)
		return usagef("", "no command given")
	}
	if args[0] == "help" {
		return help(e, args[1:])
	}
	if args[0] == "bench" {
		return runBench(ctx, args[1:], e.stdout, e.stderr, g)
	}
	cmd, args, err := lookupCommand(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.server, "server", g.server, serverUsage)
	fs.StringVar(&g.server, "s", g.server, "short for --server")
	g.security.register(fs)
	runCmd := cmd.flags(fs, g)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		writeCommandUsage(e.stdout, cmd)
		return err
	}
	if err != nil {
		return usagef(cmd.name, "%s: %s", cmd.name, flagMessage(err))
	}
	if !cmd.nargs(len(pos)) {
		return usagef(cmd.name, "usage: goethectl %s %s", cmd.name, cmd.args)
	}
	return runCmd(ctx, e, pos)
}

// parseInterspersed parses flags anywhere among the arguments, as people
// type them ("consume orders --follow"), and returns the positional
// arguments in order. "--" ends the flags: every argument after it is
// positional, also one that begins with "-". An argument that begins with
// "-" and a digit, such as the time ago "-5m", is no flag (no flag's name
// begins with a digit): it is positional, unless it is a flag's value.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			// The flag package consumed the argument it failed on.
			rest := fs.Args()
			i := len(args) - len(rest) - 1
			if i < 0 || !dashDigit(args[i]) || i > 0 && takesValue(fs, args[i-1]) {
				return nil, err
			}
			pos = append(pos, args[i])
			args = rest
			continue
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// dashDigit reports whether arg is "-" and a digit, a negative number or a
// time ago.
func dashDigit(arg string) bool {
	return len(arg) > 1 && arg[0] == '-' && arg[1] >= '0' && arg[1] <= '9'
}

// takesValue reports whether arg is a flag of fs that takes the next
// argument as its value ("--from", not "--from=x" nor a bool flag).
func takesValue(fs *flag.FlagSet, arg string) bool {
	name, ok := strings.CutPrefix(strings.TrimPrefix(arg, "-"), "-")
	if !ok {
		name = strings.TrimPrefix(arg, "-")
	}
	if !strings.HasPrefix(arg, "-") || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, isBool := f.Value.(interface{ IsBoolFlag() bool })
	return !isBool || !b.IsBoolFlag()
}

// flagMessage is the flag package's error, which says what is wrong.
func flagMessage(err error) string {
	// "flag provided but not defined: -x" and "invalid value "y" for flag
	// -x" read better with the dashes people type.
	msg := err.Error()
	if loc := flagName.FindStringIndex(msg); loc != nil {
		msg = msg[:loc[1]-1] + "-" + msg[loc[1]-1:]
	}
	return msg
}

// flagName finds the flag's name in the flag package's errors, up to its
// dash.
var flagName = regexp.MustCompile(`(flag |for |: )-`)

// oneLine keeps an error message on one line of standard error.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func help(e *env, args []string) error {
	if len(args) == 0 {
		writeUsage(e.stdout)
		return nil
	}
	if len(args) == 1 && args[0] == "bench" {
		writeBenchUsage(e.stdout)
		return nil
	}
	if len(args) == 1 && args[0] == "help" {
		io.WriteString(e.stdout, helpUsage)
		return nil
	}
	if len(args) == 1 && args[0] == "cursor" {
		writeCommandUsage(e.stdout, cursorGetCommand)
		io.WriteString(e.stdout, "\n")
		writeCommandUsage(e.stdout, cursorSetCommand)
		return nil
	}
	if len(args) == 1 && args[0] == "cluster" {
		writeCommandUsage(e.stdout, clusterStatusCommand)
		return nil
	}
	cmd, _, err := lookupCommand(args)
	if err != nil {
		return err
	}
	writeCommandUsage(e.stdout, cmd)
	return nil
}

const helpUsage = `Usage: goethectl help [COMMAND]

Shows goethectl's commands and global flags, or with COMMAND ("consume",
"cursor set", "help") that command's usage and flags. "goethectl COMMAND -h"
shows the same.
`

const usageHead = `goethectl is the command line of a Goethe event log server.

Usage:
  goethectl [--server ADDR] COMMAND ARGS [FLAGS]

Commands:
`

const usageTail = `
Global flags:
  --version       print goethectl's version, commit and Go version
  -s, --server ADDR
                  connect to the server at ADDR, host:port
                  (default 127.0.0.1:7420, or $GOETHE_SERVER)
` + securityUsage + `
Flags may come before or after the arguments; "--" ends the flags, so that
"goethectl produce orders -- -1" produces the payload "-1".
Run "goethectl help COMMAND" for a command's flags.
`

func writeUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString(usageHead)
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name)+1+len(c.args))
	}
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name+" "+c.args, c.summary)
	}
	fmt.Fprintf(&b, "  %-*s  %s\n", width, "bench [FLAGS]", "generate load and report throughput and latency")
	fmt.Fprintf(&b, "  %-*s  %s\n", width, "help [COMMAND]", "show this help, or a command's")
	b.WriteString(usageTail)
	io.WriteString(w, b.String())
}

func writeCommandUsage(w io.Writer, cmd *command) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: goethectl %s [FLAGS]\n\n%s\n\nFlags:\n", strings.TrimSpace(cmd.name+" "+cmd.args), strings.TrimSpace(cmd.help))
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.StringVar(new(string), "server", client.DefaultAddr, serverUsage)
	fs.StringVar(new(string), "s", client.DefaultAddr, "short for --server")
	cmd.flags(fs, &globals{})
	// A short flag ("-f", usage "short for --from") is shown with its long
	// one.
	short := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if long, ok := strings.CutPrefix(f.Usage, shortPrefix); ok {
			short[long] = f.Name
		}
	})
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, shortPrefix) {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		b.WriteString("  ")
		if s, ok := short[f.Name]; ok {
			fmt.Fprintf(&b, "-%s, ", s)
		}
		fmt.Fprintf(&b, "--%s", f.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		switch f.DefValue {
		case "", "0", "0s", "false", client.DefaultAddr:
		default:
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(&b, "\n      %s\n", usage)
	})
	io.WriteString(w, b.String())
}

// shortPrefix begins the usage of a short flag, an alias that
// writeCommandUsage shows with its long flag.
const shortPrefix = "short for --"

// exactly and atLeast are nargs checks.
func exactly(n int) func(int) bool { return func(k int) bool { return k == n } }
func atLeast(n int) func(int) bool { return func(k int) bool { return k >= n } }

// dial connects to the server named by the flags. The client does not
// connect until its first call.
func dial(g *globals) (*client.Client, error) {
	opts, err := g.security.options()
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(g.server, opts...)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", g.server, err)
	}
	return c, nil
}
