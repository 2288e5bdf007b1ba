package server

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/goethe-log/goethe/internal/wire"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// Shared pages: followers at the end of a topic are woken by the same
// commit and read the same page from the store's tail ring (store/tail.go):
// the same events, in the same memory, since the ring's events are written
// once and never changed. Each of them used to build its own
// ConsumeResponse and have the codec encode it: N followers, N encodings of
// the same bytes. sharedPages builds the response of such a page once and
// has it encoded once (wire.Share); every follower Sends that one message,
// and the codec hands gRPC the shared encoding.
//
// A page is recognised by the address of its first event and its length:
// two pages with the same first event in the same memory and the same
// length are the same events, as the ring never rewrites an event in place
// and the entry holds the page, so that memory cannot be reused for other
// events while the entry lives. Pages read from the engine have memory of
// their own and so are never shared by two streams; they are only shared
// through here when they end the topic (see consume), which costs one
// encoding, as before.

// sharedPageSlots is how many pages the server keeps encoded at once, in a
// table indexed by the page's address. It bounds the memory the table
// holds: each slot keeps one page's events (and the ring array they are
// in, at most store.Options.TailBytes) and its encoding (at most the
// store's PageBytes) alive. Two pages that fall into the same slot take
// turns: a stream whose page is no longer in the table builds another
// entry, at the cost of one encoding. Followers of 64 topics written at
// once, or followers spread over 64 positions of one topic, are served
// without such turns.
const sharedPageSlots = 64

// sharedPages is the table of encoded pages. Its zero value is ready.
type sharedPages struct {
	slots [sharedPageSlots]sharedSlot
}

// sharedSlot holds one page. Streams that find their page there take it
// with one atomic load; the mutex orders the streams that replace it.
type sharedSlot struct {
	mu sync.Mutex
	p  atomic.Pointer[sharedPage]
}

// sharedPage is one page's response, built and encoded once.
type sharedPage struct {
	topic string
	first *store.Event // the page's first event, in the ring's memory
	n     int          // the page's length

	// The first stream to claim the page builds it; the others wait for
	// ready, closed once it is built (or released unbuilt), unless built
	// is already set: most streams of a fan-out find it so and take the
	// page with atomic loads only, not queueing on a lock.
	claimed atomic.Bool
	built   atomic.Bool
	ready   chan struct{}
	resp    *goethev1.ConsumeResponse // nil: encoding failed, or released before built
	unshare func()
	err     error
}

// newSharedPage is the page of topic of n events from first, unbuilt.
func newSharedPage(topic string, first *store.Event, n int) *sharedPage {
	return &sharedPage{topic: topic, first: first, n: n, ready: make(chan struct{})}
}

// wait returns once p is built or released unbuilt; building it if no
// other stream has claimed it (events: its page).
func (p *sharedPage) wait(events []store.Event) {
	if p.built.Load() {
		return
	}
	if p.claimed.CompareAndSwap(false, true) {
		p.build(events)
		p.built.Store(true)
		close(p.ready)
		return
	}
	<-p.ready
}

// slotOf picks p's slot: Fibonacci hashing of its address.
func slotOf(p *store.Event) int {
	h := uint64(uintptr(unsafe.Pointer(p))) * 0x9E3779B97F4A7C15
	return int(h >> 58) // 6 bits: sharedPageSlots == 64
}

// response returns the response of topic's page events, shared with every
// stream that sends the same page while it is in the table: the message
// must not be changed. events must be a page of the store (immutable) and
// not empty.
func (sp *sharedPages) response(topic string, events []store.Event) (*goethev1.ConsumeResponse, error) {
	first, n := &events[0], len(events)
	s := &sp.slots[slotOf(first)]
	p := s.p.Load()
	if !p.is(topic, first, n) {
		var old *sharedPage
		s.mu.Lock()
		if p = s.p.Load(); !p.is(topic, first, n) {
			old, p = p, newSharedPage(topic, first, n)
			s.p.Store(p)
		}
		s.mu.Unlock()
		if old != nil {
			old.release()
		}
	}
	p.wait(events)
	if p.err != nil {
		return nil, p.err
	}
	if p.resp == nil {
		// Released before it was built: this stream builds its own.
		resp := &goethev1.ConsumeResponse{Topic: topic}
		fillResponse(resp, nil, events)
		return resp, nil
	}
	return p.resp, nil
}

// is reports whether p is the page of topic of n events from first.
func (p *sharedPage) is(topic string, first *store.Event, n int) bool {
	return p != nil && p.first == first && p.n == n && p.topic == topic
}

// build makes p's response from events and shares its encoding. Only the
// stream that claimed p runs it.
func (p *sharedPage) build(events []store.Event) {
	msgs := make([]goethev1.Event, len(events))
	resp := &goethev1.ConsumeResponse{Topic: p.topic, Events: make([]*goethev1.Event, len(events))}
	for i := range events {
		e := &events[i]
		msgs[i].Id, msgs[i].Seq, msgs[i].Payload, msgs[i].Headers, msgs[i].DedupeKey = e.ID, e.Seq, e.Payload, e.Headers, e.DedupeKey
		resp.Events[i] = &msgs[i]
	}
	unshare, err := wire.Share(resp)
	if err != nil {
		p.err = fmt.Errorf("consume of %q: %w", p.topic, err)
		return
	}
	p.resp, p.unshare = resp, unshare
}

// release takes p's encoding out of the codec's table (streams sending p
// still hold the message, and encode it themselves if they Send it after
// this). A p not built yet is never built.
func (p *sharedPage) release() {
	if p.claimed.CompareAndSwap(false, true) {
		p.built.Store(true)
		close(p.ready)
		return
	}
	<-p.ready
	if p.unshare != nil {
		p.unshare()
	}
}

// consumePages is the server's table of shared pages: one for the process,
// as a page's key (its memory) is unique across stores and servers.
var consumePages sharedPages
