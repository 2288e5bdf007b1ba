package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/goethe-log/goethe/loadgen"
)

// benchHelp is the help of "goethectl bench", after its usage line.
const benchHelp = `
Runs a load against the server and reports events/s and MB/s produced and
consumed, and latency percentiles (p50, p90, p99, p99.9, max) of each
Produce call and, with --consumers, of each event from its send time to its
receipt by a consumer.

--producers N producers (each with --inflight W calls in flight, each call
on its own connection) send batches of --batch B events of --size S bytes
until --events TOTAL are sent or for --duration D. Producer p writes topic
PREFIX-(p mod K) of --topics K. --consumers M follow the topics from their
end (consumer c reads PREFIX-(c mod K)) and must receive every event.

--rate R offers R events/s in all on a fixed schedule: latencies count from
when each call was due, so a server that falls behind shows its queueing
delay (no coordinated omission).

--read-back produces nothing: M consumers read TOTAL events in all from the
start of the topics, as fast as they can (run a produce bench with the same
--topic-prefix and --topics first).

A progress bar is drawn on standard error when it is a terminal; the
results go to standard output, as a table or, with --json, as one JSON
document. An incomplete run (a failed call, events a consumer did not
receive) still prints its figures, then fails.`

// runBench runs "goethectl bench" with args, the arguments after "bench",
// against the server at server (which --server overrides).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer, server string) error {
	cfg := loadgen.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	jsonOut := benchFlags(fs, &cfg, &server)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeBenchUsage(stdout)
			return err
		}
		return usagef("bench", "bench: %s", flagMessage(err))
	}
	if fs.NArg() > 0 {
		return usagef("bench", "bench takes no arguments, only flags: %q", fs.Arg(0))
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["duration"] && !set["events"] {
		cfg.Events = 0 // --duration replaces the default event count
	}
	if err := cfg.Validate(); err != nil {
		return usagef("bench", "bench: %s", strings.TrimPrefix(err.Error(), loadgen.ErrInvalidConfig.Error()+": "))
	}
	cfg.Label = "goethe at " + server

	res, err := loadgen.Run(ctx, loadgen.GoetheOpener(server), cfg, progressWriter(stderr))
	if res.Started.IsZero() && err != nil {
		return benchError(err, server) // nothing ran: no figures to show
	}
	var werr error
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		werr = enc.Encode(res)
	} else {
		werr = res.WriteText(stdout)
	}
	if err != nil {
		return benchError(err, server)
	}
	return werr
}

// progressWriter is where the progress bar goes: stderr, unless it is a
// file that is not a terminal (a log), which would fill with redraws.
func progressWriter(stderr io.Writer) io.Writer {
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			return nil
		}
	}
	return stderr
}

// benchFlags registers bench's flags on fs, writing to cfg and server, and
// returns the --json flag.
func benchFlags(fs *flag.FlagSet, cfg *loadgen.Config, server *string) *bool {
	fs.StringVar(server, "server", *server, "the server's `ADDR`ess, host:port (env "+serverEnv+")")
	fs.IntVar(&cfg.Producers, "producers", cfg.Producers, "`N` producers")
	fs.IntVar(&cfg.Inflight, "inflight", cfg.Inflight, "`W` concurrent Produce calls per producer, each on its own connection")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "`B` events per Produce call")
	fs.IntVar(&cfg.Size, "size", cfg.Size, fmt.Sprintf("`S` bytes of payload per event (at least %d)", loadgen.MinSize))
	fs.Int64Var(&cfg.Events, "events", cfg.Events, "produce (or read back) `TOTAL` events in all")
	fs.DurationVar(&cfg.Duration, "duration", 0, "produce for `D` (such as 30s) instead of a number of events")
	fs.IntVar(&cfg.Topics, "topics", cfg.Topics, "spread producers round robin over `K` topics")
	fs.IntVar(&cfg.Consumers, "consumers", cfg.Consumers, "`M` consumers following the topics, measuring end-to-end latency")
	fs.Float64Var(&cfg.Rate, "rate", 0, "offer `R` events/s in all on a fixed schedule (0: as fast as acknowledged)")
	fs.BoolVar(&cfg.ReadBack, "read-back", false, "produce nothing: consumers read back --events from the topics' start")
	fs.StringVar(&cfg.TopicPrefix, "topic-prefix", cfg.TopicPrefix, "name the topics `PREFIX`-0 … PREFIX-(K-1)")
	return fs.Bool("json", false, "write the results as one JSON document")
}

func writeBenchUsage(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: goethectl bench [FLAGS]\n\n%s\n\nFlags:\n", strings.TrimSpace(benchHelp))
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg, server := loadgen.DefaultConfig(), "127.0.0.1:7420"
	benchFlags(fs, &cfg, &server)
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(&b, "\n      %s\n", usage)
	})
	_, _ = io.WriteString(w, b.String())
}

// benchError explains a failed run: the server's words for a failed call,
// the harness's own otherwise.
func benchError(err error, server string) error {
	switch {
	case errors.Is(err, context.Canceled):
		return errInterrupted
	case errors.Is(err, loadgen.ErrIncomplete), errors.Is(err, loadgen.ErrTooManyErrors):
		return err
	}
	return explain(err, server)
}
