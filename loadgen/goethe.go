package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/goethe-log/goethe/client"
)

// GoetheMode is how a Goethe Target's producers reach the server: the
// client shape a run measures.
type GoetheMode string

// The Goethe client shapes.
const (
	// GoetheAsync: the Targets share GoetheOptions.Connections client
	// connections (1 by default), each with one asynchronous
	// client.Producer; a Target's Produce is a Send of its batch and a Wait
	// for its own answer, as an application's goroutines sharing one client
	// would. Sends of many Targets to one topic merge into one request
	// while a request of that topic is in flight.
	GoetheAsync GoetheMode = "async"
	// GoetheStream: each Target has its own connection and its own
	// client.Producer (one ProduceStream), with one call in flight on it:
	// like the NATS and Redis targets, each producer slot has one
	// long-lived connection on which it sends requests and reads
	// acknowledgements.
	GoetheStream GoetheMode = "stream"
	// GoetheUnary: each Target has its own connection, and Produce is one
	// unary Produce call (a new HTTP/2 stream per call).
	GoetheUnary GoetheMode = "unary"
)

// GoetheOptions configures GoetheOpenerWith.
type GoetheOptions struct {
	// Mode is the client shape; "" is GoetheAsync.
	Mode GoetheMode
	// Connections, when not 0, is how many client connections the Targets
	// share, round robin: Target i uses connection i mod Connections. In
	// GoetheAsync mode each connection has one Producer that its Targets
	// share (0 means 1); in GoetheStream mode each Target still has its own
	// Producer (its own stream) on the shared connection; in GoetheUnary
	// mode the calls share the connections. 0 in GoetheStream and
	// GoetheUnary modes gives each Target a connection of its own.
	Connections int
	// Client are the options of every client.Dial.
	Client []client.Option
}

// GoetheOpener returns an Opener of Targets on the Goethe server at addr
// (host:port) in GoetheStream mode: each Target dials its own connection
// (with opts), pings the server and opens a client.Producer (one
// ProduceStream) on it before it is returned, so that an unreachable
// server fails the Opener, not the first Produce. Produce sends its
// payloads as one atomic batch and waits for its answer. Consume is one
// Consume stream.
func GoetheOpener(addr string, opts ...client.Option) Opener {
	return GoetheOpenerWith(addr, GoetheOptions{Mode: GoetheStream, Client: opts})
}

// GoetheUnaryOpener is GoetheOpener in GoetheUnary mode: Produce is one
// unary Produce call (a new HTTP/2 stream per call) instead of a request
// on a ProduceStream.
func GoetheUnaryOpener(addr string, opts ...client.Option) Opener {
	return GoetheOpenerWith(addr, GoetheOptions{Mode: GoetheUnary, Client: opts})
}

// GoetheOpenerWith returns an Opener of Targets on the Goethe server at
// addr in the client shape o describes. Every Target it opens has pinged
// the server (and opened its Producer) before it is returned. Connections
// shared by Targets are dialed by the first Target that uses them and
// closed, Producer first (which flushes it), when the last Target using
// them closes. A Target's Consume reads on a connection of its own, dialed
// on its first Consume when the Target's connection is shared, so that
// consumers do not share a connection with producers.
//
// Produce sends its payloads as one atomic batch and returns once it is
// answered; ProducePipelined (a PipelineTarget) sends each payload as its
// own single-event Send and then waits for all of them (N Sends, N Waits;
// the Producer merges them as it merges any Sends), or, in GoetheUnary
// mode, makes one concurrent unary call per payload.
func GoetheOpenerWith(addr string, o GoetheOptions) Opener {
	if o.Mode == "" {
		o.Mode = GoetheAsync
	}
	if o.Mode == GoetheAsync && o.Connections <= 0 {
		o.Connections = 1
	}
	g := &goetheOpener{addr: addr, o: o}
	if o.Connections > 0 {
		g.shared = make([]*goetheShared, o.Connections)
	}
	return g.open
}

// goetheOpener opens Targets and owns the connections they share.
type goetheOpener struct {
	addr string
	o    GoetheOptions

	mu     sync.Mutex
	next   int             // the next Target's slot
	shared []*goetheShared // nil: no connection is shared
}

// goetheShared is a connection that Targets share and, in GoetheAsync
// mode, its Producer.
type goetheShared struct {
	c    *client.Client
	p    *client.Producer // nil unless GoetheAsync
	refs int              // Targets using it
}

func (g *goetheOpener) open(ctx context.Context) (Target, error) {
	switch g.o.Mode {
	case GoetheAsync, GoetheStream, GoetheUnary:
	default:
		return nil, fmt.Errorf("loadgen: unknown goethe mode %q (want %s, %s or %s)", g.o.Mode, GoetheAsync, GoetheStream, GoetheUnary)
	}
	t := &goetheTarget{g: g, slot: -1, unary: g.o.Mode == GoetheUnary}
	if g.shared == nil {
		c, err := g.dial(ctx)
		if err != nil {
			return nil, err
		}
		t.c = c
	} else {
		if err := g.acquire(ctx, t); err != nil {
			return nil, err
		}
	}
	if g.o.Mode == GoetheStream {
		// The stream lives until Close, not as long as ctx.
		p, err := t.c.NewProducer(context.WithoutCancel(ctx))
		if err != nil {
			_ = t.Close()
			return nil, fmt.Errorf("goethe server at %s: open a produce stream: %w", g.addr, err)
		}
		t.p, t.ownP = p, true
	}
	return t, nil
}

// dial connects to the server and pings it.
func (g *goetheOpener) dial(ctx context.Context) (*client.Client, error) {
	c, err := client.Dial(g.addr, g.o.Client...)
	if err != nil {
		return nil, err
	}
	if err := c.Ping(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("goethe server at %s: %w", g.addr, err)
	}
	return c, nil
}

// acquire gives t the next shared slot, opening its connection (and, in
// GoetheAsync mode, its Producer) if no Target uses it yet.
func (g *goetheOpener) acquire(ctx context.Context, t *goetheTarget) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	slot := g.next % len(g.shared)
	s := g.shared[slot]
	if s == nil {
		c, err := g.dial(ctx)
		if err != nil {
			return err
		}
		s = &goetheShared{c: c}
		if g.o.Mode == GoetheAsync {
			if s.p, err = c.NewProducer(context.WithoutCancel(ctx)); err != nil {
				_ = c.Close()
				return fmt.Errorf("goethe server at %s: open a produce stream: %w", g.addr, err)
			}
		}
		g.shared[slot] = s
	}
	g.next++
	s.refs++
	t.slot, t.c, t.p = slot, s.c, s.p
	return nil
}

// release gives up a Target's shared slot; the last Target closes it.
func (g *goetheOpener) release(slot int) error {
	g.mu.Lock()
	s := g.shared[slot]
	if s.refs--; s.refs > 0 {
		g.mu.Unlock()
		return nil
	}
	g.shared[slot] = nil
	g.mu.Unlock()
	var err error
	if s.p != nil {
		err = s.p.Close()
	}
	return errors.Join(err, s.c.Close())
}

// goetheTarget is a Target of a goetheOpener.
type goetheTarget struct {
	g     *goetheOpener
	slot  int              // the shared slot, or -1: c is the Target's own
	c     *client.Client   // the Target's connection, own or shared
	p     *client.Producer // nil: unary Produce calls
	ownP  bool             // p is the Target's own (GoetheStream)
	unary bool

	consumeC *client.Client     // Consume's own connection when c is shared
	events   []client.EventData // reused between calls
	futures  []*client.Future   // reused between calls
	closed   bool
}

var _ PipelineTarget = (*goetheTarget)(nil)

// Produce sends payloads as one atomic batch (a Send and its Wait, or a
// unary call) and returns once it is answered.
func (t *goetheTarget) Produce(ctx context.Context, topic string, payloads [][]byte) error {
	t.events = t.events[:0]
	for _, p := range payloads {
		t.events = append(t.events, client.EventData{Payload: p})
	}
	var err error
	if t.p != nil {
		_, err = t.p.Produce(ctx, topic, t.events)
	} else {
		_, err = t.c.Produce(ctx, topic, t.events)
	}
	clear(t.events) // keep no reference to the caller's payloads
	return err
}

// ProducePipelined sends every payload as a single-event request without
// waiting between them, then waits for all of them, returning the first
// error.
func (t *goetheTarget) ProducePipelined(ctx context.Context, topic string, payloads [][]byte) error {
	if t.p == nil {
		return t.unaryPipelined(ctx, topic, payloads)
	}
	if len(t.events) < 1 {
		t.events = append(t.events, client.EventData{})
	}
	ev := t.events[:1]
	var first error
	t.futures = t.futures[:0]
	for _, p := range payloads {
		ev[0].Payload = p
		f, err := t.p.Send(ctx, topic, ev)
		if err != nil {
			first = err
			break
		}
		t.futures = append(t.futures, f)
	}
	ev[0].Payload = nil
	for i, f := range t.futures {
		if _, err := f.Wait(ctx); err != nil && first == nil {
			first = err
		}
		t.futures[i] = nil
	}
	return first
}

// unaryPipelined makes one unary call per payload, all at once.
func (t *goetheTarget) unaryPipelined(ctx context.Context, topic string, payloads [][]byte) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, p := range payloads {
		wg.Go(func() {
			if _, err := t.c.Produce(ctx, topic, []client.EventData{{Payload: p}}); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// Consume reads topic on one Consume stream, over a connection of the
// Target's own.
func (t *goetheTarget) Consume(ctx context.Context, topic string, from Start, follow bool, fn func([]byte) bool) error {
	c := t.c
	if t.slot >= 0 {
		if t.consumeC == nil {
			var err error
			if t.consumeC, err = t.g.dial(ctx); err != nil {
				return err
			}
		}
		c = t.consumeC
	}
	opts := client.ConsumeOptions{Follow: follow}
	if from == FromEnd {
		opts.From = client.End()
	}
	for ev, err := range c.Consume(ctx, topic, opts) {
		if err != nil {
			return err
		}
		if !fn(ev.Payload) {
			return nil
		}
	}
	return nil
}

// Close closes the Target's own Producer (its calls are all answered: a
// Target is used by one goroutine at a time) and connections, and gives up
// its shared connection, which the last Target using it closes. It is
// idempotent.
func (t *goetheTarget) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	if t.ownP {
		errs = append(errs, t.p.Close())
	}
	if t.consumeC != nil {
		errs = append(errs, t.consumeC.Close())
	}
	if t.slot >= 0 {
		errs = append(errs, t.g.release(t.slot))
	} else {
		errs = append(errs, t.c.Close())
	}
	return errors.Join(errs...)
}
