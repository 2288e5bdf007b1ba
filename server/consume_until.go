package server

import (
	"context"
	"fmt"
	"time"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// UntilTimeGrace is how long after an until_id or until_time bound (an id
// is a commit time in ns) a following Consume still waits for an event at
// or before it before it ends: an event is given its id when its commit
// begins and becomes visible once the commit is written (and, in a
// cluster, applied here), so one with an id at the bound can appear a
// little after the clock has passed it. An event that appears later still
// is not delivered by a stream that has ended.
const UntilTimeGrace = 2 * time.Second

// until is a Consume's end bound (ConsumeRequest.until): the last event
// delivered has a seq (bySeq) or an id at or below bound.
type until struct {
	set   bool
	bySeq bool
	bound uint64
	// expired: an id bound plus UntilTimeGrace has passed while the
	// stream waited at the end of the topic.
	expired bool
}

func parseUntil(req *goethev1.ConsumeRequest) (until, error) {
	switch u := req.GetUntil().(type) {
	case nil:
		return until{}, nil
	case *goethev1.ConsumeRequest_UntilId:
		return until{set: true, bound: u.UntilId}, nil
	case *goethev1.ConsumeRequest_UntilSeq:
		return until{set: true, bySeq: true, bound: u.UntilSeq}, nil
	case *goethev1.ConsumeRequest_UntilTime:
		if err := u.UntilTime.CheckValid(); err != nil {
			return until{}, fmt.Errorf("%w: until_time: %v", errBadRequest, err)
		}
		return until{set: true, bound: uint64(max(u.UntilTime.AsTime().UnixNano(), 0))}, nil
	}
	return until{}, fmt.Errorf("%w: unknown until", errBadRequest)
}

func (u *until) key(e *store.Event) uint64 {
	if u.bySeq {
		return e.Seq
	}
	return e.ID
}

// cut returns how many of events, from the first, are at or before the
// bound, and whether the stream ends with them: an event past the bound
// follows, or the last one is the bound itself.
func (u *until) cut(events []store.Event) (n int, done bool) {
	if !u.set {
		return len(events), false
	}
	for n < len(events) && u.key(&events[n]) <= u.bound {
		n++
	}
	if n < len(events) {
		return n, true
	}
	return n, n > 0 && u.key(&events[n-1]) == u.bound
}

// reached reports, at the end of the topic with position pos, whether no
// event to come can be at or before the bound: the stream ends at once.
func (u *until) reached(log Log, topic string, pos uint64) bool {
	if !u.set {
		return false
	}
	if u.expired || !u.bySeq && pos > u.bound {
		return true
	}
	ti, err := log.Info(topic)
	if err != nil {
		return false // not there yet: its first event may be within the bound
	}
	if u.bySeq {
		return ti.LastSeq >= u.bound
	}
	return ti.LastID >= u.bound
}

// wait runs wait (the stream's wait for the next event), which for an id
// bound also ends (marking u expired, with no error) once the clock is
// UntilTimeGrace past the bound.
func (u *until) wait(ctx context.Context, wait func(context.Context) error) error {
	if !u.set || u.bySeq {
		return wait(ctx)
	}
	deadline := time.Unix(0, int64(min(u.bound, 1<<63-1))).Add(UntilTimeGrace)
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := wait(wctx)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		u.expired = true // read once more, then end
		return nil
	}
	return err
}
