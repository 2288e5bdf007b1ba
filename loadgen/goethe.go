package loadgen

import (
	"context"
	"fmt"

	"github.com/goethe-log/goethe/client"
)

// GoetheOpener returns an Opener of Targets on the Goethe server at addr
// (host:port). Each Target dials its own connection (with opts), so that a
// run's producers and consumers do not share one HTTP/2 connection, pings
// the server and opens a client.Producer (one ProduceStream) on it before
// it is returned: an unreachable server fails the Opener, not the first
// Produce.
//
// Produce sends its payloads as one atomic batch, one request on the
// Target's ProduceStream, and waits for its answer: like the NATS and Redis
// targets, each producer slot has one long-lived connection on which it
// sends requests and reads acknowledgements. Consume is one Consume
// stream. GoetheUnaryOpener measures unary Produce calls instead.
func GoetheOpener(addr string, opts ...client.Option) Opener {
	return goetheOpener(addr, false, opts)
}

// GoetheUnaryOpener is GoetheOpener with Produce as one unary Produce call
// (a new HTTP/2 stream per call) instead of a request on a ProduceStream.
func GoetheUnaryOpener(addr string, opts ...client.Option) Opener {
	return goetheOpener(addr, true, opts)
}

func goetheOpener(addr string, unary bool, opts []client.Option) Opener {
	return func(ctx context.Context) (Target, error) {
		c, err := client.Dial(addr, opts...)
		if err != nil {
			return nil, err
		}
		if err := c.Ping(ctx); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("goethe server at %s: %w", addr, err)
		}
		t := &goetheTarget{c: c}
		if !unary {
			// The stream lives until Close, not as long as ctx.
			if t.p, err = c.NewProducer(context.WithoutCancel(ctx)); err != nil {
				_ = c.Close()
				return nil, fmt.Errorf("goethe server at %s: open a produce stream: %w", addr, err)
			}
		}
		return t, nil
	}
}

// goetheTarget is a Target over one client connection and, unless unary,
// one ProduceStream on it.
type goetheTarget struct {
	c      *client.Client
	p      *client.Producer   // nil: unary Produce calls
	events []client.EventData // reused between calls
}

var _ Target = (*goetheTarget)(nil)

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

func (t *goetheTarget) Consume(ctx context.Context, topic string, from Start, follow bool, fn func([]byte) bool) error {
	opts := client.ConsumeOptions{Follow: follow}
	if from == FromEnd {
		opts.From = client.End()
	}
	for ev, err := range t.c.Consume(ctx, topic, opts) {
		if err != nil {
			return err
		}
		if !fn(ev.Payload) {
			return nil
		}
	}
	return nil
}

// Close closes the ProduceStream (its calls are all answered: a Target is
// used by one goroutine at a time) and the connection.
func (t *goetheTarget) Close() error {
	var err error
	if t.p != nil {
		err = t.p.Close()
	}
	if cerr := t.c.Close(); err == nil {
		err = cerr
	}
	return err
}
