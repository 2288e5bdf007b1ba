package server

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/goethe-log/goethe/internal/wire"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// testPage is a page of n events with headers, in memory of its own.
func testPage(first uint64, n int) []store.Event {
	evs := make([]store.Event, n)
	for i := range evs {
		evs[i] = store.Event{ID: first + uint64(i), Seq: first + uint64(i), Payload: fmt.Appendf(nil, "payload %d", first+uint64(i)),
			Headers: map[string]string{"k1": "a", "k2": "b", "k3": fmt.Sprint(i), "k4": "d"}}
	}
	return evs
}

// wantBytes is what a stream of its own sends for events: the response
// fillResponse builds, encoded deterministically.
func wantBytes(t *testing.T, topic string, events []store.Event) []byte {
	resp := &goethev1.ConsumeResponse{Topic: topic}
	fillResponse(resp, nil, events)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(resp)
	require.NoError(t, err)
	return b
}

// sent is what the codec hands gRPC for m, made deterministic when m is
// not shared (a map's entries are then encoded in any order): the bytes a
// receiver decodes.
func sent(t *testing.T, m proto.Message) []byte {
	data, err := wire.Codec{}.Marshal(m)
	require.NoError(t, err)
	defer data.Free()
	if _, ok := wire.SharedEncoding(m); ok {
		return data.Materialize()
	}
	var back goethev1.ConsumeResponse
	require.NoError(t, proto.Unmarshal(data.Materialize(), &back))
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&back)
	require.NoError(t, err)
	return b
}

// sharedPages: the same page (same memory, same length, same topic) gets
// the same response, whose bytes on the wire equal a stream's own; a page
// in other memory, a shorter page of the same memory or another topic gets
// another; a response pushed out of its slot still encodes to the same
// bytes; many streams sending at once read the same bytes, unchanged.
func TestSharedPages(t *testing.T) {
	var sp sharedPages
	evs := testPage(1, 10)
	r1, err := sp.response("t", evs)
	require.NoError(t, err)
	r2, err := sp.response("t", evs)
	require.NoError(t, err)
	require.Same(t, r1, r2, "one response for the same page")
	enc, ok := wire.SharedEncoding(r1)
	require.True(t, ok, "its encoding is shared")
	require.Equal(t, wantBytes(t, "t", evs), enc)
	require.Equal(t, wantBytes(t, "t", evs), sent(t, r1))

	copied := testPage(1, 10)
	for _, other := range []struct {
		topic  string
		events []store.Event
	}{{"t", copied}, {"t", evs[:9]}, {"t", evs[1:]}, {"u", evs}} {
		r, err := sp.response(other.topic, other.events)
		require.NoError(t, err)
		require.NotSame(t, r1, r)
		require.Equal(t, wantBytes(t, other.topic, other.events), sent(t, r))
	}

	// More pages than slots: some push others out; every response still
	// sends the page's bytes, shared or not.
	pages := make([][]store.Event, 3*sharedPageSlots)
	resps := make([]*goethev1.ConsumeResponse, len(pages))
	for i := range pages {
		pages[i] = testPage(uint64(100*i+1), 1+i%7)
		resps[i], err = sp.response("t", pages[i])
		require.NoError(t, err)
	}
	unshared := 0
	for i := range pages {
		if _, ok := wire.SharedEncoding(resps[i]); !ok {
			unshared++
		}
		require.Equal(t, wantBytes(t, "t", pages[i]), sent(t, resps[i]), "page %d", i)
	}
	require.Positive(t, unshared, "some pages were pushed out of the table")

	// A page released before it is built: the stream builds its own.
	p := newSharedPage("t", &evs[0], len(evs))
	p.release()
	sp.slots[slotOf(&evs[0])].p.Store(p)
	r, err := sp.response("t", evs)
	require.NoError(t, err)
	require.Equal(t, wantBytes(t, "t", evs), sent(t, r))
}

// Many streams take and send the same pages at once (run with -race): each
// sends the page's bytes, and the shared bytes are the same afterwards.
func TestSharedPagesConcurrent(t *testing.T) {
	var sp sharedPages
	// Three pages in three slots, so that none pushes another out.
	var pages [][]store.Event
	used := map[int]bool{}
	for _, p := range [][]store.Event{testPage(1, 5), testPage(10, 50), testPage(100, 1)} {
		for used[slotOf(&p[0])] {
			p = testPage(p[0].ID, len(p)) // other memory
		}
		used[slotOf(&p[0])] = true
		pages = append(pages, p)
	}
	want := make([][]byte, len(pages))
	for i, p := range pages {
		want[i] = wantBytes(t, "t", p)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := range 200 {
		wg.Go(func() {
			for k := range 20 {
				i := (g + k) % len(pages)
				r, err := sp.response("t", pages[i])
				if err != nil {
					errs <- err
					return
				}
				data, err := wire.Codec{}.Marshal(r)
				if err != nil {
					errs <- err
					return
				}
				// The last response of a page is shared (no page pushes
				// another out here), an earlier one may have been built
				// by a stream for itself: compare that one decoded.
				got := data.Materialize()
				if _, ok := wire.SharedEncoding(r); !ok {
					var back goethev1.ConsumeResponse
					if err := proto.Unmarshal(got, &back); err != nil {
						errs <- err
						return
					}
					got, _ = proto.MarshalOptions{Deterministic: true}.Marshal(&back)
				}
				if string(got) != string(want[i]) {
					errs <- fmt.Errorf("page %d: sent %d bytes, want %d", i, len(got), len(want[i]))
				}
				data.Free()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i, p := range pages {
		r, err := sp.response("t", p)
		require.NoError(t, err)
		enc, ok := wire.SharedEncoding(r)
		require.True(t, ok)
		require.Equal(t, want[i], enc, "the shared bytes are unchanged")
	}
}
