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
	"time"

	"github.com/goethe-log/goethe/client"

	"github.com/goethe-log/goethe/loadgen"
)

// benchHelp is the help of "goethectl bench", after its usage line.
const benchHelp = `
Runs a load against the server and reports events/s and MB/s produced and
consumed, latency percentiles (p50, p90, p99, p99.9, max) of each Produce
call and, with --consumers, of each event from its send time to its
receipt by a consumer, and the CPU time this process spent per event.

--producers N producers (each with --inflight W calls in flight) send
batches of --batch B events of --size S bytes until --events TOTAL are sent
or for --duration D. Producer p writes topic PREFIX-(p mod K) of --topics K.
--consumers M follow the topics from their end (consumer c reads
PREFIX-(c mod K)), each on a connection of its own, and must receive every
event.

--mode says how the producers reach the server (the output states it):
  async   (default) the N×W producer goroutines share --connections C client
          connections (default 1), each with one asynchronous Producer, and
          each goroutine waits for its own call's answer, as an
          application's goroutines sharing one client would; calls to one
          topic made while one is in flight go out merged in one request.
  stream  each producer goroutine has a connection and a ProduceStream of
          its own, with one call in flight on it (--connections C shares C
          connections between the streams instead).
  unary   each producer goroutine has a connection of its own (or shares one
          of C) and makes one unary Produce call per batch.
--pipelined sends each call's B events as B single-event requests, all in
flight, then waits for all of them (JetStream's PublishAsync, a Redis
pipeline); the async Producer merges them as it merges any calls.

--rate R offers R events/s in all on a fixed schedule: latencies count from
when each call was due, so a server that falls behind shows its queueing
delay (no coordinated omission).

--read-back produces nothing: M consumers read TOTAL events in all from the
start of the topics, as fast as they can (run a produce bench with the same
--topic-prefix and --topics and --keep first).

A produce run deletes the topics it created when it ends (needs the admin
permission when the server checks tokens), unless --keep; topics that
existed before the run are never deleted.

A progress bar is drawn on standard error when it is a terminal; the
results go to standard output, as a table or, with --json, as one JSON
document. An incomplete run (a failed call, events a consumer did not
receive) still prints its figures, then fails.`

// benchOptions are bench's flags that are not loadgen.Config's.
type benchOptions struct {
	server      string
	mode        string
	connections int
	json        bool
	keep        bool
}

// runBench runs "goethectl bench" with args, the arguments after "bench",
// against the server at g.server (which --server overrides), with g's TLS
// and token (which the global flags set, before "bench").
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer, g *globals) error {
	cfg := loadgen.DefaultConfig()
	o := benchOptions{server: g.server, mode: string(loadgen.GoetheAsync)}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	benchFlags(fs, &cfg, &o)
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
	mode := loadgen.GoetheMode(o.mode)
	switch mode {
	case loadgen.GoetheAsync, loadgen.GoetheStream, loadgen.GoetheUnary:
	default:
		return usagef("bench", "bench: --mode %q: want %s, %s or %s", o.mode, loadgen.GoetheAsync, loadgen.GoetheStream, loadgen.GoetheUnary)
	}
	if o.connections < 0 {
		return usagef("bench", "bench: --connections %d: want 1 or more (0: the mode's default)", o.connections)
	}
	if err := cfg.Validate(); err != nil {
		return usagef("bench", "bench: %s", strings.TrimPrefix(err.Error(), loadgen.ErrInvalidConfig.Error()+": "))
	}
	server := o.server
	copts, err := g.security.options()
	if err != nil {
		return err
	}
	cfg.Label = fmt.Sprintf("goethe at %s, client mode %s: %s", server, mode, shapeOf(mode, o.connections, cfg.ReadBack))

	// The topics a produce run creates are deleted when it ends, unless
	// --keep: a bench leaves no data behind, and never deletes a topic
	// that was there before it.
	var created []string
	if !cfg.ReadBack && !o.keep {
		if created, err = absentTopics(ctx, server, copts, cfg); err != nil {
			return benchError(err, server)
		}
		defer func() {
			if derr := deleteTopics(server, copts, created); derr != nil {
				fmt.Fprintf(stderr, "goethectl: bench: the run's topics were not all deleted: %v\n", oneLine(derr.Error()))
			}
		}()
	}
	open := loadgen.GoetheOpenerWith(server, loadgen.GoetheOptions{Mode: mode, Connections: o.connections, Client: copts})
	res, err := loadgen.Run(ctx, open, cfg, progressWriter(stderr))
	if res.Started.IsZero() && err != nil {
		return benchError(err, server) // nothing ran: no figures to show
	}
	var werr error
	if o.json {
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

// absentTopics returns the run's topics that do not exist yet.
func absentTopics(ctx context.Context, server string, opts []client.Option, cfg loadgen.Config) ([]string, error) {
	c, err := client.Dial(server, opts...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var absent []string
	for i := range cfg.Topics {
		_, err := c.Topic(ctx, cfg.Topic(i))
		switch {
		case errors.Is(err, client.ErrNotFound):
			absent = append(absent, cfg.Topic(i))
		case err != nil:
			return nil, err
		}
	}
	return absent, nil
}

// deleteTopics deletes topics, also after an interrupted run: it has a
// context of its own, bounded.
func deleteTopics(server string, opts []client.Option, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(server, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	var errs []error
	for _, t := range topics {
		if err := c.DeleteTopic(ctx, t); err != nil && !errors.Is(err, client.ErrNotFound) {
			errs = append(errs, fmt.Errorf("%s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// shapeOf says in words how a run's producers reach the server.
func shapeOf(mode loadgen.GoetheMode, connections int, readBack bool) string {
	if readBack {
		return "consumers only, a connection each"
	}
	conns := "a connection per producer goroutine"
	if connections > 0 || mode == loadgen.GoetheAsync {
		conns = fmt.Sprintf("producer goroutines share %d connection", max(connections, 1))
		if connections > 1 {
			conns += "s"
		}
	}
	switch mode {
	case loadgen.GoetheAsync:
		return conns + ", one asynchronous Producer on each; each goroutine waits for its own answers"
	case loadgen.GoetheStream:
		return conns + ", a ProduceStream per goroutine"
	}
	return conns + ", a unary call per batch"
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

// benchFlags registers bench's flags on fs, writing to cfg and o.
func benchFlags(fs *flag.FlagSet, cfg *loadgen.Config, o *benchOptions) {
	fs.StringVar(&o.server, "server", o.server, "the server's `ADDR`ess, host:port (env "+serverEnv+")")
	fs.StringVar(&o.mode, "mode", o.mode, "how producers reach the server: `MODE` async, stream or unary (see above)")
	fs.IntVar(&o.connections, "connections", 0, "spread the producers over `C` client connections (0: 1 in async mode, one per producer goroutine otherwise)")
	fs.IntVar(&cfg.Producers, "producers", cfg.Producers, "`N` producers")
	fs.IntVar(&cfg.Inflight, "inflight", cfg.Inflight, "`W` concurrent Produce calls per producer, each from its own goroutine")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "`B` events per Produce call")
	fs.BoolVar(&cfg.Pipelined, "pipelined", false, "send each call's B events as single-event requests, all in flight, then wait for all")
	fs.IntVar(&cfg.Size, "size", cfg.Size, fmt.Sprintf("`S` bytes of payload per event (at least %d)", loadgen.MinSize))
	fs.Int64Var(&cfg.Events, "events", cfg.Events, "produce (or read back) `TOTAL` events in all")
	fs.DurationVar(&cfg.Duration, "duration", 0, "produce for `D` (such as 30s) instead of a number of events")
	fs.IntVar(&cfg.Topics, "topics", cfg.Topics, "spread producers round robin over `K` topics")
	fs.IntVar(&cfg.Consumers, "consumers", cfg.Consumers, "`M` consumers following the topics, measuring end-to-end latency")
	fs.Float64Var(&cfg.Rate, "rate", 0, "offer `R` events/s in all on a fixed schedule (0: as fast as acknowledged)")
	fs.BoolVar(&cfg.ReadBack, "read-back", false, "produce nothing: consumers read back --events from the topics' start")
	fs.StringVar(&cfg.TopicPrefix, "topic-prefix", cfg.TopicPrefix, "name the topics `PREFIX`-0 … PREFIX-(K-1)")
	fs.BoolVar(&o.json, "json", false, "write the results as one JSON document")
	fs.BoolVar(&o.keep, "keep", false, "keep the topics a produce run created (to --read-back them later); by default they are deleted at its end")
}

func writeBenchUsage(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: goethectl bench [FLAGS]\n\n%s\n\nFlags:\n", strings.TrimSpace(benchHelp))
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg, o := loadgen.DefaultConfig(), benchOptions{server: "127.0.0.1:7420", mode: string(loadgen.GoetheAsync)}
	benchFlags(fs, &cfg, &o)
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
