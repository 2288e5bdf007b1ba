package server

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// Fan-out rounds: the followers at the end of a topic are sent its new
// events by one goroutine, in a round, instead of each being woken to send
// them itself.
//
// Why (results/bench/fanout/rounds/README.md): with thousands of followers
// a commit used to make every one of them runnable; the goroutines of the
// write path (the producer's connection reader and loopy writer) then
// waited behind them for a processor, so a Produce's latency grew with the
// followers. Shared pages (consume_shared.go) made the work per follower
// small, the gate (fanout_gate.go) bounded how many send at once, but each
// commit still readied thousands of goroutines. In a round only one is
// readied: the group's leader, which reads the page once (from the store's
// tail ring), has it encoded once, and Sends it to every member in turn.
//
// A follower joins its topic's group when it reaches the end of the topic
// and has no bound of its own (no until and no limit: a bounded stream
// follows by itself, as before). While a member, its own loop goroutine is
// parked, woken by nothing but its context or a note: "lead", or "out"
// (it was taken out of the group, and goes on by itself from where the
// rounds brought it). The first member leads; a leader that leaves (its
// context ended) hands the lead to another member.
//
// Each member's Sends still go through its own sendWatch: a round's Send
// to a client that does not read is ended by that stream's
// SlowConsumerTimeout, Stop and context as its own Send would be (the
// watchdog arms the stream's timer, for the rest of the timeout, when it
// finds the Send stalled; the other Sends of a round do not arm it, which
// saves a timer reset and stop per Send). A round is never held by one
// such client for long: a Send that has not returned within
// FanoutSendLease (a watchdog checks) costs its caller the lead. The
// stalled member is taken out, another member leads from where
// the round stopped (the members not yet sent to are behind, so the next
// round, which reads from the members' lowest position, covers them), and
// the deposed goroutine hands the stalled member back to its own loop once
// the Send returns.
//
// A round reads from the lowest position of its members, so a follower may
// join at any moment: one that joins behind the others makes the next
// round start earlier, and the members already past an event are sent only
// what they lack. A member whose next event is not the one it expects (a
// trim removed events it had not read, see consumeSkips) is taken out and
// reports the skip itself; so does every member when the group meets
// anything but new events (the topic deleted or emptied, a read failing):
// the group disbands, and each follower meets the condition in its own
// loop, as a follower outside a group would.
//
// Stop: a leader is a stream's loop goroutine, and goes on reading the log
// while it leads even if its own stream's handler has returned (its Send
// abandoned); Stop waits for every loop goroutine (Server.loops) before it
// returns, so the log is never read after the caller closes it.

// DefaultFanoutLinger is the default of Options.FanoutLinger: long enough
// for a Produce's acknowledgement to be written after its commit on a
// busy machine (Produce p50 0.2–0.8 ms, results/bench/fanout/rounds).
const DefaultFanoutLinger = 500 * time.Microsecond

// MaxFanoutLinger bounds Options.FanoutLinger: every event to a topic's
// large group of followers waits that long, so a larger value is a
// mistake, not a setting.
const MaxFanoutLinger = 100 * time.Millisecond

// tailGroups are the server's groups, one per followed topic.
type tailGroups struct {
	log        Log
	pageEvents int
	lease      time.Duration
	linger     time.Duration
	lingerMin  int      // the fewest members for which a round lingers
	metrics    *Metrics // nil: none

	mu     sync.Mutex
	groups map[string]*tailGroup
}

func newTailGroups(log Log, pageEvents int, lease, linger time.Duration, metrics *Metrics) *tailGroups {
	return &tailGroups{log: log, pageEvents: pageEvents, lease: lease, linger: linger, lingerMin: lingerMembers,
		metrics: metrics, groups: make(map[string]*tailGroup)}
}

// tailGroup is a topic's followers at its end.
type tailGroup struct {
	set     *tailGroups
	topic   string
	topicID uint64

	mu          sync.Mutex
	members     []*tailMember
	leader      *tailMember // the member that leads; nil once the group is dead
	dead        bool        // disbanded or emptied: members join a new group
	inRound     bool        // a round is sending; the watchdog checks it
	roundLeader *tailMember // who runs the current round
	lastSends   uint64      // g.sends at the watchdog's previous check
	watch       *time.Timer
	// The leader's wait for new events: from where, and its cancel. A
	// member that joins behind it (it read the end before the last round
	// and joined after) cancels it, so that the events it lacks, already
	// committed, are sent now rather than at the next commit.
	waitFrom   uint64
	waitCancel context.CancelFunc

	// The round's progress, for the watchdog: the member a Send is in
	// progress to (nil between Sends, stalledSend once the watchdog has
	// claimed it), and the number of Sends begun.
	cur   atomic.Pointer[tailMember]
	sends atomic.Uint64

	roundBuf []*tailMember // the current round's members; the leader's
}

// stalledSend marks in tailGroup.cur a Send that the watchdog found
// stalled: its leader has been deposed.
var stalledSend = new(tailMember)

// tailMember is a following stream while in a group.
type tailMember struct {
	ctx  context.Context
	w    *sendWatch
	send func(*goethev1.ConsumeResponse) error // the stream's Send, bound once
	// pos and want are the stream's position and the seq its next event
	// should have (0: unknown), as in consume. While a member, they are
	// written by the leader that sends to it and read by leaders and the
	// watchdog; once out, by its loop again.
	pos, want atomic.Uint64
	out       atomic.Bool // taken out of the group, or left it
	// notes wake the member's loop to go on by itself: it is sent one at
	// most, when the member is taken out (out turns true once), so a send
	// never blocks. lead wakes it to lead, if the group still names it:
	// a signal, sent without blocking, that coalesces (a member may be named
	// leader again before it has read an earlier one, as a deposed leader
	// that leads on without reading it; a note in a bounded channel then
	// blocked the watchdog, under the group's lock, and the group with it).
	notes chan tailNote
	lead  chan struct{}
	idx   int // in the group's members; under its mu
}

// signalLead wakes m to lead, without blocking; a signal already pending
// serves.
func (m *tailMember) signalLead() {
	select {
	case m.lead <- struct{}{}:
	default:
	}
}

func (m *tailMember) setIndex(i int) { m.idx = i }

// tailNote tells a parked member it is out of the group.
type tailNote struct {
	err error // end the stream with err, or go on by itself (nil)
}

// follow runs a following stream in topic's group once the stream has
// reached the end of the topic at pos: it returns when the stream is out
// of the group (taken out, or the group disbanded), with the position and
// expected seq it goes on from by itself, or the error the stream ends
// with. It returns at once, joined false, when the group is of another
// topic of the same name (the topic was deleted and made again): then the
// stream waits by itself.
func (gs *tailGroups) follow(ctx context.Context, w *sendWatch, stream grpc.ServerStreamingServer[goethev1.ConsumeResponse], topic string, topicID, pos, want uint64) (next, nextWant uint64, joined bool, err error) {
	m := &tailMember{ctx: ctx, w: w, send: stream.Send, notes: make(chan tailNote, 1), lead: make(chan struct{}, 1)}
	m.pos.Store(pos)
	m.want.Store(want)
	g, leads := gs.join(m, topic, topicID)
	if g == nil {
		return pos, want, false, nil
	}
	if leads {
		m.signalLead()
	}
	for {
		select {
		case n := <-m.notes:
			return m.pos.Load(), m.want.Load(), true, n.err
		case <-m.lead:
			if !g.leads(m) {
				continue // a stale signal: the lead passed on, or m is out
			}
			if out, err := g.lead(m); out {
				return m.pos.Load(), m.want.Load(), true, err
			}
		case <-ctx.Done():
			g.leave(m)
			return m.pos.Load(), m.want.Load(), true, ctx.Err()
		}
	}
}

// join adds m to topic's group, making one if needed; leads says m leads
// it. g is nil when the topic's group follows another topic id.
func (gs *tailGroups) join(m *tailMember, topic string, topicID uint64) (g *tailGroup, leads bool) {
	for {
		gs.mu.Lock()
		g = gs.groups[topic]
		if g == nil {
			g = &tailGroup{set: gs, topic: topic, topicID: topicID}
			g.watch = time.AfterFunc(time.Hour, g.check)
			g.watch.Stop()
			gs.groups[topic] = g
		}
		gs.mu.Unlock()
		if g.topicID != topicID {
			return nil, false
		}
		g.mu.Lock()
		if g.dead {
			g.mu.Unlock()
			gs.drop(g)
			continue
		}
		m.idx = len(g.members)
		g.members = append(g.members, m)
		gs.metrics.observeRoundFollowers(1)
		if g.leader == nil {
			g.leader, leads = m, true
		}
		if g.waitCancel != nil && m.pos.Load() < g.waitFrom {
			g.waitCancel()
			g.waitCancel = nil
		}
		g.mu.Unlock()
		return g, leads
	}
}

// drop forgets g if it is still its topic's group; g is dead.
func (gs *tailGroups) drop(g *tailGroup) {
	gs.mu.Lock()
	if gs.groups[g.topic] == g {
		delete(gs.groups, g.topic)
	}
	gs.mu.Unlock()
	g.watch.Stop()
}

// lingerMembers is the fewest members for which a round waits
// Options.FanoutLinger after the commit: the round of a smaller group
// takes tens of µs and starts at once.
const lingerMembers = 64

// size is how many members g has.
func (g *tailGroup) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

// leads reports whether g names m its leader.
func (g *tailGroup) leads(m *tailMember) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leader == m && !m.out.Load()
}

// removeLocked takes m out of the members; it reports whether the group
// is left empty (then it is dead, and the caller drops it).
func (g *tailGroup) removeLocked(m *tailMember) (empty bool) {
	if m.out.Load() {
		return false
	}
	m.out.Store(true)
	g.set.metrics.observeRoundFollowers(-1)
	g.members = swapRemove(g.members, m.idx)
	m.idx = -1
	if len(g.members) == 0 {
		g.dead, g.leader = true, nil
		return true
	}
	return false
}

// passLeadLocked names another member leader in place of m, skipping not
// (nil: none), and tells it.
func (g *tailGroup) passLeadLocked(not *tailMember) {
	g.leader = nil
	for _, c := range g.members {
		if c != not {
			g.leader = c
			c.signalLead()
			return
		}
	}
}

// leave takes m out of g for good (its context ended); if it led, another
// member leads.
func (g *tailGroup) leave(m *tailMember) {
	g.mu.Lock()
	wasLeader := g.leader == m
	empty := g.removeLocked(m)
	if wasLeader && !empty {
		g.passLeadLocked(nil)
	}
	g.mu.Unlock()
	if empty {
		g.set.drop(g)
	}
}

// takeOut takes member m out of g and tells it to go on by itself (err
// nil) or end with err. Only a leader calls it, for another member.
func (g *tailGroup) takeOut(m *tailMember, err error) {
	g.mu.Lock()
	if m.out.Load() {
		g.mu.Unlock()
		return // it left meanwhile
	}
	empty := g.removeLocked(m)
	m.notes <- tailNote{err: err}
	g.mu.Unlock()
	if empty {
		g.set.drop(g)
	}
}

// disband takes every member out, each to go on by itself, and kills the
// group: its leader met something other than new events.
func (g *tailGroup) disband(leader *tailMember) {
	g.mu.Lock()
	g.set.metrics.observeRoundFollowers(-len(g.members))
	for _, m := range g.members {
		m.out.Store(true)
		m.idx = -1
		if m != leader {
			m.notes <- tailNote{}
		}
	}
	clear(g.members)
	g.members, g.leader, g.dead = g.members[:0], nil, true
	g.mu.Unlock()
	g.set.drop(g)
}

// lead runs rounds while m leads g. It returns out true when m is out of
// the group (then the stream goes on by itself, or ends with err), and out
// false when m was deposed and is a member again.
func (g *tailGroup) lead(m *tailMember) (out bool, err error) {
	var selfErr error // m's own Send failed: it leaves after the round
	for {
		g.mu.Lock()
		if g.leader != m || m.out.Load() {
			g.mu.Unlock()
			return m.out.Load(), nil
		}
		if selfErr != nil {
			g.mu.Unlock()
			g.leave(m)
			return true, selfErr
		}
		from := uint64(0)
		for i, r := range g.members {
			if p := r.pos.Load(); i == 0 || p < from {
				from = p
			}
		}
		wctx, cancel := context.WithCancel(m.ctx)
		g.waitFrom, g.waitCancel = from, cancel
		g.mu.Unlock()
		err := g.set.log.WaitTopic(wctx, g.topic, g.topicID, from)
		g.mu.Lock()
		g.waitCancel = nil
		g.mu.Unlock()
		behind := wctx.Err() != nil // before cancel: a joiner cancelled it
		cancel()
		if err != nil {
			if cerr := m.ctx.Err(); cerr != nil {
				g.leave(m)
				return true, cerr
			}
			if behind {
				continue // a member joined behind: read from it
			}
			g.disband(m)
			return true, nil
		}
		if d := g.set.linger; d > 0 && g.size() >= g.set.lingerMin {
			// Let the commit's acknowledgements out before the round
			// takes a processor (see Options.FanoutLinger).
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-m.ctx.Done():
				t.Stop()
				g.leave(m)
				return true, m.ctx.Err()
			}
		}
		page, err := g.set.log.Read(g.topic, from, g.set.pageEvents)
		if err != nil || page.TopicID != g.topicID || len(page.Events) == 0 && page.Next > from {
			g.disband(m)
			return true, nil
		}
		if len(page.Events) == 0 {
			continue
		}
		start := time.Now()
		deposed, err := g.round(m, page, from)
		g.set.metrics.observeRound(time.Since(start))
		if deposed {
			if m.out.Load() {
				return true, err
			}
			continue // the loop's top: m leads on if still named, else parks
		}
		selfErr = err
	}
}

// round sends page, read from position from, to every member that lacks
// some of its events. deposed says the watchdog took the lead from m
// meanwhile; then err is m's own end, if m was the member whose Send
// stalled. Otherwise err is the error of m's own Send, if it failed.
func (g *tailGroup) round(m *tailMember, page store.Page, from uint64) (deposed bool, err error) {
	events := page.Events
	lastSeq := events[len(events)-1].Seq
	g.mu.Lock()
	round := append(g.roundBuf[:0], g.members...)
	g.roundBuf = round
	g.cur.Store(nil)
	g.inRound, g.roundLeader, g.lastSends = true, m, g.sends.Load()
	g.watch.Reset(g.set.lease)
	g.mu.Unlock()

	var resps [4]*goethev1.ConsumeResponse // by the index of the first event sent; mostly 0
	var selfErr error
	for _, r := range round {
		if r.out.Load() {
			continue
		}
		pos := r.pos.Load()
		if pos < from {
			// It joined behind the page (during the linger): it may lack
			// events before the page's first, so it waits for the next
			// round, which reads from it.
			continue
		}
		k := 0
		if pos > events[0].ID {
			k = sort.Search(len(events), func(i int) bool { return events[i].ID >= pos })
			if k == len(events) {
				continue // it has them all (it joined later, ahead)
			}
		}
		if consumeSkips(r.want.Load(), events[k].Seq) != 0 {
			g.takeOut(r, nil) // it reports the skip itself
			continue
		}
		var resp *goethev1.ConsumeResponse
		if k < len(resps) {
			resp = resps[k]
		}
		if resp == nil {
			var err error
			if resp, err = consumePages.response(g.topic, events[k:]); err != nil {
				g.endRound()
				g.disband(m)
				return true, err
			}
			if k < len(resps) {
				resps[k] = resp
			}
		}
		g.cur.Store(r)
		g.sends.Add(1)
		err := r.w.sendUnarmed(r.send, resp)
		if err == nil {
			r.pos.Store(page.Next)
			r.want.Store(lastSeq + 1)
		}
		if !g.cur.CompareAndSwap(r, nil) {
			// The watchdog found this Send stalled and deposed m: r is
			// out, another member leads; hand r back, and touch nothing
			// more of the round. The watchdog armed r's slow-consumer
			// timer under g.mu: disarm it after that.
			g.mu.Lock()
			r.w.disarm()
			g.mu.Unlock()
			if r == m {
				return true, err
			}
			r.notes <- tailNote{err: err}
			return true, nil
		}
		switch {
		case err == nil:
		case r == m:
			selfErr = err
		default:
			g.takeOut(r, err)
		}
	}
	clear(round)
	g.endRound()
	return false, selfErr
}

// endRound stops the watchdog after a round.
func (g *tailGroup) endRound() {
	g.mu.Lock()
	g.inRound, g.roundLeader = false, nil
	g.watch.Stop()
	g.mu.Unlock()
}

// check is the watchdog, on g's timer while a round runs: a Send in
// progress at two checks a lease apart, with no other Send begun between,
// has stalled; its member is taken out, and the lead passes to another
// member (see the comment at the top).
func (g *tailGroup) check() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.inRound {
		return
	}
	sends := g.sends.Load()
	r := g.cur.Load()
	if sends != g.lastSends || r == nil || r == stalledSend || !g.cur.CompareAndSwap(r, stalledSend) {
		g.lastSends = sends
		g.watch.Reset(g.set.lease)
		return
	}
	old := g.roundLeader
	g.inRound, g.roundLeader = false, nil
	g.set.metrics.observeStalled()
	// The stalled Send has run for one to two leases: from now on its
	// stream's own slow-consumer timeout bounds it, as for a Send of its
	// own (sendWatch).
	r.w.arm(g.set.lease)
	// Out without a note: the deposed goroutine sends it when the Send
	// returns.
	if g.removeLocked(r) {
		return // nobody left; the deposed goroutine finds itself out
	}
	if r == old || g.leader == old {
		g.passLeadLocked(old)
		if g.leader == nil {
			g.leader = old // no other member: old leads on once its Send returns
		}
	}
}
