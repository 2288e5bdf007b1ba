// Command goethe is the Goethe server: an append-only event log served over
// gRPC (service goethe.v1.Goethe, with gRPC health checks and server
// reflection) on the embedded storage engine of your choice.
//
//	goethe [--engine leveldb|pebble|bolt] [--data-dir ./goethe-data]
//	       [--listen 127.0.0.1:7420] [--sync=true] [--max-event-bytes N]
//	       [--max-batch-events N] [--log-format text|json]
//	       [--metrics-listen 127.0.0.1:9420]
//	goethe check --data-dir D [--engine E] [--json]
//	goethe hash-token < token
//	goethe --version
//
// Every flag has an environment variable, GOETHE_ and its name in upper case
// with _ for - (GOETHE_ENGINE, GOETHE_DATA_DIR, ...). A variable sets the
// flag's default; the flag on the command line wins.
//
// The data folder records the engine that made it (a file named ENGINE; the
// engine's files are in a subfolder named after it) and is refused by any
// other engine. With --sync (the default) an acknowledged event is on disk;
// --sync=false is faster but a machine crash can lose acknowledged events.
//
// goethe check verifies a stopped data folder (see runCheck): exit status 0
// clean, 1 problems found, 2 bad flags or the folder cannot be checked.
//
// --tls-cert and --tls-key serve gRPC and metrics over TLS (1.2 at least);
// --tls-client-ca requires client certificates of its CAs (mutual TLS).
// --auth-file requires a bearer token on every call but health checks and
// reflection, with read, write or admin permission over topic patterns
// (see server.AuthFile); goethe hash-token prints the hash a token is
// stored as. Listening on an address that is not loopback without TLS, or
// without --auth-file, logs a warning. Data files are created 0600 and
// folders 0700 (umask 077), and an older folder's modes are tightened.
//
// --metrics-listen (off by default) serves Prometheus metrics over HTTP at
// /metrics on its own address: gRPC calls, Consume streams, the store's
// group commits, the Go runtime and the process (see server.Metrics). No
// metric has a topic or consumer label.
//
// Memory and connections are bounded by flags with sane defaults (see
// config_limits.go and goethe -h): --max-inflight-bytes (256 MiB of produce
// requests in flight; past it RESOURCE_EXHAUSTED, MEMORY_BUDGET),
// --max-concurrent-streams per connection (256), --max-connections (1024),
// --handshake-timeout (10s), keepalive enforcement and pings
// (--keepalive-min-time, --keepalive-time, --keepalive-timeout,
// --max-connection-idle), and --slow-consumer-timeout (30s): a Consume
// stream whose client has not read for that long ends with
// RESOURCE_EXHAUSTED (SLOW_CONSUMER). Until then a stalled follower holds
// one page of events and its encoding in the server (the HTTP/2 window of
// 4 MiB holds what is on its way to the client).
// The budget counts requests once taken: gRPC reads each request whole
// before it can be refused, so a burst of large requests on many
// connections is bounded by --max-connections × --max-concurrent-streams
// × the largest request, transiently. Setting the Go runtime's GOMEMLIMIT
// (e.g. GOMEMLIMIT=1GiB) keeps the garbage collector's headroom over such
// bursts small; e2e TestSoak runs so.
//
// SIGINT or SIGTERM stops the server gracefully: it stops accepting, ends
// streams, finishes the calls in flight, and closes the data folder. A
// follower that does not read is ended at once too; its connection is
// closed after --stop-grace (5s), and the exit status is still 0. Only calls
// still running 30 s after the signal are cut, and the exit status is then
// 1. A second signal kills it at once. Errors are one line on stderr and a
// non-zero exit status: 2 for bad flags or environment, 1 otherwise.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/goethe-log/goethe/internal/buildinfo"
)

// subcommands are the tools goethe runs instead of the server, as
// "goethe <name> ...": each has its case in main and its line in goethe -h.
var subcommands = []struct{ name, synopsis string }{
	{"check", checkSynopsis},
	{"hash-token", hashTokenSynopsis},
}

// printSubcommands ends goethe -h with the subcommands.
func printSubcommands(w io.Writer) {
	fmt.Fprintf(w, "\nSubcommands:\n")
	for _, c := range subcommands {
		fmt.Fprintf(w, "  %s\n", c.synopsis)
	}
	fmt.Fprintf(w, "  goethe --version\n")
}

// printVersion prints goethe --version: the module version, the commit and
// the Go toolchain of this binary.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "goethe %s\n", buildinfo.Read())
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "check":
			os.Exit(runCheck(os.Args[2:], os.LookupEnv, os.Stdout, os.Stderr))
		case "hash-token":
			os.Exit(runHashToken(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case "--version", "-version", "version":
			printVersion(os.Stdout)
			os.Exit(exitOK)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stderr, nil))
}
