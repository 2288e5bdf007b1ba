package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
)

// Backoff says how a reconnecting Subscription or reliable Producer waits
// between attempts: the first wait is Initial, each next one twice the
// last, up to Max; each wait is jittered to a random duration between half
// of it and all of it ("equal jitter"), so that clients cut off by the same
// restart do not come back in step. After MaxElapsed of failed attempts in
// a row (0: no bound but the context) it gives up with the last error.
// Zero fields take DefaultBackoff's.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	MaxElapsed time.Duration
}

// Defaults of Backoff.
const (
	// DefaultBackoffInitial is the first wait after a broken stream.
	DefaultBackoffInitial = 50 * time.Millisecond
	// DefaultBackoffMax bounds one wait.
	DefaultBackoffMax = 2 * time.Second
	// DefaultProducerRetryTime bounds how long a reliable Producer keeps
	// trying to reconnect before it fails its Futures: one minute, half
	// the server's default dedupe window (2 minutes), so that a resent
	// request still finds its first attempt's keys and is not stored twice.
	// A server with a shorter --dedupe-window needs a shorter bound.
	DefaultProducerRetryTime = time.Minute
)

// DefaultBackoff returns the documented defaults, with no MaxElapsed.
func DefaultBackoff() Backoff {
	return Backoff{Initial: DefaultBackoffInitial, Max: DefaultBackoffMax}
}

func (b *Backoff) fill() {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	b.Max = max(b.Max, b.Initial)
}

// retry calls attempt until it succeeds, returns an error retryable does
// not accept, ctx ends or b gives up, waiting between attempts as b says.
// Before each later attempt it resets conn's connection backoff (when conn
// is a *grpc.ClientConn), so that gRPC's own, slower schedule (up to two
// minutes) does not keep a restarted server unreached.
func retry(ctx context.Context, b Backoff, conn grpc.ClientConnInterface, first error, retryable func(error) bool, attempt func() error) error {
	b.fill()
	start := time.Now()
	wait := b.Initial
	err := first
	for {
		if !retryable(err) {
			return err
		}
		if b.MaxElapsed > 0 && time.Since(start) >= b.MaxElapsed {
			return err
		}
		d := wait/2 + mrand.N(wait/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, b.Max)
		if cc, ok := conn.(*grpc.ClientConn); ok {
			cc.ResetConnectBackoff()
		}
		if err = attempt(); err == nil {
			return nil
		}
	}
}

// reconnectable reports whether a stream that failed with err is worth
// opening again: the server was unreachable, stopping or restarting
// (ErrUnavailable), which a broken connection is too.
func reconnectable(err error) bool {
	return errors.Is(err, ErrUnavailable)
}

// Retry calls attempt until it returns nil or an error other than
// ErrUnavailable, or until b gives up or ctx ends (then it returns the last
// error, joined with ctx's), waiting between attempts as b says and
// asking the connection to reconnect at once each time. It is how a
// caller retries a Produce whose events carry dedupe keys: such a retry
// never stores an event twice while it stays within the server's dedupe
// window, which b.MaxElapsed should be well within. goethectl produce does
// this.
func (c *Client) Retry(ctx context.Context, b Backoff, attempt func() error) error {
	err := attempt()
	if err == nil {
		return nil
	}
	return retry(ctx, b, c.cc, err, reconnectable, attempt)
}

// NewKeys returns a generator of dedupe keys unique to it: a random
// prefix of 16 hex digits, a dash and a counter in base 36 ("3f2a…-1b"),
// about 20 bytes. Safe for concurrent use.
func NewKeys() func() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	prefix := hex.EncodeToString(b[:]) + "-"
	var n atomic.Uint64
	return func() string { return prefix + strconv.FormatUint(n.Add(1), 36) }
}
