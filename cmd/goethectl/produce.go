package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"strconv"
	"time"

	"github.com/goethe-log/goethe/client"
)

// Batching of standard input: a batch is sent when it holds maxLines lines
// (--batch) or maxBatchBytes bytes, when --linger has passed since its
// first line, or at the end of the input.
const (
	defaultBatchLines = 1000
	maxBatchLines     = 10_000 // the server's default limit per Produce
	maxBatchBytes     = 4 << 20
	defaultLinger     = 20 * time.Millisecond
)

var produceCommand = &command{
	name:    "produce",
	args:    "TOPIC [PAYLOAD...]",
	summary: "append events: one per PAYLOAD, or one per line of standard input",
	help: `
Appends events to TOPIC, creating it on its first event, and prints each
event's id, one per line (with --json, {"id":"…","seq":…} objects).

With PAYLOAD arguments, each one is an event and they are stored together,
atomically. Without, every line of standard input is an event (its payload
is the line without its end of line, "\n" or "\r\n"; an empty line is an
empty event). Lines are sent in batches (--batch, --linger); each batch is
atomic and its ids are printed once it is stored.

With --json, every line of standard input is an event as consume --json
prints it, so that "consume A --json | produce B --json" copies a topic:
  {"headers":{"k":"v"},"payload":"text"}     or "payload_base64":"AAE="
"topic", "id", "seq" and "time" may be present and are ignored (the
server assigns new ones); other fields, a line that is not one JSON object,
and both payloads at once are errors that stop the input at that line.
--header values are added to every event's headers, replacing a header of
the same key. PAYLOAD arguments are payloads, with or without --json.

--expect-seq N stores the events only if the topic's last seq is N (0: a
new or empty topic); otherwise nothing is stored and the error says the
actual last seq. With standard input, the first batch expects N and each
following batch the last seq of the one before, so that the input is
appended as a whole only while no one else writes to the topic.

Safe retries: every event gets a dedupe key (a random prefix of this run
and a counter; a line read with --json keeps its own "dedupe_key"), and a
batch the server could not be reached for (UNAVAILABLE: a restart, a
broken connection) is sent again with backoff, 50 ms doubling to 2 s,
jittered, for up to a minute. The server stores an event whose key it
stored within its --dedupe-window (2 minutes by default) once, and answers
with the original's id: so a retry never stores a line twice, and the ids
printed are those stored. --retry=false sends no keys and fails at once.`,
	nargs: atLeast(1),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		o := &produceOptions{headers: headerFlag{}}
		fs.Var(o.headers, "header", "add the header `key=value` to every event; repeat for more")
		fs.Var(o.headers, "H", "short for --header")
		fs.Var(&o.expect, "expect-seq", "store only if the topic's last seq is `N` (0: a new or empty topic)")
		fs.BoolVar(&o.json, "json", false, `read standard input as consume --json's objects, and print {"id":"…","seq":…} objects instead of ids`)
		fs.BoolVar(&o.json, "j", false, "short for --json")
		fs.IntVar(&o.batch, "batch", defaultBatchLines, "send standard input in batches of up to `N` lines, at most 10000")
		fs.DurationVar(&o.linger, "linger", defaultLinger, "send a batch of standard input at the latest `DURATION` after its first line")
		fs.BoolVar(&o.retry, "retry", true, "give every event a dedupe key and, when the server is unavailable, retry a batch with backoff\n"+
			"until it is stored once (--retry=false: no keys, fail at once)")
		return func(ctx context.Context, e *env, args []string) error {
			return o.run(ctx, e, g, args[0], args[1:])
		}
	},
}

type produceOptions struct {
	headers headerFlag
	expect  seqFlag
	json    bool
	batch   int
	linger  time.Duration
	retry   bool
}

// producer sends batches and prints their ids.
type producer struct {
	c      *client.Client
	topic  string
	o      *produceOptions
	out    *bufio.Writer
	expect seqFlag       // the expectation of the next batch
	key    func() string // with --retry: makes the events' dedupe keys
}

// retryBackoff is how produce --retry waits: 50 ms doubling to 2 s,
// jittered, for at most a minute, well within the server's default dedupe
// window of two minutes.
var retryBackoff = client.Backoff{Initial: client.DefaultBackoffInitial, Max: client.DefaultBackoffMax,
	MaxElapsed: client.DefaultProducerRetryTime}

func (o *produceOptions) run(ctx context.Context, e *env, g *globals, topic string, payloads []string) error {
	if o.batch < 1 || o.batch > maxBatchLines {
		return usagef("produce", "--batch %d: want 1 to %d lines", o.batch, maxBatchLines)
	}
	if o.linger < 0 {
		return usagef("produce", "--linger %s: want a duration from 0", o.linger)
	}
	c, err := dial(g)
	if err != nil {
		return err
	}
	defer c.Close()
	p := &producer{c: c, topic: topic, o: o, out: bufio.NewWriter(e.stdout), expect: o.expect}
	if o.retry {
		p.key = client.NewKeys()
	}
	if len(payloads) > 0 {
		events := make([]client.EventData, len(payloads))
		for i, s := range payloads {
			events[i] = p.event([]byte(s))
		}
		err := p.send(ctx, events)
		if err != nil && !refused(err) {
			return fmt.Errorf("%w; the events may or may not be stored", explain(err, g.server))
		}
		return explain(err, g.server)
	}
	if e.stdinTTY {
		fmt.Fprintln(e.stderr, "goethectl: reading events from standard input, one per line; end with Ctrl-D")
	}
	return p.fromReader(ctx, e.stdin, g.server)
}

// event makes an event of payload with the --header headers. The events of
// one produce share the header map: the client only reads it.
func (p *producer) event(payload []byte) client.EventData {
	ev := client.EventData{Payload: payload}
	if len(p.o.headers) > 0 {
		ev.Headers = p.o.headers
	}
	if p.key != nil {
		ev.DedupeKey = p.key()
	}
	return ev
}

// send produces one batch and prints its ids. Its error is the client's.
func (p *producer) send(ctx context.Context, events []client.EventData) error {
	var opts []client.ProduceOption
	if p.expect.set {
		opts = append(opts, client.ExpectLastSeq(p.expect.n))
	}
	var res client.ProduceResult
	attempt := func() error {
		var err error
		res, err = p.c.Produce(ctx, p.topic, events, opts...)
		return err
	}
	var err error
	if p.key != nil {
		// The events carry keys: a retry of a batch stored before the
		// connection broke is answered with its events' ids, not stored
		// again.
		err = p.c.Retry(ctx, retryBackoff, attempt)
	} else {
		err = attempt()
	}
	if err != nil {
		return err
	}
	var last uint64
	for i := range events {
		id, seq := res.Position(i) // a duplicate's is the original's
		last = max(last, seq)
		if p.o.json {
			fmt.Fprintf(p.out, `{"id":"%d","seq":%d}`+"\n", id, seq)
		} else {
			p.out.WriteString(strconv.FormatUint(id, 10))
			p.out.WriteByte('\n')
		}
	}
	if p.expect.set {
		p.expect.n = last
	}
	return p.out.Flush()
}

// refused reports whether a failed Produce's outcome is known: the server
// refused it, so nothing was stored. Any other failure (the connection, a
// cancel) leaves the batch maybe stored.
func refused(err error) bool {
	return errors.Is(err, client.ErrInvalidArgument) || errors.Is(err, client.ErrConflict) ||
		errors.Is(err, client.ErrTooLarge) || errors.Is(err, client.ErrNotFound) ||
		// The token is checked before anything is stored.
		errors.Is(err, client.ErrUnauthenticated) || errors.Is(err, client.ErrPermissionDenied)
}

// fromReader produces one event per line of in, in batches, until the end
// of in or ctx. An interrupt while waiting for input ends it cleanly; one
// with lines read but not yet acknowledged is an error that says which.
func (p *producer) fromReader(ctx context.Context, in io.Reader, server string) error {
	lines := make(chan client.EventData, p.o.batch)
	var readErr error // set before lines is closed
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(lines)
		r := bufio.NewReaderSize(in, 64<<10)
		for n := 1; ; n++ {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				ev, derr := p.lineEvent(trimEOL(line))
				if derr != nil {
					readErr = &lineError{line: n, err: derr}
					return
				}
				select {
				case lines <- ev:
				case <-done:
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = err
				}
				return
			}
		}
	}()

	lineNo := 0 // the number of the last line taken
	for {
		batch, eof := p.gather(ctx, lines)
		first := lineNo + 1
		lineNo += len(batch)
		where := fmt.Sprintf("line %d", first)
		if len(batch) > 1 {
			where = fmt.Sprintf("lines %d-%d", first, lineNo)
		}
		if ctx.Err() != nil {
			if len(batch) > 0 {
				return fmt.Errorf("%w: %s read but not sent", errInterrupted, where)
			}
			return nil
		}
		if len(batch) > 0 {
			if err := p.send(ctx, batch); err != nil {
				if refused(err) {
					return fmt.Errorf("%s not stored: %w", where, explain(err, server))
				}
				return fmt.Errorf("%s may or may not be stored: %w", where, explain(err, server))
			}
		}
		if eof {
			var le *lineError
			switch {
			case errors.As(readErr, &le) && lineNo == 0:
				return fmt.Errorf("%w; nothing was stored", readErr)
			case errors.As(readErr, &le) && lineNo == 1:
				return fmt.Errorf("%w; line 1 was stored", readErr)
			case errors.As(readErr, &le):
				return fmt.Errorf("%w; lines 1-%d were stored", readErr, lineNo)
			case readErr != nil:
				return fmt.Errorf("reading standard input after line %d: %w", lineNo, readErr)
			}
			return nil
		}
	}
}

// gather takes the next batch of lines: it waits for a first line, then
// takes what is queued and waits for more up to --linger, until the batch is
// full. eof says that lines is closed; ctx ending returns what was taken.
func (p *producer) gather(ctx context.Context, lines <-chan client.EventData) (batch []client.EventData, eof bool) {
	size := 0
	add := func(ev client.EventData) {
		batch = append(batch, ev)
		size += len(ev.Payload)
		for k, v := range ev.Headers {
			size += len(k) + len(v)
		}
	}
	select {
	case line, ok := <-lines:
		if !ok {
			return nil, true
		}
		add(line)
	case <-ctx.Done():
		return nil, false
	}
	linger := time.NewTimer(p.o.linger)
	defer linger.Stop()
	for len(batch) < p.o.batch && size < maxBatchBytes {
		// Take what is queued first, so that a zero linger still sends
		// full batches of a fast input.
		select {
		case line, ok := <-lines:
			if !ok {
				return batch, true
			}
			add(line)
			continue
		default:
		}
		select {
		case line, ok := <-lines:
			if !ok {
				return batch, true
			}
			add(line)
		case <-linger.C:
			return batch, false
		case <-ctx.Done():
			return batch, false
		}
	}
	return batch, false
}

// trimEOL removes a line's "\n" or "\r\n".
func trimEOL(line []byte) []byte {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
		if n > 0 && line[n-1] == '\r' {
			n--
		}
	}
	return line[:n]
}

// lineEvent makes the event of one line of standard input: the line is the
// payload, or with --json a JSON object as consume --json prints it.
func (p *producer) lineEvent(line []byte) (client.EventData, error) {
	if !p.o.json {
		return p.event(line), nil
	}
	ev, err := readJSONEvent(line)
	if err != nil {
		return client.EventData{}, err
	}
	if len(p.o.headers) > 0 {
		if ev.Headers == nil {
			ev.Headers = make(map[string]string, len(p.o.headers))
		}
		maps.Copy(ev.Headers, p.o.headers)
	}
	if ev.DedupeKey == "" && p.key != nil {
		ev.DedupeKey = p.key()
	}
	return ev, nil
}

// lineError is a line of standard input that is not an event.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }
