package loadgen

import (
	"context"
	"fmt"

	"github.com/goethe-log/goethe/client"
)

// GoetheOpener returns an Opener of Targets on the Goethe server at addr
// (host:port). Each Target dials its own connection (with opts), so that a
// run's producers and consumers do not share one HTTP/2 connection, and
// pings the server before it is returned: an unreachable server fails the
// Opener, not the first Produce.
//
// Produce sends its payloads as one atomic batch (one Produce call);
// Consume is one Consume stream.
func GoetheOpener(addr string, opts ...client.Option) Opener {
	return func(ctx context.Context) (Target, error) {
		c, err := client.Dial(addr, opts...)
		if err != nil {
			return nil, err
		}
		if err := c.Ping(ctx); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("goethe server at %s: %w", addr, err)
		}
		return &goetheTarget{c: c}, nil
	}
}

// goetheTarget is a Target over one client connection.
type goetheTarget struct {
	c      *client.Client
	events []client.EventData // reused between calls
}

var _ Target = (*goetheTarget)(nil)

func (t *goetheTarget) Produce(ctx context.Context, topic string, payloads [][]byte) error {
	t.events = t.events[:0]
	for _, p := range payloads {
		t.events = append(t.events, client.EventData{Payload: p})
	}
	_, err := t.c.Produce(ctx, topic, t.events)
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

func (t *goetheTarget) Close() error { return t.c.Close() }
