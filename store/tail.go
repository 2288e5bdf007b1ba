package store

import (
	"context"
	"encoding/binary"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The tail: followers at the end of a topic are served from the events the
// committer just wrote, not read again from the engine by each of them.
//
// For each topic that readers follow, the committer keeps its most recent
// events in memory, decoded once, in a ring bounded by Options.TailEvents
// and Options.TailBytes. After a group's batch is written, and before its
// new topic state is published, the committer adds the group's appended
// events to the ring (copies: the appenders' buffers are theirs again once
// they are answered) and publishes an immutable view of it. A Read whose
// position lies after the last event the ring has dropped is served from
// the view: no engine scan, no decoding, no allocation: the page's Events
// are a slice of the view's, shared with every other reader (see Read).
//
// The ring holds a contiguous run of the topic's last events: each commit
// either extends it or restarts it. An append that failed is never in it
// (nothing is added before the batch is written); after a reopen it is
// empty and Reads go to the engine until followers and commits fill it.
//
// Waking: a topic's followers wait on one channel that the committer
// closes after publishing a commit. With more than wakeInlineMax of them,
// the channel is handed to the store's waker goroutine, which closes it:
// readying thousands of goroutines is then not the committer's work, so a
// commit's cost does not grow with the number of followers.

// Tail limits, per topic; see Options.TailEvents, TailBytes and TailIdle.
const (
	// DefaultTailEvents bounds the events a topic's ring keeps.
	DefaultTailEvents = 1024
	// DefaultTailBytes bounds the stored size (key and value, as a page
	// counts them) of the events a topic's ring keeps.
	DefaultTailBytes = 1 << 20
	// DefaultTailIdle is how long a topic's ring is kept once nobody reads
	// at its end: the commits after that drop it and keep none.
	DefaultTailIdle = 10 * time.Second
)

// wakeInlineMax is the most followers of a topic that the committer wakes
// itself; more are woken by the waker goroutine (one goroutine hop for the
// readers, none of their cost for the committer).
const wakeInlineMax = 16

// tailView is what readers see of a ring: immutable once published.
type tailView struct {
	events []Event // consecutive events of the topic, oldest first; never empty
	sizes  []int   // sizes[i]: events[i]'s stored size
	before uint64  // id of the topic's event just before events[0], 0 if none
	lastID uint64  // events[len-1].ID
}

// tail is a topic's ring and wake-up signal.
type tail struct {
	view     atomic.Pointer[tailView]   // nil: Reads go to the engine
	followed atomic.Bool                // a reader was at the end since the last commit
	signal   atomic.Pointer[wakeSignal] // nil: nobody waited since the last commit

	// The committer's only.
	buf        []Event // the ring is buf[head:], sizes[head:] their stored sizes
	sizes      []int
	head       int
	live, dead int    // stored bytes of buf[head:] and of buf[:head]
	endSeq     uint64 // seq of the last event the ring accounts for
	before     uint64 // id of the event before buf[head]
	followedAt int64  // clock of the last commit that found followed set
}

// wakeSignal is what a topic's waiters block on until the next commit.
type wakeSignal struct {
	ch      chan struct{}
	waiters atomic.Int32 // that blocked on ch: an estimate (leavers are not subtracted)
}

// waker closes wake-up channels with many waiters, off the commit path.
type waker struct {
	once sync.Once
	mu   sync.Mutex
	q    []chan struct{}
	kick chan struct{}
}

// markFollowed records that a reader is at the end of the topic: the
// committer keeps the ring while this happens within Options.TailIdle.
func (tl *tail) markFollowed() {
	if !tl.followed.Load() {
		tl.followed.Store(true)
	}
}

// read serves a page from the ring: the events at or after from with ids
// at most last, bounded by limit and pageBytes as an engine page is. ok is
// false when the ring does not hold every event at or after from up to
// last; then the engine must be read.
func (tl *tail) read(from, last uint64, limit, pageBytes int) (p Page, ok bool) {
	v := tl.view.Load()
	if v == nil || from <= v.before || v.lastID < last {
		return Page{}, false
	}
	evs := v.events
	i := sort.Search(len(evs), func(i int) bool { return evs[i].ID >= from })
	j, bytes := i, 0
	for j < len(evs) && evs[j].ID <= last && j-i < limit {
		bytes += v.sizes[j]
		j++
		if pageBytes > 0 && bytes >= pageBytes {
			break
		}
	}
	p = Page{Next: from}
	if j > i {
		p.Events = evs[i:j:j] // shared: capped, so that appending copies
		p.Next = evs[j-1].ID + 1
	}
	return p, true
}

// fillTails adds the events that cmds appended to existing topics to
// their rings and publishes the new views. It runs on the committer after
// the group's batch is written and before its state is published, so that
// a follower woken by the commit finds the events in the ring.
func (s *Store) fillTails(cmds []command, a *applied) {
	if s.opts.TailEvents < 0 {
		return
	}
	var now int64
	var touched []*topic
	for i := range cmds {
		cmd := &cmds[i]
		if cmd.kind != cmdAppend || a.outcomes[i].err != nil {
			continue
		}
		t := s.topics[cmd.topic] // the committer is the only writer of topics
		if t == nil {
			continue // created by this group: nobody was following it
		}
		tl := &t.tail
		if tl.followed.Load() || tl.buf != nil {
			if now == 0 {
				now = s.opts.Clock()
			}
			if tl.followed.Swap(false) {
				tl.followedAt = now
			}
		}
		if now == 0 || now-tl.followedAt > int64(s.opts.TailIdle) {
			tl.drop()
			continue
		}
		tl.add(t, cmd.events, a.outcomes[i].res, s.opts.TailEvents, s.opts.TailBytes)
		if len(touched) == 0 || touched[len(touched)-1] != t {
			touched = append(touched, t)
		}
	}
	for _, t := range touched {
		t.tail.publish()
	}
}

// drop empties the ring and lets its memory go.
func (tl *tail) drop() {
	if tl.buf == nil && tl.view.Load() == nil {
		return
	}
	tl.view.Store(nil)
	tl.buf, tl.sizes, tl.head, tl.live, tl.dead, tl.endSeq, tl.before = nil, nil, 0, 0, 0, 0, 0
}

// add appends the events of one successful append (res says where they
// landed) to the ring, keeping at most maxEvents events of maxBytes.
func (tl *tail) add(t *topic, events []Event, res AppendResult, maxEvents, maxBytes int) {
	if tl.endSeq != res.FirstSeq-1 || tl.buf == nil {
		// The ring does not end just before these events: restart it
		// after the topic's last committed event, if that is theirs.
		if t.meta.lastSeq != res.FirstSeq-1 {
			tl.drop()
			return
		}
		// A new array: published views may still read the old one.
		tl.buf, tl.sizes, tl.head, tl.live, tl.dead = nil, nil, 0, 0, 0
		tl.before = t.meta.lastID
		if t.meta.lastSeq == 0 {
			tl.before = 0
		}
	}
	// The newest events that fit, counted from the end.
	k, size, payload := len(events), 0, 0
	for k > 0 && len(events)-k < maxEvents {
		n := storedSize(&events[k-1], res.FirstSeq+uint64(k-1))
		if size+n > maxBytes {
			break
		}
		size += n
		payload += len(events[k-1].Payload)
		k--
	}
	tl.endSeq = res.FirstSeq + uint64(len(events)) - 1
	if k > 0 {
		// Older events do not fit beside these: the ring restarts, in a
		// new array (published views may still read the old one).
		tl.buf, tl.sizes, tl.head, tl.live, tl.dead = nil, nil, 0, 0, 0
		tl.before = res.FirstID + uint64(k) - 1
	}
	arena := make([]byte, payload) // one allocation for the payloads
	for i := k; i < len(events); i++ {
		e := &events[i]
		n := copy(arena, e.Payload)
		ev := Event{ID: res.FirstID + uint64(i), Seq: res.FirstSeq + uint64(i), Payload: arena[:n:n]}
		arena = arena[n:]
		if len(e.Headers) > 0 {
			ev.Headers = maps.Clone(e.Headers)
		}
		size := storedSize(e, ev.Seq)
		tl.buf = append(tl.buf, ev)
		tl.sizes = append(tl.sizes, size)
		tl.live += size
	}
	// Drop the oldest past the bounds. Dropped slots are not cleared:
	// published views may still be reading them.
	for len(tl.buf)-tl.head > maxEvents || tl.live > maxBytes {
		tl.before = tl.buf[tl.head].ID
		tl.live -= tl.sizes[tl.head]
		tl.dead += tl.sizes[tl.head]
		tl.head++
	}
	if tl.head >= maxEvents || tl.dead > maxBytes {
		// Compact into a new array, so that the dropped events' memory
		// can go once no view holds it: at most about twice the bounds.
		n := len(tl.buf) - tl.head
		buf, sizes := make([]Event, n, max(2*n, 16)), make([]int, n, max(2*n, 16))
		copy(buf, tl.buf[tl.head:])
		copy(sizes, tl.sizes[tl.head:])
		tl.buf, tl.sizes, tl.head, tl.dead = buf, sizes, 0, 0
	}
}

// publish makes the ring's current content the view readers see.
func (tl *tail) publish() {
	n := len(tl.buf)
	if n == tl.head {
		tl.view.Store(nil)
		return
	}
	tl.view.Store(&tailView{events: tl.buf[tl.head:n:n], sizes: tl.sizes[tl.head:n:n], before: tl.before, lastID: tl.buf[n-1].ID})
}

// storedSize is the size a page counts for e stored with seq: its key and
// its value as appendEventValue encodes it.
func storedSize(e *Event, seq uint64) int {
	n := eventKeyLen + eventHeaderLen + uvarintLen(seq) + uvarintLen(uint64(len(e.Headers))) + len(e.Payload)
	for k, v := range e.Headers {
		n += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
	}
	return n
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// waitTopic is Wait on an existing topic: it blocks on the topic's signal
// until the topic's last event is at or after from.
func (s *Store) waitTopic(ctx context.Context, t *topic, from uint64) error {
	tl := &t.tail
	s.startWaker()
	tl.markFollowed()
	for {
		sig := tl.signal.Load()
		if sig == nil {
			sig = &wakeSignal{ch: make(chan struct{})}
			if !tl.signal.CompareAndSwap(nil, sig) {
				continue
			}
		}
		// Checked after the signal is taken: a commit or a Close that
		// these checks miss closes it. Not selecting on s.quit keeps
		// thousands of followers off that one channel's lock.
		if last := t.pub.Load().lastID; last != 0 && last >= from {
			return nil
		}
		select {
		case <-s.quit:
			return ErrClosed
		default:
		}
		sig.waiters.Add(1)
		select {
		case <-sig.ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// startWaker starts the waker goroutine once.
func (s *Store) startWaker() {
	w := &s.waker
	w.once.Do(func() {
		w.kick = make(chan struct{}, 1)
		go s.runWaker()
	})
}

// notify wakes the readers waiting on t after its new state is published.
// The committer's cost is the same for one follower or thousands.
func (s *Store) notify(t *topic) {
	sig := t.tail.signal.Swap(nil)
	if sig == nil {
		return // nobody waited since the last commit
	}
	if sig.waiters.Load() <= wakeInlineMax {
		close(sig.ch)
		return
	}
	w := &s.waker
	s.startWaker()
	w.mu.Lock()
	w.q = append(w.q, sig.ch)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// runWaker closes the channels notify hands it until the store closes,
// and then every topic's signal, so that each waiter sees the close.
func (s *Store) runWaker() {
	w := &s.waker
	var q []chan struct{}
	for {
		select {
		case <-w.kick:
		case <-s.quit:
			s.mu.RLock()
			for _, t := range s.topics {
				if sig := t.tail.signal.Swap(nil); sig != nil {
					close(sig.ch)
				}
			}
			s.mu.RUnlock()
			return
		}
		w.mu.Lock()
		q, w.q = w.q, q[:0]
		w.mu.Unlock()
		for i, ch := range q {
			close(ch)
			q[i] = nil
		}
	}
}
