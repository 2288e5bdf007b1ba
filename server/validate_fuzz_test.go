package server

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// fuzzProduce builds a ProduceRequest of count events from spec, a byte
// at a time: per event a payload length (0 to 63; 63 with bit 6 set is a
// nil event, which only an in-process caller can send) and a header count,
// each header a key length and a value length, all bytes taken from text
// in turn (so that keys repeat, and run out to ""). Events past the end of
// spec are empty. A payload length byte with bit 6 set (and not 0x7f)
// gives the event a dedupe key, of the length the next byte says (0-15).
func fuzzProduce(topic string, count int, spec, text []byte) *goethev1.ProduceRequest {
	take := func(n int) []byte {
		n = min(n, len(text))
		b := text[:n:n]
		text = text[n:]
		return b
	}
	next := func() int {
		if len(spec) == 0 {
			return 0
		}
		b := spec[0]
		spec = spec[1:]
		return int(b)
	}
	req := &goethev1.ProduceRequest{Topic: topic, Events: make([]*goethev1.EventData, count)}
	for i := range req.Events {
		b := next()
		if b&0x7f == 0x7f {
			continue // nil
		}
		e := &goethev1.EventData{Payload: take(b % 64)}
		if b&0x40 != 0 {
			e.DedupeKey = string(take(next() % 16))
		}
		for h := next() % 4; h > 0; h-- {
			if e.Headers == nil {
				e.Headers = map[string]string{}
			}
			k := string(take(next() % 16))
			e.Headers[k] = string(take(next() % 16))
		}
		req.Events[i] = e
	}
	return req
}

// FuzzValidateProduce: service.validate, which checks every Produce (unary
// and streamed) before the append, never panics, and accepts exactly the
// requests within the documented rules and limits, checked in this order:
// the topic passes store.ValidateName (else an error wrapping
// store.ErrInvalidName); there is at least one event (else errBadRequest)
// and at most Options.MaxBatchEvents (else errLimitExceeded); every event's
// payload plus header keys and values is at most Options.MaxEventBytes
// bytes (else errLimitExceeded naming the first event over it). Every
// refusal is INVALID_ARGUMENT, and leaves buf as it was, holding no
// reference to the request's events in its spare capacity. An accepted
// request's events are appended to buf in order, sharing the request's
// payloads and header maps, and its expectation is ExpectLastSeq of
// expected_last_seq when set, else ExpectAny.
func FuzzValidateProduce(f *testing.F) {
	// topic, max event bytes, max batch events, events, prefix of buf,
	// expectation, spec, text.
	f.Add("t", uint16(10), uint8(3), uint8(1), uint8(0), true, uint64(7), []byte{10}, make([]byte, 10))              // at the event limit
	f.Add("t", uint16(10), uint8(3), uint8(1), uint8(2), false, uint64(0), []byte{11}, make([]byte, 11))             // one over
	f.Add("t", uint16(10), uint8(3), uint8(3), uint8(1), false, uint64(0), []byte{}, []byte{})                       // at the batch limit
	f.Add("t", uint16(10), uint8(3), uint8(4), uint8(0), false, uint64(0), []byte{}, []byte{})                       // one over
	f.Add("t", uint16(10), uint8(3), uint8(0), uint8(0), false, uint64(0), []byte{}, []byte{})                       // no event
	f.Add("", uint16(10), uint8(3), uint8(1), uint8(0), false, uint64(0), []byte{}, []byte{})                        // empty topic
	f.Add("t\n", uint16(10), uint8(3), uint8(1), uint8(0), false, uint64(0), []byte{}, []byte{})                     // control character
	f.Add("a\xffb", uint16(10), uint8(3), uint8(1), uint8(0), false, uint64(0), []byte{}, []byte{})                  // not UTF-8
	f.Add(string(make([]byte, 255)), uint16(10), uint8(3), uint8(1), uint8(0), false, uint64(0), []byte{}, []byte{}) // NULs
	f.Add(fmt.Sprintf("%0255d", 0), uint16(10), uint8(3), uint8(1), uint8(0), false, uint64(0), []byte{}, []byte{})  // 255 bytes
	f.Add(fmt.Sprintf("%0256d", 0), uint16(10), uint8(3), uint8(1), uint8(0), false, uint64(0), []byte{}, []byte{})  // 256 bytes
	f.Add("tö/pic", uint16(8), uint8(5), uint8(3), uint8(3), true, uint64(0), []byte{2, 2, 1, 2, 2, 3, 0x7f, 0, 1, 3, 3}, []byte("pkvkwabcdef"))
	f.Add("t", uint16(0), uint8(0), uint8(1), uint8(0), false, uint64(0), []byte{0}, []byte{})                                       // limits of 0
	f.Add("t", uint16(10), uint8(3), uint8(2), uint8(0), false, uint64(0), []byte{0x40 | 4, 6, 0, 0x40, 2}, []byte("pppkkkkkk\xff")) // keys: at the event limit, then not UTF-8
	f.Add("t", uint16(10), uint8(3), uint8(1), uint8(0), false, uint64(0), []byte{0x40 | 5, 6}, []byte("pppppkkkkkk"))               // key one byte over
	f.Fuzz(func(t *testing.T, topic string, maxEventBytes uint16, maxBatchEvents, count, prefix uint8, hasExpect bool, expect uint64, spec, text []byte) {
		o := Options{MaxEventBytes: int(maxEventBytes), MaxBatchEvents: int(maxBatchEvents)}
		v := &service{s: &Server{opts: o}}
		req := fuzzProduce(topic, int(count), spec, text)
		if hasExpect {
			req.ExpectedLastSeq = &expect
		}
		// buf holds prefix events of a previous request, with room for
		// count/2 more, so that validate both appends in place and grows.
		buf := make([]store.Event, prefix%4, int(prefix%4)+int(count)/2)
		for i := range buf {
			buf[i] = store.Event{Payload: []byte{byte(i)}}
		}
		before := slices.Clone(buf)

		events, x, err := v.validate(req, buf)

		var want error
		over := -1 // the first event over MaxEventBytes, or with a bad key
		var overErr error
		for i, e := range req.Events {
			size := len(e.GetPayload()) + len(e.GetDedupeKey())
			for k, hv := range e.GetHeaders() {
				size += len(k) + len(hv)
			}
			switch {
			case over >= 0:
			case size > o.MaxEventBytes:
				over, overErr = i, errLimitExceeded
			case store.ValidateDedupeKey(e.GetDedupeKey()) != nil:
				over, overErr = i, store.ErrInvalid
			}
		}
		switch n := len(req.Events); {
		case store.ValidateName("topic", topic) != nil:
			want = store.ErrInvalidName
		case n == 0:
			want = errBadRequest
		case n > o.MaxBatchEvents:
			want = errLimitExceeded
		case over >= 0:
			want = overErr
		}
		if want != nil {
			require.ErrorIs(t, err, want)
			require.Equal(t, codes.InvalidArgument, status.Code(toStatus(err)))
			if over >= 0 && want == overErr && len(req.Events) <= o.MaxBatchEvents {
				require.Contains(t, err.Error(), fmt.Sprintf("event %d", over))
			}
			require.Equal(t, before, events, "buf as it was")
			require.Equal(t, store.ExpectAny, x)
			for i, e := range buf[len(buf):cap(buf)] {
				require.Zero(t, e, "spare capacity %d keeps no event", i)
			}
			return
		}
		require.NoError(t, err)
		require.Len(t, events, len(before)+len(req.Events))
		require.Equal(t, before, events[:len(before)])
		for i, e := range req.Events {
			got := events[len(before)+i]
			require.Zero(t, got.ID)
			require.Zero(t, got.Seq)
			require.Equal(t, e.GetPayload(), got.Payload, "event %d", i)
			if len(e.GetPayload()) > 0 {
				require.Same(t, &e.GetPayload()[0], &got.Payload[0], "event %d shares its payload", i)
			}
			require.Equal(t, e.GetHeaders(), got.Headers, "event %d", i)
			require.Equal(t, e.GetDedupeKey(), got.DedupeKey, "event %d", i)
		}
		if hasExpect {
			require.Equal(t, store.ExpectLastSeq(expect), x)
		} else {
			require.Equal(t, store.ExpectAny, x)
		}
	})
}
