package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// StartPositionHeader is the Consume response header that tells where the
// server started the stream (an event-id position, decimal).
const StartPositionHeader = goethev1.HeaderStartPosition

// Start says where a Consume begins. The zero Start is the beginning.
type Start struct {
	kind     startKind
	id       uint64
	time     time.Time
	consumer string
	fallback Fallback
}

type startKind uint8

const (
	startBeginning startKind = iota
	startEnd
	startAfterID
	startAtID
	startAtTime
	startCursor
	startAtSeq
	startAfterSeq
)

// Fallback says where a cursor start begins when the consumer has no stored
// cursor in the topic.
type Fallback uint8

const (
	// FallbackBeginning starts at the topic's first event.
	FallbackBeginning Fallback = iota
	// FallbackEnd starts after the topic's last event: only new events.
	FallbackEnd
)

// Beginning starts at the topic's first event.
func Beginning() Start { return Start{kind: startBeginning} }

// End starts after the topic's last event as of the call: only events
// committed afterwards are delivered (use with Follow).
func End() Start { return Start{kind: startEnd} }

// AfterID starts at the first event whose id is larger than id. id need not
// be an event's.
func AfterID(id uint64) Start { return Start{kind: startAfterID, id: id} }

// AtID starts at the first event whose id is id or larger.
func AtID(id uint64) Start { return Start{kind: startAtID, id: id} }

// AtTime starts at the first event committed at or after t.
func AtTime(t time.Time) Start { return Start{kind: startAtTime, time: t} }

// AtSeq starts at the event with seq. A seq below the topic's first (0
// included) starts at its first event; a seq past its last starts at the
// end, as End does, whatever the seqs of the events committed afterwards.
// The server finds the event with a bounded search (see store.SeqPosition).
func AtSeq(seq uint64) Start { return Start{kind: startAtSeq, id: seq} }

// AfterSeq starts just after the event with seq: it is AtSeq(seq+1).
func AfterSeq(seq uint64) Start { return Start{kind: startAfterSeq, id: seq} }

// FromCursor starts after consumer's stored cursor (see CommitCursor), or
// where fallback says when it has none.
func FromCursor(consumer string, fallback Fallback) Start {
	return Start{kind: startCursor, consumer: consumer, fallback: fallback}
}

// String describes the start, for logs.
func (s Start) String() string {
	switch s.kind {
	case startEnd:
		return "end"
	case startAfterID:
		return "after " + strconv.FormatUint(s.id, 10)
	case startAtID:
		return "at " + strconv.FormatUint(s.id, 10)
	case startAtTime:
		return "at " + s.time.Format(time.RFC3339Nano)
	case startAtSeq:
		return "at seq " + strconv.FormatUint(s.id, 10)
	case startAfterSeq:
		return "after seq " + strconv.FormatUint(s.id, 10)
	case startCursor:
		fb := "beginning"
		if s.fallback == FallbackEnd {
			fb = "end"
		}
		return fmt.Sprintf("cursor of %q (else %s)", s.consumer, fb)
	}
	return "beginning"
}

// ConsumeOptions configures a Consume or Subscribe.
type ConsumeOptions struct {
	// From is where the stream starts; the zero value is the beginning.
	From Start
	// Follow keeps the stream open at the end of the topic, delivering
	// events as they commit, until the context ends, Limit is reached or
	// the server stops (ErrUnavailable). Without Follow the stream ends at
	// the end of the topic, and the topic must exist (ErrNotFound).
	Follow bool
	// Limit, when not 0, ends the stream after that many events.
	Limit uint64
	// MinRaftIndex makes a cluster member start the stream only once it
	// has applied its Raft log up to this index (a ProduceResult.
	// RaftIndex): the stream then holds that Produce's events. A single
	// node ignores it.
	MinRaftIndex uint64
	// Until, when set, ends the stream (io.EOF, as at the end of a topic
	// without Follow) after the last event at or before it, also with
	// Follow, and at once if the next event is past it.
	Until Until
	// Reconnect makes the Subscription open its stream again when it
	// breaks with ErrUnavailable (the server stopped or restarted, the
	// connection failed), waiting as Backoff says, and resume just after
	// the last event it delivered (or at the position the first stream
	// started from, if it delivered none): no event is delivered twice or
	// skipped, and Limit counts over every stream. Next blocks while it
	// reconnects; the error it returns once Backoff gives up (or ctx
	// ends) is the last stream's. Without Reconnect, a broken stream ends
	// the Subscription with ErrUnavailable. It is off by default because a
	// caller that restarts its own consumer (with a cursor) would
	// otherwise wait without learning of the outage; goethectl consume
	// turns it on.
	Reconnect bool
	// Backoff is how Reconnect waits (zero fields: DefaultBackoff's).
	Backoff Backoff
}

// Until is where a Consume ends; the zero Until is no end.
type Until struct {
	kind untilKind
	v    uint64
	t    time.Time
}

type untilKind uint8

const (
	untilNone untilKind = iota
	untilID
	untilSeq
	untilTime
)

// UntilID ends a Consume after the last event whose id is id or lower.
func UntilID(id uint64) Until { return Until{kind: untilID, v: id} }

// UntilSeq ends a Consume after the last event whose seq is seq or lower.
func UntilSeq(seq uint64) Until { return Until{kind: untilSeq, v: seq} }

// UntilTime ends a Consume after the last event committed at or before t.
// A follower at the end of the topic waits until t (and a grace of about
// two seconds, see server.UntilTimeGrace) has passed.
func UntilTime(t time.Time) Until { return Until{kind: untilTime, t: t} }

// IsSet reports whether u is an end.
func (u Until) IsSet() bool { return u.kind != untilNone }

func (o *ConsumeOptions) request(topic string) *goethev1.ConsumeRequest {
	req := &goethev1.ConsumeRequest{Topic: topic, Follow: o.Follow, Limit: o.Limit, MinRaftIndex: o.MinRaftIndex}
	switch o.Until.kind {
	case untilID:
		req.Until = &goethev1.ConsumeRequest_UntilId{UntilId: o.Until.v}
	case untilSeq:
		req.Until = &goethev1.ConsumeRequest_UntilSeq{UntilSeq: o.Until.v}
	case untilTime:
		req.Until = &goethev1.ConsumeRequest_UntilTime{UntilTime: timestamppb.New(o.Until.t)}
	}
	s := o.From
	switch s.kind {
	case startBeginning:
		req.Start = &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_BEGINNING}
	case startEnd:
		req.Start = &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_END}
	case startAfterID:
		req.Start = &goethev1.ConsumeRequest_AfterId{AfterId: s.id}
	case startAtID:
		req.Start = &goethev1.ConsumeRequest_AtId{AtId: s.id}
	case startAtTime:
		req.Start = &goethev1.ConsumeRequest_AtTime{AtTime: timestamppb.New(s.time)}
	case startAtSeq:
		req.Start = &goethev1.ConsumeRequest_AtSeq{AtSeq: s.id}
	case startAfterSeq:
		req.Start = &goethev1.ConsumeRequest_AfterSeq{AfterSeq: s.id}
	case startCursor:
		fb := goethev1.CursorFallback_CURSOR_FALLBACK_BEGINNING
		if s.fallback == FallbackEnd {
			fb = goethev1.CursorFallback_CURSOR_FALLBACK_END
		}
		req.Start = &goethev1.ConsumeRequest_Cursor{Cursor: &goethev1.CursorStart{Consumer: s.consumer, Fallback: fb}}
	}
	return req
}

// Subscription is an open Consume stream. Read it with Next or Events, and
// Close it when done. Only Close may be called concurrently with the others.
type Subscription struct {
	stream grpc.ClientStream
	ctx    context.Context
	cancel context.CancelFunc
	start  uint64

	// For Reconnect: what to open again, and where the stream is.
	c          *Client
	topic      string
	opts       ConsumeOptions
	delivered  uint64 // events Next returned
	lastSeq    uint64 // the last one's seq
	reconnects uint64

	batch batch // the batch being handed out
	i     int
	err   error

	skipped uint64 // every batch's skipped, so far
	pending uint64 // skipped not yet given to an event
}

// consumeDesc is the Consume method's stream description.
var consumeDesc = func() *grpc.StreamDesc {
	for i := range goethev1.Goethe_ServiceDesc.Streams {
		if d := &goethev1.Goethe_ServiceDesc.Streams[i]; d.StreamName == "Consume" {
			return d
		}
	}
	panic("client: no Consume stream in the service description")
}()

// Subscribe opens a Consume stream of topic and returns once the server has
// fixed where it starts: an event committed after Subscribe returns is
// delivered (if it is at or after the start), also from End(). The stream
// is bound to ctx; Close ends it sooner. Errors of the request itself (a
// bad name, a missing topic without Follow) are returned here.
//
// With opts.Reconnect, Subscribe also waits for a server that is
// unavailable, as Backoff says.
func (c *Client) Subscribe(ctx context.Context, topic string, opts ConsumeOptions) (*Subscription, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{ctx: ctx, cancel: cancel, c: c, topic: topic, opts: opts}
	err := s.open(opts)
	if err != nil && opts.Reconnect {
		err = retry(ctx, opts.Backoff, c.cc, err, reconnectable, func() error { return s.open(opts) })
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// open opens a Consume stream with opts and waits for its start.
func (s *Subscription) open(opts ConsumeOptions) error {
	// The stream decodes each message straight into a batch of Events
	// (see codec), rather than into goethev1 messages first.
	stream, err := s.c.cc.NewStream(s.ctx, consumeDesc, goethev1.Goethe_Consume_FullMethodName, useCodec)
	if err == nil {
		err = stream.SendMsg(opts.request(s.topic))
	}
	if err == nil {
		err = stream.CloseSend()
	}
	if err != nil {
		return wrapError(err)
	}
	s.stream = stream
	md, err := stream.Header()
	if err == nil && md == nil {
		// The stream ended before the server started it: a request
		// error (or an empty stream).
		s.i = 0
		if err = stream.RecvMsg(&s.batch); errors.Is(err, io.EOF) {
			err = nil
			s.err = io.EOF
		}
	}
	if err != nil {
		return wrapError(err)
	}
	if v := md.Get(StartPositionHeader); len(v) == 1 && s.start == 0 {
		s.start, _ = strconv.ParseUint(v[0], 10, 64)
	}
	return nil
}

// reopen opens the stream again after it broke with err, resuming after
// the last event delivered.
func (s *Subscription) reopen(err error) error {
	opts := s.opts
	switch {
	case s.delivered > 0:
		// By seq, not id: a server counts the events retention removed
		// meanwhile (Skipped) from a seq, not from an id.
		opts.From = AfterSeq(s.lastSeq)
	case s.start != 0:
		opts.From = AtID(s.start)
	}
	if opts.Limit > 0 {
		opts.Limit -= s.delivered // > 0: the stream would have ended
	}
	return retry(s.ctx, opts.Backoff, s.c.cc, err, reconnectable, func() error {
		s.err = nil
		s.reconnects++
		return s.open(opts)
	})
}

// Reconnects counts the times the Subscription opened its stream again
// (see ConsumeOptions.Reconnect): attempts, successful or not.
func (s *Subscription) Reconnects() uint64 { return s.reconnects }

// Start is the position the server started the stream from: the first
// event delivered has an id at or after it. It is 0 if the server sent none
// (the stream failed before starting).
func (s *Subscription) Start() uint64 { return s.start }

// Next returns the stream's next event. At the end of a stream without
// Follow, or once Limit events were delivered, it returns io.EOF; any other
// error ends the stream too and is returned again by later calls.
//
// The events of one batch (up to a page, as the server sent them) share one
// buffer for their payloads: an Event's Payload is the caller's to read and
// keep, and appending to it never touches another event's, but keeping one
// keeps its whole batch in memory. Copy a payload (bytes.Clone) to keep it
// apart from the others.
func (s *Subscription) Next() (Event, error) {
	for s.i >= len(s.batch.events) {
		if s.err != nil {
			return Event{}, s.err
		}
		if err := s.recv(); err != nil {
			return Event{}, err
		}
	}
	ev := s.batch.events[s.i]
	s.i++
	if s.pending > 0 {
		ev.Skipped, s.pending = s.pending, 0
	}
	s.delivered++
	s.lastSeq = ev.Seq
	return ev, nil
}

// Skipped is the number of events the stream has not delivered so far
// because retention or a trim removed them before it read them: those
// before its start when that was below the topic's first event, and gaps
// while it ran (each counted on the event after it, Event.Skipped). The
// server counts them exactly after every batch it sent and from a start by
// seq, at the beginning or at the end, or at a cursor committed at an
// event's id; a start by id or time (AtID, AfterID, AtTime) counts 0 for the
// events removed before it.
func (s *Subscription) Skipped() uint64 { return s.skipped }

// recv reads the next batch, or records and returns the stream's end,
// reconnecting first if the Subscription does.
func (s *Subscription) recv() error {
	for {
		s.i = 0
		err := s.stream.RecvMsg(&s.batch)
		if err == nil {
			s.skipped += s.batch.skipped
			s.pending += s.batch.skipped
			return nil
		}
		s.batch.events = s.batch.events[:0]
		if errors.Is(err, io.EOF) {
			s.err = io.EOF
		} else {
			s.err = wrapError(err)
		}
		if s.opts.Reconnect && reconnectable(s.err) && s.ctx.Err() == nil {
			rerr := s.reopen(s.err)
			if rerr == nil {
				if s.err == nil {
					continue
				}
				return s.err // the new stream ended at once (io.EOF)
			}
			s.err = rerr
		}
		s.cancel()
		return s.err
	}
}

// Events iterates over the rest of the stream: each event with a nil error,
// then, if the stream failed, one zero Event with the error. A normal end
// (io.EOF) ends the iteration without an error. Stopping the loop early
// leaves the subscription open; Close it.
func (s *Subscription) Events() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			ev, err := s.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// Close ends the stream; a Next blocked in another goroutine, and every
// later one, returns an error matching context.Canceled (unless the stream
// had already ended). Close is idempotent and, unlike the other methods,
// safe to call concurrently with Next.
func (s *Subscription) Close() { s.cancel() }

// Consume iterates over topic's events from opts.From: each event with a
// nil error, then, if the stream fails, one zero Event with the error. It
// opens the stream when the loop starts and closes it when the loop ends,
// also on break. With opts.Follow the loop runs until ctx ends (yielding its
// error), opts.Limit is reached or the server stops.
func (c *Client) Consume(ctx context.Context, topic string, opts ConsumeOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		sub, err := c.Subscribe(ctx, topic, opts)
		if err != nil {
			yield(Event{}, err)
			return
		}
		defer sub.Close()
		for ev, err := range sub.Events() {
			if !yield(ev, err) {
				return
			}
		}
	}
}
