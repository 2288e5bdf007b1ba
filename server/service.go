package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/goethe-log/goethe/cluster"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// service implements goethev1.GoetheServer. Every error it returns goes
// through v.status.
type service struct {
	goethev1.UnimplementedGoetheServer
	s   *Server
	log Log
}

// status is toStatus(err) (authStatus(err) for a request the auth guard
// denied, so that its status carries the topic and permission wherever it
// is answered), and logs the errors an operator must see: every
// INTERNAL and DATA_LOSS, and the first STORE_FAILED (every write fails with it from
// then on, until the log is reopened).
func (v *service) status(err error) error {
	if de := (*deniedError)(nil); errors.As(err, &de) {
		return authStatus(err) // with the topic and permission, as the guard says it
	}
	st := toStatus(err)
	if err == nil || st == err {
		return st
	}
	switch e := lookupCode(err); {
	case e == &internalEntry:
		v.s.opts.Logger.Error("internal error", "error", err)
	case e.reason == goethev1.ReasonDataLoss:
		v.s.opts.Metrics.observeDamagedRead()
		v.s.opts.Logger.Error("damaged record: the read that met it failed", "error", err)
	case e.reason == goethev1.ReasonStoreFailed:
		v.s.storeFailed.Do(func() {
			v.s.opts.Logger.Error("store failed: every write fails until the server restarts", "error", err)
		})
	}
	return st
}

// Produce validates the whole batch, then appends it with one Log.Append:
// the log's asynchronous append with a pooled wait for its completion, no
// goroutine of its own. (The same append through AppendAsync and a pooled
// waiter of the server's measured no different: 51–61 µs of process CPU
// per event either way at 16 producers of one event, synced.)
func (v *service) Produce(ctx context.Context, req *goethev1.ProduceRequest) (*goethev1.ProduceResponse, error) {
	events, expect, err := v.validate(req, nil)
	if err != nil {
		return nil, v.status(err)
	}
	r, err := v.log.Append(ctx, req.Topic, events, expect)
	if err != nil {
		return nil, v.status(err)
	}
	return produceResponse(r), nil
}

// produceResponse is the answer to an append that succeeded, with its
// duplicates.
func produceResponse(r store.AppendResult) *goethev1.ProduceResponse {
	resp := &goethev1.ProduceResponse{FirstId: r.FirstID, FirstSeq: r.FirstSeq, Count: uint32(r.Count), RaftIndex: r.Index}
	if len(r.Duplicates) > 0 {
		resp.Duplicates = make([]*goethev1.Duplicate, len(r.Duplicates))
		for i, d := range r.Duplicates {
			resp.Duplicates[i] = &goethev1.Duplicate{Index: uint32(d.Index), Id: d.ID, Seq: d.Seq}
		}
	}
	return resp
}

// validate checks a Produce against the API's rules and the server's
// limits and returns its events, appended to buf, and its expectation. The
// events' payloads and header maps are req's, not copies: req must outlive
// the append.
func (v *service) validate(req *goethev1.ProduceRequest, buf []store.Event) ([]store.Event, store.Expectation, error) {
	if err := store.ValidateName("topic", req.GetTopic()); err != nil {
		return buf, store.ExpectAny, err
	}
	o := &v.s.opts
	n := len(req.GetEvents())
	switch {
	case n == 0:
		return buf, store.ExpectAny, fmt.Errorf("%w: a produce needs at least one event", errBadRequest)
	case n > o.MaxBatchEvents:
		return buf, store.ExpectAny, fmt.Errorf("%w: a produce has %d events, the limit is %d", errLimitExceeded, n, o.MaxBatchEvents)
	}
	events := buf
	if cap(events)-len(events) < n {
		events = make([]store.Event, len(buf), len(buf)+n)
		copy(events, buf)
	}
	for i, e := range req.Events {
		size := len(e.GetPayload()) + len(e.GetDedupeKey())
		for k, hv := range e.GetHeaders() {
			size += len(k) + len(hv)
		}
		if size > o.MaxEventBytes {
			clear(events[len(buf):])
			return buf, store.ExpectAny, fmt.Errorf("%w: event %d is %d bytes (payload and headers), the limit is %d", errLimitExceeded, i, size, o.MaxEventBytes)
		}
		if err := store.ValidateDedupeKey(e.GetDedupeKey()); err != nil {
			clear(events[len(buf):])
			return buf, store.ExpectAny, fmt.Errorf("event %d: %w", i, err)
		}
		events = append(events, store.Event{Payload: e.GetPayload(), Headers: e.GetHeaders(), DedupeKey: e.GetDedupeKey()})
	}
	expect := store.ExpectAny
	if req.ExpectedLastSeq != nil {
		expect = store.ExpectLastSeq(req.GetExpectedLastSeq())
	}
	return events, expect, nil
}

// Consume resolves the start, announces it in the response header, then
// sends the topic page by page, waiting at the end when following.
func (v *service) Consume(req *goethev1.ConsumeRequest, stream grpc.ServerStreamingServer[goethev1.ConsumeResponse]) error {
	err := v.consume(req, stream)
	if err != nil {
		if cause := context.Cause(stream.Context()); errors.Is(cause, errStopping) {
			err = errStopping
		}
	}
	return v.status(err)
}

func (v *service) consume(req *goethev1.ConsumeRequest, stream grpc.ServerStreamingServer[goethev1.ConsumeResponse]) error {
	ctx := stream.Context()
	topic := req.GetTopic()
	if err := store.ValidateName("topic", topic); err != nil {
		return err
	}
	// Before the start is resolved: a start at the end, or at a cursor,
	// is then one the client's own writes have reached.
	if err := v.waitIndex(ctx, req.GetMinRaftIndex()); err != nil {
		return err
	}
	var want uint64 // the seq the next event delivered should have; 0: unknown
	pos, exhausted, err := v.start(req, &want)
	if err != nil {
		return err
	}
	end, err := parseUntil(req)
	if err != nil {
		return err
	}
	if !req.Follow {
		// Without follow the topic must exist; say so before the header,
		// so that the client learns it when it opens the stream.
		if _, err := v.log.Info(topic); err != nil {
			return topicNotFound(err, topic)
		}
	}
	if err := stream.SendHeader(metadata.Pairs(goethev1.HeaderStartPosition, strconv.FormatUint(pos, 10))); err != nil {
		return err
	}
	if exhausted {
		// No event can come after the start: the id space is used up.
		if !req.Follow {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	}

	st := v.log
	pageEvents := v.s.opts.ConsumePageEvents
	remaining := req.GetLimit() // 0: no limit
	resp := &goethev1.ConsumeResponse{Topic: topic}
	// The response and its events are reused from page to page: Send
	// encodes the message before it returns. The events are made at the
	// first page that needs them: a follower at the end sends shared
	// responses (see sharedPages) and needs none.
	var slots []goethev1.Event
	sendResp := func() error { return stream.Send(resp) }
	// The pages are read and sent on the watch's goroutine, the handler's
	// waits: so a Send is bounded by SlowConsumerTimeout without handing
	// each message to another goroutine (see sendWatch).
	w := newSendWatch(v.s.opts.SlowConsumerTimeout, ctx.Done(), ctx.Err)
	var topicID uint64 // the topic read, once a Read found it
	// A follower with no bound of its own is sent new events in its
	// topic's rounds once at the end (consume_rounds.go).
	rounds := v.s.rounds
	if !req.Follow || end.set || remaining > 0 {
		rounds = nil
	}
	v.s.loops.Add(1)
	return w.run(func() error {
		defer v.s.loops.Done()
		for {
			n := pageEvents
			if remaining > 0 && remaining < uint64(n) {
				n = int(remaining)
			}
			page, err := st.Read(topic, pos, n)
			switch {
			case errors.Is(err, store.ErrNotFound) && topicID != 0:
				// The topic this stream read is gone.
				return topicNotFound(fmt.Errorf("%w: topic %q", store.ErrTopicDeleted, topic), topic)
			case errors.Is(err, store.ErrNotFound) && req.Follow:
				err = nil // the topic does not exist yet: wait for it
			case err == nil && topicID == 0:
				topicID = page.TopicID
			case err == nil && page.TopicID != topicID:
				// Deleted, and a new topic of the same name created:
				// never its events.
				return topicNotFound(fmt.Errorf("%w: topic %q", store.ErrTopicDeleted, topic), topic)
			}
			if err != nil {
				return topicNotFound(err, topic)
			}
			if len(page.Events) == 0 {
				if page.Next > pos && want != 0 {
					// The events up to the topic's end were removed.
					if err := v.sendSkippedToEnd(w, stream, resp, topic, &want); err != nil {
						return err
					}
				}
				pos = page.Next
				if !req.Follow || end.reached(st, topic, pos) {
					return nil
				}
				if rounds != nil && topicID != 0 {
					next, nextWant, joined, err := rounds.follow(ctx, w, stream, topic, topicID, pos, want)
					if err != nil {
						return err
					}
					if joined {
						pos, want = next, nextWant
						continue
					}
				}
				err := end.wait(ctx, func(ctx context.Context) error {
					if topicID != 0 {
						return v.log.WaitTopic(ctx, topic, topicID, pos)
					}
					return st.Wait(ctx, topic, pos)
				})
				if err != nil {
					return topicNotFound(err, topic)
				}
				continue
			}
			k, last := end.cut(page.Events)
			if k == 0 {
				return nil // the next event is past the bound
			}
			page.Events = page.Events[:k]
			skipped := consumeSkips(want, page.Events[0].Seq)
			want = page.Events[len(page.Events)-1].Seq + 1
			if len(page.Events) < n && skipped == 0 {
				// The page reached the topic's end: the followers woken
				// by the same commit read the same page (from the store's
				// ring), so it is built and encoded once for all of them.
				shared, err := consumePages.response(topic, page.Events)
				if err != nil {
					return err
				}
				// At most Options.FanoutSenders streams send such a
				// page at once (fanout_gate.go); the wait for a turn is
				// watched as a Send is: it ends with the stream's
				// context, Stop, or the slow-consumer timeout.
				if err := w.send(func() error { return v.sendTail(ctx, stream, shared) }); err != nil {
					return err
				}
			} else {
				if slots == nil {
					slots = make([]goethev1.Event, 0, min(pageEvents, 1024))
				}
				slots = fillResponse(resp, slots, page.Events)
				resp.Skipped = skipped
				if err := w.send(sendResp); err != nil {
					return err // resp may still be in use by the failed Send
				}
				resp.Skipped = 0
				for i := range resp.Events {
					// Let the page's memory go while the stream waits.
					resp.Events[i].Payload, resp.Events[i].Headers, resp.Events[i].DedupeKey = nil, nil, ""
				}
			}
			if last {
				return nil
			}
			pos = page.Next
			if remaining > 0 {
				remaining -= uint64(len(page.Events))
				if remaining == 0 {
					return nil
				}
			}
		}
	})
}

// sendTail sends a tail delivery once the server's fan-out gate gives
// this stream a turn, and gives the turn back after the Send.
func (v *service) sendTail(ctx context.Context, stream grpc.ServerStreamingServer[goethev1.ConsumeResponse], resp *goethev1.ConsumeResponse) error {
	tok, err := v.s.fanout.acquire(ctx)
	if err != nil {
		return err
	}
	defer tok.release()
	return stream.Send(resp)
}

// consumeSkips is ConsumeResponse.skipped for a page whose first event has
// seq first, read by a stream whose next event should have seq want (0:
// not known): the events between, which retention or a trim removed before
// the stream read them. A stream knows want after each page it sent
// (mid-stream gaps), and from its start when that is a seq (at_seq,
// after_seq), the beginning, the end, or a cursor stored with its seq; a
// start by id or time, or at a cursor stored without a seq, does not know
// it, and its first page reports 0.
func consumeSkips(want, first uint64) uint64 {
	if want == 0 || first <= want {
		return 0
	}
	return first - want
}

// sendSkippedToEnd sends a response with no events whose skipped counts
// the events from want to the end of the topic, which a trim emptied
// before the stream read them, and moves want past them.
func (v *service) sendSkippedToEnd(w *sendWatch, stream grpc.ServerStreamingServer[goethev1.ConsumeResponse], resp *goethev1.ConsumeResponse, topic string, want *uint64) error {
	ti, err := v.log.Info(topic)
	if err != nil || ti.LastSeq+1 <= *want {
		return nil // deleted meanwhile (the next Read says so), or nothing removed
	}
	skipped := ti.LastSeq + 1 - *want
	*want = ti.LastSeq + 1
	resp.Events, resp.Skipped = resp.Events[:0], skipped
	err = w.send(func() error { return stream.Send(resp) })
	resp.Skipped = 0
	return err
}

// fillResponse points resp at events, reusing slots for the messages. The
// payloads and header maps are the page's, not copies.
func fillResponse(resp *goethev1.ConsumeResponse, slots []goethev1.Event, events []store.Event) []goethev1.Event {
	if cap(slots) < len(events) {
		slots = make([]goethev1.Event, 0, len(events))
		resp.Events = nil
	}
	slots = slots[:len(events)]
	ptrs := resp.Events[:0]
	for i := range events {
		e, m := &events[i], &slots[i]
		m.Id, m.Seq, m.Payload, m.Headers, m.DedupeKey = e.ID, e.Seq, e.Payload, e.Headers, e.DedupeKey
		ptrs = append(ptrs, m)
	}
	resp.Events = ptrs
	return slots
}

// start resolves a Consume request's start to a store position. exhausted
// says that no event can exist at or after it (a start after the largest
// id). It sets *want to the seq the first event delivered should have, when
// the start says (see consumeSkips), else 0.
func (v *service) start(req *goethev1.ConsumeRequest, want *uint64) (pos uint64, exhausted bool, err error) {
	st, topic := v.log, req.GetTopic()
	*want = 0
	switch s := req.GetStart().(type) {
	case nil:
		*want = 1
		return store.FromBeginning, false, nil
	case *goethev1.ConsumeRequest_Position:
		switch s.Position {
		case goethev1.Position_POSITION_UNSPECIFIED, goethev1.Position_POSITION_BEGINNING:
			*want = 1
			return store.FromBeginning, false, nil
		case goethev1.Position_POSITION_END:
			return v.end(topic, req.Follow, want)
		}
		return 0, false, fmt.Errorf("%w: unknown start position %d", errBadRequest, s.Position)
	case *goethev1.ConsumeRequest_AfterId:
		return after(s.AfterId)
	case *goethev1.ConsumeRequest_AtId:
		return s.AtId, false, nil
	case *goethev1.ConsumeRequest_AtTime:
		if err := s.AtTime.CheckValid(); err != nil {
			return 0, false, fmt.Errorf("%w: at_time: %v", errBadRequest, err)
		}
		return store.At(s.AtTime.AsTime()), false, nil
	case *goethev1.ConsumeRequest_AtSeq:
		*want = max(s.AtSeq, 1)
		return v.seqStart(topic, s.AtSeq, req.Follow)
	case *goethev1.ConsumeRequest_AfterSeq:
		if s.AfterSeq == math.MaxUint64 {
			return math.MaxUint64, true, nil // no seq follows it
		}
		*want = s.AfterSeq + 1
		return v.seqStart(topic, s.AfterSeq+1, req.Follow)
	case *goethev1.ConsumeRequest_Cursor:
		consumer := s.Cursor.GetConsumer()
		if err := store.ValidateName("consumer", consumer); err != nil {
			return 0, false, err
		}
		c, err := st.GetCursor(topic, consumer)
		if err == nil {
			if c.Seq != 0 {
				*want = c.Seq + 1
			}
			return after(c.ID)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return 0, false, err
		}
		switch s.Cursor.GetFallback() {
		case goethev1.CursorFallback_CURSOR_FALLBACK_UNSPECIFIED, goethev1.CursorFallback_CURSOR_FALLBACK_BEGINNING:
			*want = 1
			return store.FromBeginning, false, nil
		case goethev1.CursorFallback_CURSOR_FALLBACK_END:
			return v.end(topic, req.Follow, want)
		}
		return 0, false, fmt.Errorf("%w: unknown cursor fallback %d", errBadRequest, s.Cursor.GetFallback())
	}
	return 0, false, fmt.Errorf("%w: unknown start", errBadRequest)
}

// seqStart is the position of the event with seq (store.SeqPosition). A
// topic that does not exist yet starts at the beginning when following;
// otherwise it is not found.
func (v *service) seqStart(topic string, seq uint64, follow bool) (uint64, bool, error) {
	pos, exhausted, err := store.SeqPosition(v.log, topic, seq)
	if errors.Is(err, store.ErrNotFound) && follow {
		return store.FromBeginning, false, nil
	}
	if err != nil {
		return 0, false, topicNotFound(err, topic)
	}
	return pos, exhausted, nil
}

// end is the position after the topic's last event, and *want the seq
// after the last. A topic that does not exist yet ends at the beginning
// when following; otherwise it is not found.
func (v *service) end(topic string, follow bool, want *uint64) (uint64, bool, error) {
	ti, err := v.log.Info(topic)
	if errors.Is(err, store.ErrNotFound) && follow {
		*want = 1
		return store.FromBeginning, false, nil
	}
	if err != nil {
		return 0, false, topicNotFound(err, topic)
	}
	*want = ti.LastSeq + 1
	return after(ti.LastID)
}

// after is store.After without the wrap-around at the largest id.
func after(id uint64) (uint64, bool, error) {
	if id == math.MaxUint64 {
		return id, true, nil
	}
	return store.After(id), false, nil
}

// CommitCursor stores the consumer's cursor through the store's writer.
func (v *service) CommitCursor(ctx context.Context, req *goethev1.CommitCursorRequest) (*goethev1.CommitCursorResponse, error) {
	if err := validateNames(req.GetTopic(), req.GetConsumer()); err != nil {
		return nil, v.status(err)
	}
	if err := v.log.SetCursor(ctx, req.Topic, req.Consumer, req.Id); err != nil {
		return nil, v.status(topicNotFound(err, req.Topic))
	}
	return &goethev1.CommitCursorResponse{}, nil
}

// GetCursor returns the cursor with the topic's end and the lag between.
func (v *service) GetCursor(_ context.Context, req *goethev1.GetCursorRequest) (*goethev1.GetCursorResponse, error) {
	res, err := v.getCursor(req)
	return res, v.status(err)
}

func (v *service) getCursor(req *goethev1.GetCursorRequest) (*goethev1.GetCursorResponse, error) {
	if err := validateNames(req.GetTopic(), req.GetConsumer()); err != nil {
		return nil, err
	}
	st := v.log
	c, err := st.GetCursor(req.Topic, req.Consumer)
	if err != nil {
		return nil, v.cursorNotFound(err, req.Topic, req.Consumer)
	}
	res := &goethev1.GetCursorResponse{Id: c.ID, Updated: timestamppb.New(c.Updated)}
	// The first event after the cursor, read before the topic's end, so
	// that the end is at or after it.
	var next *store.Event
	if pos, exhausted, _ := after(c.ID); !exhausted {
		p, err := st.Read(req.Topic, pos, 1)
		if err != nil {
			return nil, topicNotFound(err, req.Topic)
		}
		if len(p.Events) > 0 {
			next = &p.Events[0]
		}
	}
	ti, err := st.Info(req.Topic)
	if err != nil {
		return nil, topicNotFound(err, req.Topic)
	}
	res.LastId, res.LastSeq = ti.LastID, ti.LastSeq
	if next != nil && ti.LastSeq >= next.Seq {
		res.Lag = ti.LastSeq - next.Seq + 1
	}
	return res, nil
}

// ListTopics pages through the catalog; the page token is the last name.
func (v *service) ListTopics(_ context.Context, req *goethev1.ListTopicsRequest) (*goethev1.ListTopicsResponse, error) {
	res, err := v.listTopics(req)
	return res, v.status(err)
}

func (v *service) listTopics(req *goethev1.ListTopicsRequest) (*goethev1.ListTopicsResponse, error) {
	if tok := req.GetPageToken(); tok != "" {
		if err := store.ValidateName("topic", tok); err != nil {
			return nil, fmt.Errorf("%w: page_token is not a topic name: %v", errBadRequest, err)
		}
	}
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = DefaultListPageSize
	case size > MaxListPageSize:
		size = MaxListPageSize
	}
	infos, next, err := v.log.Topics(req.GetPageToken(), size)
	if err != nil {
		return nil, err
	}
	res := &goethev1.ListTopicsResponse{Topics: make([]*goethev1.Topic, len(infos)), NextPageToken: next}
	for i := range infos {
		res.Topics[i] = topicProto(&infos[i])
	}
	return res, nil
}

// GetTopic describes one topic. With linearizable, on a Log that is a
// ReadIndexer (a cluster), it first waits for the Log's read index, so the
// answer reflects every Produce acknowledged before the call.
func (v *service) GetTopic(ctx context.Context, req *goethev1.GetTopicRequest) (*goethev1.GetTopicResponse, error) {
	if err := store.ValidateName("topic", req.GetTopic()); err != nil {
		return nil, v.status(err)
	}
	index := req.GetMinRaftIndex()
	if ri, ok := v.log.(ReadIndexer); ok && req.GetLinearizable() {
		readIndex, err := ri.ReadIndex(ctx)
		if err != nil {
			return nil, v.status(err)
		}
		index = max(index, readIndex)
	}
	if err := v.waitIndex(ctx, index); err != nil {
		return nil, v.status(err)
	}
	ti, err := v.log.Info(req.Topic)
	if err != nil {
		return nil, v.status(topicNotFound(err, req.Topic))
	}
	return &goethev1.GetTopicResponse{Topic: topicProto(&ti)}, nil
}

// waitIndex waits until the Log applied its replicated log up to index
// (IndexWaiter), for a read's min_raft_index; at once for 0 or a Log
// without IndexWaiter (a single node).
func (v *service) waitIndex(ctx context.Context, index uint64) error {
	iw, ok := v.log.(IndexWaiter)
	if !ok || index == 0 {
		return nil
	}
	return iw.WaitIndex(ctx, index)
}

// GetClusterStatus answers the Log's ClusterInfo, or clustered = false
// for a Log without it (a single node). A follower's call asking for the
// read index (cluster.ReadIndexAsked) gets the confirmed read index of this
// member, the leader, in commit_index, or the refusal of a member that is
// not the leader.
func (v *service) GetClusterStatus(ctx context.Context, _ *goethev1.GetClusterStatusRequest) (*goethev1.GetClusterStatusResponse, error) {
	ci, ok := v.log.(ClusterInfo)
	if !ok {
		return &goethev1.GetClusterStatusResponse{}, nil
	}
	var readIndex uint64
	if ri, ok := v.log.(ReadIndexer); ok && cluster.ReadIndexAsked(ctx) {
		var err error
		if readIndex, err = ri.ReadIndex(ctx); err != nil {
			return nil, v.status(err)
		}
	}
	st, members, err := ci.ClusterStatus()
	if err != nil {
		return nil, v.status(err)
	}
	if readIndex > 0 {
		st.CommitIndex = readIndex
	}
	resp := &goethev1.GetClusterStatusResponse{Clustered: true, NodeId: st.ID, State: st.State, LeaderId: st.LeaderID,
		Term: st.Term, LastIndex: st.LastIndex, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex}
	for _, m := range members {
		resp.Members = append(resp.Members, &goethev1.ClusterMember{Id: m.ID, RaftAddress: m.RaftAddr, ClientAddress: m.ClientAddr})
	}
	return resp, nil
}

func topicProto(ti *store.TopicInfo) *goethev1.Topic {
	return &goethev1.Topic{
		Name:     ti.Name,
		Created:  timestamppb.New(ti.Created),
		FirstId:  ti.FirstID,
		FirstSeq: ti.FirstSeq,
		LastId:   ti.LastID,
		LastSeq:  ti.LastSeq,
		Count:    ti.Count,
		Bytes:    ti.Bytes,

		Config:          configProto(&ti.Config),
		EffectiveConfig: configProto(&ti.Effective),
	}
}

// cursorNotFound names what GetCursor did not find: the topic, or, when
// the topic exists, the consumer's cursor in it. A topic that exists after
// the lookup existed during it, was created since, or was deleted and
// created again: in each case without the cursor.
func (v *service) cursorNotFound(err error, topic, consumer string) error {
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	switch _, ierr := v.log.Info(topic); {
	case errors.Is(ierr, store.ErrNotFound):
		return topicNotFound(err, topic)
	case ierr != nil:
		return ierr
	}
	return &notFoundError{topic: topic, consumer: consumer, err: err}
}

func validateNames(topic, consumer string) error {
	if err := store.ValidateName("topic", topic); err != nil {
		return err
	}
	return store.ValidateName("consumer", consumer)
}
