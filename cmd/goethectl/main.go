// Command goethectl is the command line of a Goethe event log server: it
// produces events, consumes a topic (following it live, resuming from a
// consumer's cursor, replaying from a seq, an id, a time or a time ago, up
// to an --until bound), copies topics through JSON lines (consume --json |
// produce --json), and shows topics and cursors. Run "goethectl help" for
// its usage, "goethectl --version" for its build.
//
// Every --json output prints event ids as JSON strings of digits: ids are
// nanosecond times, larger than 2^53, which JSON tools that read numbers
// as doubles (jq, JavaScript) would round.
//
// It talks to the server at --server ADDR, or $GOETHE_SERVER, or
// 127.0.0.1:7420. Errors are one line on standard error and a non-zero exit
// status: 1 for a failed command, 2 for a usage error.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one kills the process as usual.
	context.AfterFunc(ctx, stop)
	os.Exit(run(ctx, os.Args[1:], &env{
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		stdinTTY: isTerminal(os.Stdin),
	}))
}

// isTerminal reports whether f is a terminal. A character device that is
// not one (/dev/null, as under cron or systemd) is not: produce prints its
// "reading from standard input" hint only to a person at a terminal.
func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}
