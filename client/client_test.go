package client_test

import (
	"context"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/client"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

func dial(t *testing.T) *client.Client {
	addr, stop := startServer()
	c, err := client.Dial(addr)
	require.NoError(t, err)
	t.Cleanup(func() {
		c.Close()
		stop()
	})
	return c
}

func TestErrors(t *testing.T) {
	c := dial(t)
	ctx := context.Background()
	_, err := c.Produce(ctx, "", []client.EventData{{}})
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "the gRPC status is kept")
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, codes.InvalidArgument, e.Code())
	require.Equal(t, goethev1.ReasonInvalidName, e.Reason())
	require.True(t, client.IsReason(err, goethev1.ReasonInvalidName))
	require.False(t, client.IsReason(nil, goethev1.ReasonInvalidName))
	require.False(t, client.IsReason(errors.New("x"), goethev1.ReasonInvalidName))
	require.Contains(t, e.Message(), "topic name is empty")
	require.True(t, strings.HasPrefix(err.Error(), "goethe: InvalidArgument: "), err.Error())

	_, err = c.Produce(ctx, "t", nil)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	require.NotErrorIs(t, err, client.ErrNotFound)

	_, err = c.Topic(ctx, "missing")
	require.ErrorIs(t, err, client.ErrNotFound)
	require.ErrorAs(t, err, &e)
	require.Equal(t, goethev1.ReasonTopicNotFound, e.Reason())
	require.Equal(t, "missing", e.Metadata()["topic"])
	_, err = c.GetCursor(ctx, "missing", "c")
	require.ErrorIs(t, err, client.ErrNotFound)
	require.ErrorIs(t, c.CommitCursor(ctx, "missing", "c", 1), client.ErrNotFound)

	_, err = c.Produce(ctx, "t", []client.EventData{{Payload: []byte("x")}})
	require.NoError(t, err)
	_, err = c.Produce(ctx, "t", []client.EventData{{}}, client.ExpectLastSeq(5))
	require.ErrorIs(t, err, client.ErrConflict)
	var ce *client.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, uint64(1), ce.ActualLastSeq)
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.ErrorAs(t, err, &e, "a conflict unwraps to its *Error")
	require.Equal(t, goethev1.ReasonExpectedLastSeqMismatch, e.Reason())
	_, err = c.Produce(ctx, "t", []client.EventData{{}})
	require.NoError(t, err)
	_, err = c.GetCursor(ctx, "t", "c")
	require.True(t, client.IsReason(err, goethev1.ReasonCursorNotFound), "%v", err)
	_, err = c.Produce(ctx, "t\xff", []client.EventData{{}})
	require.ErrorIs(t, err, client.ErrInvalidArgument, "refused by the client: the server could not decode it")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Produce(cctx, "t", []client.EventData{{}})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorAs(t, err, &e)
	require.Empty(t, e.Reason(), "gRPC's own status has no reason")
	dctx, cancel := context.WithTimeout(ctx, -time.Second)
	defer cancel()
	_, err = c.Topic(dctx, "t")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestUnreachable(t *testing.T) {
	addr, stop := startServer()
	stop()
	c, err := client.Dial(addr)
	require.NoError(t, err, "Dial does not connect")
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.ErrorIs(t, c.Ping(ctx), client.ErrUnavailable)
	_, err = c.Produce(ctx, "t", []client.EventData{{}})
	require.ErrorIs(t, err, client.ErrUnavailable)
}

// Subscribe reports request errors itself.
func TestSubscribeErrors(t *testing.T) {
	c := dial(t)
	ctx := context.Background()
	_, err := c.Subscribe(ctx, "missing", client.ConsumeOptions{})
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.Subscribe(ctx, "", client.ConsumeOptions{Follow: true})
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = c.Subscribe(ctx, "t", client.ConsumeOptions{From: client.FromCursor("", client.FallbackEnd), Follow: true})
	require.ErrorIs(t, err, client.ErrInvalidArgument)

	n := 0
	for _, err := range c.Consume(ctx, "missing", client.ConsumeOptions{}) {
		require.ErrorIs(t, err, client.ErrNotFound)
		n++
	}
	require.Equal(t, 1, n, "one error, then the end")
}

// Breaking out of a loop over a following stream ends it; Close unblocks
// a waiting Next.
func TestConsumeBreakAndClose(t *testing.T) {
	c := dial(t)
	ctx := context.Background()
	batch := make([]client.EventData, 2500)
	for i := range batch {
		batch[i].Payload = []byte(strconv.Itoa(i))
	}
	res, err := c.Produce(ctx, "t", batch)
	require.NoError(t, err)
	require.Equal(t, 2500, res.Count)

	n := 0
	for ev, err := range c.Consume(ctx, "t", client.ConsumeOptions{Follow: true}) {
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(n), string(ev.Payload))
		require.Equal(t, res.ID(n), ev.ID)
		require.Equal(t, res.Seq(n), ev.Seq)
		if n++; n == 2500 {
			break
		}
	}

	sub, err := c.Subscribe(ctx, "t", client.ConsumeOptions{From: client.End(), Follow: true})
	require.NoError(t, err)
	require.Equal(t, res.ID(2499)+1, sub.Start())
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	sub.Close()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end Next")
	}
	_, err = sub.Next()
	require.ErrorIs(t, err, context.Canceled)

	// A stream without follow ends with io.EOF from Next.
	sub, err = c.Subscribe(ctx, "t", client.ConsumeOptions{From: client.AtID(res.ID(2499))})
	require.NoError(t, err)
	ev, err := sub.Next()
	require.NoError(t, err)
	require.Equal(t, "2499", string(ev.Payload))
	_, err = sub.Next()
	require.True(t, errors.Is(err, io.EOF))
	sub.Close()
}

func TestStartString(t *testing.T) {
	require.Equal(t, "beginning", client.Start{}.String())
	require.Equal(t, "beginning", client.Beginning().String())
	require.Equal(t, "end", client.End().String())
	require.Equal(t, "after 5", client.AfterID(5).String())
	require.Equal(t, "at 5", client.AtID(5).String())
	require.Equal(t, "at 1970-01-01T00:00:01Z", client.AtTime(time.Unix(1, 0).UTC()).String())
	require.Equal(t, `cursor of "w" (else end)`, client.FromCursor("w", client.FallbackEnd).String())
}

// TestConsumeFromSeq: AtSeq starts at the event with that seq and AfterSeq
// after it, over many produces; a seq below the first starts at the first,
// one past the last at the end (a follower then gets the next event
// produced); a missing topic is NOT_FOUND without Follow.
func TestConsumeFromSeq(t *testing.T) {
	c := dial(t)
	ctx := context.Background()
	for i := range 40 {
		_, err := c.Produce(ctx, "s", []client.EventData{{Payload: []byte(strconv.Itoa(i + 1))}, {Payload: []byte(strconv.Itoa(i + 41))}})
		require.NoError(t, err)
	}
	first := func(start client.Start) client.Event {
		t.Helper()
		for ev, err := range c.Consume(ctx, "s", client.ConsumeOptions{From: start, Limit: 1}) {
			require.NoError(t, err)
			return ev
		}
		t.Fatalf("no event from %v", start)
		return client.Event{}
	}
	for seq := uint64(1); seq <= 80; seq++ {
		require.Equal(t, seq, first(client.AtSeq(seq)).Seq, "at seq %d", seq)
		if seq < 80 {
			require.Equal(t, seq+1, first(client.AfterSeq(seq)).Seq, "after seq %d", seq)
		}
	}
	require.Equal(t, uint64(1), first(client.AtSeq(0)).Seq)
	require.Equal(t, uint64(1), first(client.AfterSeq(0)).Seq)

	for _, start := range []client.Start{client.AtSeq(81), client.AtSeq(1000), client.AfterSeq(5000)} {
		sub, err := c.Subscribe(ctx, "s", client.ConsumeOptions{From: start, Follow: true, Limit: 1})
		require.NoError(t, err)
		res, err := c.Produce(ctx, "s", []client.EventData{{Payload: []byte("next")}})
		require.NoError(t, err)
		ev, err := sub.Next()
		require.NoError(t, err, "from %v", start)
		require.Equal(t, res.FirstID, ev.ID, "from %v", start)
		sub.Close()
	}
	// No seq follows the largest: the stream ends at once.
	for ev, err := range c.Consume(ctx, "s", client.ConsumeOptions{From: client.AfterSeq(math.MaxUint64)}) {
		t.Fatalf("event %v, error %v after the largest seq", ev, err)
	}
	_, err := c.Subscribe(ctx, "missing", client.ConsumeOptions{From: client.AtSeq(3)})
	require.ErrorIs(t, err, client.ErrNotFound)
	require.Equal(t, "at seq 3", client.AtSeq(3).String())
	require.Equal(t, "after seq 3", client.AfterSeq(3).String())
}
