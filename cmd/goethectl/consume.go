package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/goethe-log/goethe/client"
)

// Output and cursor commits of consume: the output is flushed whenever the
// events received so far are printed, or every flushEvery events; the
// cursor is committed in the background after a flush, one commit at a time,
// each for the newest event flushed, and once more at the end.
const (
	flushEvery    = 1000
	commitTimeout = 10 * time.Second
)

var consumeCommand = &command{
	name:    "consume",
	args:    "TOPIC",
	summary: "print a topic's events; follow, resume or replay it",
	help: `
Prints the events of TOPIC in order, one payload per line, or with --json
one JSON object per line:

  {"topic":"orders","id":"1767261600000000000","seq":1,"time":"2026-01-01T10:00:00.000000000Z","headers":{},"payload":"…"}

"id" is a string of digits, as in every --json output: ids are larger than
2^53, which tools that read JSON numbers as doubles (jq, JavaScript) round.
"time" is the time the server stored the event, which is also its id read
as nanoseconds since 1970 (RFC 3339, UTC). A payload that is not valid
UTF-8 is printed in "payload_base64" instead of "payload", base64-encoded.
Without --json, payloads are printed as they are, each followed by "\n".

--from (-o) says where to start:
  beginning    the first event (the default)
  end, now     only events stored from now on (with --follow)
  seq:N        the event with seq N (1 is the first)
  id:N         the events after the event with id N: pass the last id you
               processed; a bare id of 16 digits or more works too
  -5m, 2h, 3d  the first event stored that long ago or later
  TIME         the first event stored at or after an RFC 3339 time
An id or time that is not an event's lands on the next event; a seq past
the last starts at the end. A bare small number such as 3 is refused as
ambiguous: type seq:3 or id:3.

--until ends the consume after the last event at or before a position:
seq:N, id:N (or a long bare id), a time ago, an RFC 3339 time, or now. The
bound is inclusive: --until seq:5 prints seq 5 and stops. Without --follow,
consume also stops at the end of the topic; with it, consume waits for the
bound: it stops at once after the event with that seq or id, and for a
time once that time is two seconds past (ids are the server's clock, and a
commit takes a moment) and the events stored until then are printed. The
server ends the stream there (ConsumeRequest.until).

--consumer NAME without --from resumes after NAME's cursor, the id of the
last event it processed, stored by the server; from the beginning if NAME
has none. --commit stores NAME's cursor as events are printed: in batches,
never for an event before it is written out, and once more at the end, so
that the next "consume --consumer NAME" resumes after the last event
printed.

Without --follow, consume stops at the end of the topic. With --follow it
waits for new events and prints them as they are stored, until Ctrl-C, which
ends it cleanly (exit status 0, after storing the cursor with --commit).

When the server restarts or the connection fails, consume reconnects with
backoff (50 ms doubling to 2 s, jittered) and goes on after the last event
it printed, so that no event is printed twice or skipped; --reconnect=false
makes it fail instead (UNAVAILABLE).`,
	nargs: exactly(1),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		o := &consumeOptions{}
		fs.StringVar(&o.from, "from", "", "start at `POS`: beginning, end, seq:N, id:N, a time ago (-5m, 2h) or an RFC 3339 time")
		fs.StringVar(&o.from, "o", "", "short for --from")
		fs.StringVar(&o.until, "until", "", "stop after the last event at or before `POS`: seq:N, id:N, a time ago or an RFC 3339 time")
		fs.StringVar(&o.consumer, "consumer", "", "resume after the cursor of consumer `NAME` (without --from)")
		fs.StringVar(&o.consumer, "c", "", "short for --consumer")
		fs.BoolVar(&o.commit, "commit", false, "store the --consumer's cursor as events are printed")
		fs.BoolVar(&o.follow, "follow", false, "wait for new events at the end of the topic, until Ctrl-C")
		fs.BoolVar(&o.follow, "f", false, "short for --follow")
		fs.BoolVar(&o.reconnect, "reconnect", true, "when the server restarts or the connection fails, reconnect with backoff and go on after the last event printed (--reconnect=false: fail)")
		fs.Uint64Var(&o.limit, "limit", 0, "stop after `N` events (0: no limit)")
		fs.Uint64Var(&o.limit, "n", 0, "short for --limit")
		fs.BoolVar(&o.json, "json", false, "print one JSON object per event, with topic, id, seq, time, headers and payload")
		fs.BoolVar(&o.json, "j", false, "short for --json")
		return func(ctx context.Context, e *env, args []string) error {
			return o.run(ctx, e, g, args[0])
		}
	},
}

type consumeOptions struct {
	from      string
	until     string
	consumer  string
	commit    bool
	follow    bool
	reconnect bool
	limit     uint64
	json      bool
}

// start is where the stream begins, from --from and --consumer.
func (o *consumeOptions) start() (client.Start, error) {
	if o.from != "" {
		p, err := parsePosition(o.from)
		if err != nil {
			return client.Start{}, usagef("consume", "--from %v", err)
		}
		return p.start(), nil
	}
	if o.consumer != "" {
		return client.FromCursor(o.consumer, client.FallbackBeginning), nil
	}
	return client.Beginning(), nil
}

func (o *consumeOptions) run(ctx context.Context, e *env, g *globals, topic string) error {
	if o.commit && o.consumer == "" {
		return usagef("consume", "--commit needs --consumer NAME: the consumer whose cursor to store")
	}
	start, err := o.start()
	if err != nil {
		return err
	}
	until, err := o.bound()
	if err != nil {
		return err
	}
	c, err := dial(g)
	if err != nil {
		return err
	}
	defer c.Close()

	// The stream has its own context, so that it can be ended before the
	// final commit, which must not be cancelled by the interrupt.
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	copts := client.ConsumeOptions{From: start, Follow: o.follow, Limit: o.limit, Reconnect: o.reconnect, Until: until.option()}
	sub, err := c.Subscribe(streamCtx, topic, copts)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted before the stream started
		}
		return explain(err, g.server)
	}
	events, stop := receive(sub)

	var cm *committer
	if o.commit {
		cm = newCommitter(c, topic, o.consumer)
	}
	p := &printer{w: bufio.NewWriterSize(e.stdout, 64<<10), stderr: e.stderr, json: o.json, cm: cm, until: until}
	streamErr := p.loop(ctx, events, cm)
	cancel()
	stop()
	sub.Close()

	// Whatever ended the loop, what was printed is flushed and committed.
	flushErr := p.flush()
	var commitErr error
	if cm != nil {
		commitErr = cm.close()
	}
	switch {
	case streamErr != nil:
		err := explain(streamErr, g.server)
		if commitErr != nil {
			err = fmt.Errorf("%w; the cursor was not stored: %w", err, explain(commitErr, g.server))
		}
		return err
	case flushErr != nil:
		return fmt.Errorf("writing the output: %w", flushErr)
	case commitErr != nil:
		return fmt.Errorf("storing the cursor of %q: %w", o.consumer, explain(commitErr, g.server))
	}
	return nil
}

// received is one result of Subscription.Next.
type received struct {
	ev  client.Event
	err error
}

// receive reads sub in a goroutine, so that the printer can flush and
// commit while the stream waits. The channel ends after the stream's error
// (io.EOF at its normal end). stop ends the goroutine and waits for it;
// only then may sub be closed.
func receive(sub *client.Subscription) (<-chan received, func()) {
	ch := make(chan received, 256)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ch)
		for {
			ev, err := sub.Next()
			select {
			case ch <- received{ev, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	})
	var once sync.Once
	return ch, func() {
		once.Do(func() { close(quit) })
		wg.Wait()
	}
}

// printer writes events and tells the committer which ones are out.
type printer struct {
	w         *bufio.Writer
	stderr    io.Writer
	json      bool
	cm        *committer // nil without --commit
	buf       bytes.Buffer
	last      uint64 // the id of the last event printed
	printed   bool   // whether any event was printed
	unflushed int    // events printed since the last flush
	until     *bound // nil without --until: the server ends the stream there
}

// loop prints events until the stream ends (nil at its normal end, its
// error otherwise), ctx ends (nil: an interrupt ends consume cleanly), the
// output fails or a commit fails.
func (p *printer) loop(ctx context.Context, events <-chan received, cm *committer) error {
	var commitFailed <-chan struct{}
	if cm != nil {
		commitFailed = cm.failed
	}
	for {
		select {
		case r, ok := <-events:
			if !ok {
				return nil
			}
			if r.err != nil {
				if errors.Is(r.err, io.EOF) || ctx.Err() != nil {
					return nil
				}
				return r.err
			}
			if p.until.past(&r.ev) {
				return nil
			}
			if err := p.print(&r.ev); err != nil {
				return fmt.Errorf("writing the output: %w", err)
			}
			if p.until.reached(&r.ev) {
				return nil
			}
			// Flush once caught up with what was received, so that a
			// follower shows each event at once and a fast stream is
			// written in large blocks.
			if len(events) == 0 || p.unflushed >= flushEvery {
				if err := p.flush(); err != nil {
					return fmt.Errorf("writing the output: %w", err)
				}
			}
		case <-ctx.Done():
			return nil
		case <-commitFailed:
			return nil // cm.close reports the error
		}
	}
}

func (p *printer) print(ev *client.Event) error {
	if p.json {
		line, err := marshalLine(&p.buf, newJSONEvent(ev))
		if err != nil {
			return err
		}
		p.w.Write(line)
	} else {
		if ev.Skipped > 0 {
			// Said where it happened in the output, on standard error so
			// that standard output stays the payloads.
			if err := p.flush(); err != nil {
				return err
			}
			fmt.Fprintf(p.stderr, "goethectl: %d events of %s before seq %d were removed (retention or a trim) before they were read\n",
				ev.Skipped, ev.Topic, ev.Seq)
		}
		p.w.Write(ev.Payload)
		p.w.WriteByte('\n')
	}
	p.last, p.printed = ev.ID, true
	p.unflushed++
	return nil
}

// flush writes out what was printed, then offers its last event to the
// committer: a cursor never gets ahead of the output.
func (p *printer) flush() error {
	if err := p.w.Flush(); err != nil {
		return err
	}
	p.unflushed = 0
	if p.cm != nil && p.printed {
		p.cm.offer(p.last)
	}
	return nil
}

// committer stores a consumer's cursor in the background: one CommitCursor
// at a time, each for the newest id offered, so that a fast stream costs
// few calls and printing never waits for one.
type committer struct {
	c               *client.Client
	topic, consumer string

	wake   chan struct{} // a new id was offered
	quit   chan struct{}
	exited chan struct{}
	failed chan struct{} // closed when a commit failed

	mu        sync.Mutex
	want      uint64 // the newest id offered
	offered   bool
	committed uint64
	done      bool // committed holds a stored cursor
	err       error
}

func newCommitter(c *client.Client, topic, consumer string) *committer {
	cm := &committer{c: c, topic: topic, consumer: consumer,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), exited: make(chan struct{}), failed: make(chan struct{})}
	go cm.run()
	return cm
}

// offer asks for the cursor to be stored at id, the last event printed.
func (cm *committer) offer(id uint64) {
	cm.mu.Lock()
	cm.want, cm.offered = id, true
	cm.mu.Unlock()
	select {
	case cm.wake <- struct{}{}:
	default:
	}
}

func (cm *committer) run() {
	defer close(cm.exited)
	for {
		select {
		case <-cm.wake:
		case <-cm.quit:
			return
		}
		if err := cm.commitPending(); err != nil {
			close(cm.failed)
			return
		}
	}
}

// commitPending stores the newest id offered, unless it is stored already.
func (cm *committer) commitPending() error {
	cm.mu.Lock()
	id, need := cm.want, cm.offered && !(cm.done && cm.committed == cm.want)
	err := cm.err
	cm.mu.Unlock()
	if err != nil || !need {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	err = cm.c.CommitCursor(ctx, cm.topic, cm.consumer, id)
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if err != nil {
		cm.err = err
		return err
	}
	cm.committed, cm.done = id, true
	return nil
}

// close waits for the commit in flight, stores the newest id offered if it
// is not yet, and returns the first commit error.
func (cm *committer) close() error {
	close(cm.quit)
	<-cm.exited
	return cm.commitPending()
}

// bound is where --until ends a consume, inclusive: the last event printed
// is the last one whose seq (bySeq) or id is at most n.
type bound struct {
	bySeq  bool
	n      uint64
	isTime bool      // a time bound: n is the id of at
	at     time.Time // isTime's time
}

// option is the bound as the server takes it (ConsumeRequest.until): the
// server ends the stream after the last event at or before it, also when
// following (a time bound once it is server.UntilTimeGrace past).
func (b *bound) option() client.Until {
	switch {
	case b == nil:
		return client.Until{}
	case b.bySeq:
		return client.UntilSeq(b.n)
	case b.isTime:
		return client.UntilTime(b.at)
	}
	return client.UntilID(b.n)
}

// bound reads --until; nil without it.
func (o *consumeOptions) bound() (*bound, error) {
	if o.until == "" {
		return nil, nil
	}
	p, err := parsePosition(o.until)
	if err != nil {
		return nil, usagef("consume", "--until %v", err)
	}
	switch p.kind {
	case posSeq:
		return &bound{bySeq: true, n: p.seq}, nil
	case posID:
		return &bound{n: p.id}, nil
	case posEnd: // now
		now := time.Now()
		return &bound{n: timeID(now), isTime: true, at: now}, nil
	case posTime:
		return &bound{n: timeID(p.time), isTime: true, at: p.time}, nil
	}
	return nil, usagef("consume", "--until %q: want seq:N, id:N, a time ago such as -5m, an RFC 3339 time, or now", o.until)
}

// past reports whether ev lies beyond the bound: it is not printed.
func (b *bound) past(ev *client.Event) bool {
	return b != nil && b.key(ev) > b.n
}

// reached reports whether ev is the bound itself: nothing after it can be
// printed.
func (b *bound) reached(ev *client.Event) bool {
	return b != nil && b.key(ev) >= b.n
}

func (b *bound) key(ev *client.Event) uint64 {
	if b.bySeq {
		return ev.Seq
	}
	return ev.ID
}
