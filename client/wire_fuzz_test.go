package client

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// The fuzz targets of the client's hand-written wire code. Their seeds (the
// f.Add calls and testdata/fuzz/<name>/) run with every go test; fuzz one
// with
//
//	go test -run '^$' -fuzz '^FuzzDecodeConsumeResponse$' -fuzztime 30s ./client/

// splitBuffers is data as gRPC may hand it to the codec: in two buffers,
// split in the middle, when it has two bytes or more.
func splitBuffers(data []byte) mem.BufferSlice {
	if len(data) < 2 {
		return mem.BufferSlice{mem.SliceBuffer(data)}
	}
	return mem.BufferSlice{mem.SliceBuffer(data[:len(data)/2]), mem.SliceBuffer(data[len(data)/2:])}
}

// marshalSeed is proto.Marshal for seeds, which cannot fail.
func marshalSeed(f *testing.F, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	require.NoError(f, err)
	return b
}

// FuzzDecodeConsumeResponse: for any bytes, batch.decode (the Consume
// decoder) and codec.Unmarshal into a *batch never panic; an error they
// return wraps errMalformed; and whenever the generated code
// (proto.Unmarshal into goethev1.ConsumeResponse) accepts the bytes, the
// hand decoder accepts them too and returns the same events field by field:
// topic, id, seq, time, payload, headers. Decoding into a batch that held
// another message first gives the same events. The hand decoder may accept
// what the generated code refuses (strings that are not valid UTF-8, field
// numbers above protowire.MaxValidNumber): it does not check them.
func FuzzDecodeConsumeResponse(f *testing.F) {
	f.Add([]byte{})
	f.Add(marshalSeed(f, &goethev1.ConsumeResponse{Topic: "t"}))
	f.Add(marshalSeed(f, &goethev1.ConsumeResponse{Topic: "tö/pic", Events: []*goethev1.Event{
		{Id: 1_700_000_000_000_000_000, Seq: 1, Payload: []byte("created")},
		{Id: 1_700_000_000_000_000_001, Seq: 2, Headers: map[string]string{"": "empty key", "k": "", "a": "b"}},
		{Id: 1<<64 - 1, Seq: 1<<64 - 1, Payload: []byte{0, 0xff}},
		{Id: 1_700_000_000_000_000_002, Seq: 3, Payload: []byte("k"), DedupeKey: "order-17"},
	}}))
	// Fields out of order, unknown fields of every wire type, a group, a
	// repeated scalar (the last wins), a header entry without a key, a
	// known field number with the wrong wire type.
	var ev []byte
	ev = protowire.AppendTag(ev, eventSeq, protowire.VarintType)
	ev = protowire.AppendVarint(ev, 3)
	ev = protowire.AppendTag(ev, eventSeq, protowire.VarintType)
	ev = protowire.AppendVarint(ev, 4)
	ev = protowire.AppendTag(ev, eventBody, protowire.VarintType) // wrong type: unknown
	ev = protowire.AppendVarint(ev, 5)
	ev = protowire.AppendTag(ev, 20, protowire.StartGroupType)
	ev = protowire.AppendTag(ev, 1, protowire.Fixed32Type)
	ev = protowire.AppendFixed32(ev, 7)
	ev = protowire.AppendTag(ev, 20, protowire.EndGroupType)
	ev = protowire.AppendTag(ev, eventHeader, protowire.BytesType)
	ev = protowire.AppendBytes(ev, protowire.AppendString(protowire.AppendTag(nil, mapValue, protowire.BytesType), "v"))
	ev = protowire.AppendTag(ev, eventID, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, 99)
	var msg []byte
	msg = protowire.AppendTag(msg, respEvents, protowire.BytesType)
	msg = protowire.AppendBytes(msg, ev)
	msg = protowire.AppendTag(msg, 77, protowire.Fixed64Type)
	msg = protowire.AppendFixed64(msg, 1)
	msg = protowire.AppendTag(msg, respTopic, protowire.BytesType)
	msg = protowire.AppendString(msg, "first")
	msg = protowire.AppendTag(msg, respTopic, protowire.BytesType)
	msg = protowire.AppendString(msg, "last")
	f.Add(msg)
	f.Add([]byte{0x12, 0x05, 0x08})       // truncated event
	f.Add([]byte{0x0a, 0x02, 0xff, 0xfe}) // topic not valid UTF-8
	f.Add([]byte{0xff})

	prior := marshalSeed(f, &goethev1.ConsumeResponse{Topic: "prior", Events: []*goethev1.Event{
		{Id: 5, Seq: 5, Payload: []byte("p"), Headers: map[string]string{"x": "y"}}, {Id: 6}, {Id: 7},
	}})
	f.Fuzz(func(t *testing.T, data []byte) {
		var fresh batch
		errFresh := fresh.decode(data)
		var reused batch
		require.NoError(t, reused.decode(prior))
		errReused := codec{}.Unmarshal(splitBuffers(data), &reused)
		require.Equal(t, errFresh == nil, errReused == nil, "the same answer through the codec")
		if errFresh != nil {
			require.ErrorIs(t, errFresh, errMalformed)
			require.ErrorIs(t, errReused, errMalformed)
		}

		var want goethev1.ConsumeResponse
		if proto.Unmarshal(data, &want) != nil {
			return
		}
		require.NoError(t, errFresh, "the generated code accepts % x", data)
		requireBatch(t, &want, fresh.events)
		requireBatch(t, &want, reused.events)
		for _, e := range fresh.events {
			require.Equal(t, len(e.Payload), cap(e.Payload), "payloads are capped")
		}
	})
}

// wantAnswers is what the generated code decoded, as produceAnswers'
// list: the top-level answer, then more's.
func wantAnswers(m *goethev1.ProduceStreamResponse) []answer {
	out := []answer{outcome(m.GetRequestId(), m.GetResult(), m.GetError())}
	for _, a := range m.GetMore() {
		out = append(out, outcome(a.GetRequestId(), a.GetResult(), a.GetError()))
	}
	return out
}

func outcome(id uint64, res *goethev1.ProduceResponse, st *spb.Status) answer {
	a := answer{id: id, status: st}
	if res != nil {
		a.result = true
		a.res = ProduceResult{FirstID: res.GetFirstId(), FirstSeq: res.GetFirstSeq(), Count: int(res.GetCount()), RaftIndex: res.GetRaftIndex()}
		for _, d := range res.GetDuplicates() {
			a.res.Duplicates = append(a.res.Duplicates, Duplicate{Index: int(d.GetIndex()), ID: d.GetId(), Seq: d.GetSeq()})
		}
	}
	return a
}

func requireAnswers(t *testing.T, want, got []answer) {
	t.Helper()
	require.Len(t, got, len(want))
	for i, w := range want {
		g := got[i]
		require.Equal(t, w.id, g.id, "answer %d", i)
		require.Equal(t, w.result, g.result, "answer %d", i)
		require.Equal(t, w.res, g.res, "answer %d", i)
		require.Equal(t, w.status == nil, g.status == nil, "answer %d", i)
		require.True(t, proto.Equal(w.status, g.status), "answer %d: want %v, got %v", i, w.status, g.status)
	}
}

// FuzzDecodeProduceStreamResponse: for any bytes, produceAnswers.decode
// (ProduceStream's answers, the more field included) and codec.Unmarshal
// into a *produceAnswers never panic and agree with each other; and
// whenever the generated code (proto.Unmarshal into
// goethev1.ProduceStreamResponse) accepts the bytes, the hand decoder
// accepts them too and returns the same answers in the same order (the
// top-level one, then more's): request id, result or error status, the
// result's first id, first seq and count — also when an outcome field is
// given twice (merged, as protobuf requires).
func FuzzDecodeProduceStreamResponse(f *testing.F) {
	st, err := status.New(codes.FailedPrecondition, "expected last seq 7, actual 4").WithDetails(
		&errdetails.ErrorInfo{Domain: goethev1.ErrorDomain, Reason: goethev1.ReasonExpectedLastSeqMismatch, Metadata: map[string]string{"actual_last_seq": "4"}})
	require.NoError(f, err)
	res := &goethev1.ProduceResponse{FirstId: 1_700_000_000_000_000_123, FirstSeq: 9, Count: 3}
	f.Add([]byte{})
	f.Add(marshalSeed(f, &goethev1.ProduceStreamResponse{RequestId: 41, Outcome: &goethev1.ProduceStreamResponse_Result{Result: &goethev1.ProduceResponse{
		FirstId: 7, FirstSeq: 2, Count: 1, Duplicates: []*goethev1.Duplicate{{Index: 0, Id: 3, Seq: 1}, {Index: 2, Id: 1<<64 - 1, Seq: 9}}}}}))
	f.Add(marshalSeed(f, &goethev1.ProduceStreamResponse{RequestId: 42, Outcome: &goethev1.ProduceStreamResponse_Result{Result: res}}))
	f.Add(marshalSeed(f, &goethev1.ProduceStreamResponse{RequestId: 43, Outcome: &goethev1.ProduceStreamResponse_Error{Error: st.Proto()}}))
	f.Add(marshalSeed(f, &goethev1.ProduceStreamResponse{RequestId: 44, Outcome: &goethev1.ProduceStreamResponse_Result{Result: res},
		More: []*goethev1.ProduceStreamAnswer{
			{RequestId: 45, Outcome: &goethev1.ProduceStreamAnswer_Error{Error: st.Proto()}},
			{RequestId: 46, Outcome: &goethev1.ProduceStreamAnswer_Result{Result: &goethev1.ProduceResponse{FirstId: 5, FirstSeq: 6, Count: 1}}},
			{RequestId: 47},
		}}))
	// more before the top level's fields; an error, then a result that
	// replaces it; a count over 32 bits (truncated, as uint32 is); a
	// result field of the wrong wire type (unknown).
	var msg []byte
	msg = protowire.AppendTag(msg, psRespMore, protowire.BytesType)
	msg = protowire.AppendBytes(msg, marshalSeed(f, &goethev1.ProduceStreamAnswer{RequestId: 1}))
	msg = protowire.AppendTag(msg, psRespError, protowire.BytesType)
	msg = protowire.AppendBytes(msg, marshalSeed(f, st.Proto()))
	var r []byte
	r = protowire.AppendTag(r, resCount, protowire.VarintType)
	r = protowire.AppendVarint(r, 1<<32+5)
	msg = protowire.AppendTag(msg, psRespResult, protowire.BytesType)
	msg = protowire.AppendBytes(msg, r)
	msg = protowire.AppendTag(msg, psRespResult, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 3)
	msg = protowire.AppendTag(msg, psRespID, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 2)
	f.Add(msg)
	f.Add([]byte{0x12, 0x05, 0x08})             // truncated result
	f.Add([]byte{0x22, 0x03, 0x12, 0x05, 0x08}) // truncated in more
	f.Add([]byte{0x1a, 0x02, 0x12, 0x01})       // status message truncated
	// result given twice: the generated code merges the two (first_id 5,
	// first_seq 6), the hand decoder keeps the second alone (skipped).
	f.Add([]byte{0x12, 0x09, 0x09, 5, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x02, 0x10, 0x06})

	prior := marshalSeed(f, &goethev1.ProduceStreamResponse{RequestId: 9, Outcome: &goethev1.ProduceStreamResponse_Error{Error: st.Proto()},
		More: []*goethev1.ProduceStreamAnswer{{RequestId: 10, Outcome: &goethev1.ProduceStreamAnswer_Result{Result: res}}}})
	f.Fuzz(func(t *testing.T, data []byte) {
		var fresh produceAnswers
		errFresh := fresh.decode(data)
		var reused produceAnswers
		require.NoError(t, reused.decode(prior))
		errReused := codec{}.Unmarshal(splitBuffers(data), &reused)
		require.Equal(t, errFresh == nil, errReused == nil, "the same answer through the codec")
		if errFresh == nil {
			requireAnswers(t, fresh.list, reused.list)
		}

		var want goethev1.ProduceStreamResponse
		if proto.Unmarshal(data, &want) != nil {
			return
		}
		require.NoError(t, errFresh, "the generated code accepts % x", data)
		requireAnswers(t, wantAnswers(&want), fresh.list)
	})
}

// fuzzEvents builds events from spec, a byte at a time: per event a
// payload length and a header count, each header a key length and a value
// length, all bytes taken from text in turn (so that keys repeat and
// strings may be invalid UTF-8). It also returns where the events split
// into Sends: after each event whose payload length byte is odd.
func fuzzEvents(spec, text []byte) (events []EventData, splits []int) {
	take := func(n int) []byte {
		n = min(n, len(text))
		b := text[:n:n]
		text = text[n:]
		return b
	}
	next := func() int {
		if len(spec) == 0 {
			return -1
		}
		b := spec[0]
		spec = spec[1:]
		return int(b)
	}
	for len(events) < 64 {
		pl := next()
		if pl < 0 {
			break
		}
		e := EventData{Payload: take(pl % 32)}
		if pl%32 == 31 {
			e.Payload = nil
		}
		for h := max(next(), 0) % 5; h > 0; h-- {
			if e.Headers == nil {
				e.Headers = map[string]string{}
			}
			k := string(take(max(next(), 0) % 8))
			e.Headers[k] = string(take(max(next(), 0) % 8))
		}
		if pl%3 == 0 {
			e.DedupeKey = string(take(max(next(), 0) % 12))
		}
		events = append(events, e)
		if pl%2 == 1 {
			splits = append(splits, len(events))
		}
	}
	return events, splits
}

func validEvents(events []EventData) bool {
	for _, e := range events {
		if !utf8.ValidString(e.DedupeKey) {
			return false
		}
		for k, v := range e.Headers {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

func requireEventData(t *testing.T, want []EventData, got []*goethev1.EventData) {
	t.Helper()
	require.Len(t, got, len(want))
	for i, w := range want {
		require.Equal(t, string(w.Payload), string(got[i].GetPayload()), "event %d", i)
		require.Equal(t, w.DedupeKey, got[i].GetDedupeKey(), "event %d", i)
		if len(w.Headers) == 0 {
			require.Empty(t, got[i].GetHeaders(), "event %d", i)
		} else {
			require.Equal(t, w.Headers, got[i].GetHeaders(), "event %d", i)
		}
	}
}

// FuzzEncodeProduce: for any topic, events (payloads, header keys and
// values) and expectation, the hand encoders never panic, and what they
// encode the generated code decodes to the same request. encodeProduce
// (unary Produce) refuses exactly a topic or header that is not valid
// UTF-8, with INVALID_ARGUMENT, and otherwise proto.Unmarshal into
// goethev1.ProduceRequest gives the same topic, events, payloads, headers
// and expected_last_seq. A Producer's request (its Sends' chunks, with or
// without room reserved for the head, merged behind the head by
// request.message) decodes with proto.Unmarshal into
// goethev1.ProduceStreamRequest to the same request id and produce.
func FuzzEncodeProduce(f *testing.F) {
	f.Add("orders", uint64(1), true, uint64(7), true, []byte{7, 0}, []byte("created"))
	f.Add("tö/pic", uint64(0), false, uint64(0), false, []byte{0, 3, 1, 1, 0, 0, 2, 2, 1, 3, 31, 0}, []byte("akbvcw"))
	f.Add("", uint64(1<<63), true, uint64(0), true, []byte{}, []byte{})
	f.Add("t", uint64(9), false, uint64(1<<64-1), true, []byte{30, 4, 7, 7, 7, 7, 7, 7, 7, 7, 29, 1, 2, 2}, make([]byte, 200))
	// Over 1 KiB: pooled chunks; one Send, then a Send per event.
	f.Add("big", uint64(5), true, uint64(0), false, bytes.Repeat([]byte{30, 1, 7, 7}, 60), bytes.Repeat([]byte("0123456789"), 300))
	f.Add("big", uint64(6), false, uint64(3), true, bytes.Repeat([]byte{29, 0}, 60), bytes.Repeat([]byte("0123456789"), 300))
	f.Add("a\xffb", uint64(1), true, uint64(0), false, []byte{1, 0}, []byte("x"))       // topic not UTF-8
	f.Add("t", uint64(1), true, uint64(0), false, []byte{1, 1, 1, 1}, []byte("x\xffy")) // header not UTF-8
	f.Fuzz(func(t *testing.T, topic string, id uint64, room bool, expectN uint64, hasExpect bool, spec, text []byte) {
		events, splits := fuzzEvents(spec, text)
		var expect *uint64
		if hasExpect {
			expect = &expectN
		}
		valid := utf8.ValidString(topic) && validEvents(events)

		req, err := encodeProduce(topic, events, expect)
		if !valid {
			require.ErrorIs(t, err, ErrInvalidArgument)
			return
		}
		require.NoError(t, err)
		data, err := codec{}.Marshal(req)
		require.NoError(t, err)
		var got goethev1.ProduceRequest
		require.NoError(t, proto.Unmarshal(data.Materialize(), &got))
		data.Free()
		require.Equal(t, topic, got.GetTopic())
		requireEventData(t, events, got.GetEvents())
		if hasExpect {
			require.NotNil(t, got.ExpectedLastSeq)
			require.Equal(t, expectN, got.GetExpectedLastSeq())
		} else {
			require.Nil(t, got.ExpectedLastSeq)
		}

		// The same events as a Producer's request, one chunk per Send.
		r := &request{tq: &topicQueue{name: topic}, expect: expectN, hasExpect: hasExpect}
		from := 0
		for _, to := range append(splits, len(events)) {
			if to == from && to != len(events) {
				continue
			}
			send := events[from:to]
			from = to
			if len(send) == 0 {
				continue // Send sends no empty request
			}
			size, err := eventsSize(send, 0)
			require.NoError(t, err)
			reserve := 0
			if room && len(r.chunks) == 0 {
				reserve = maxStreamHead + produceHeadSize(topic, expect)
			}
			ch, err := encodeChunk(send, size, reserve)
			require.NoError(t, err)
			r.chunks = append(r.chunks, ch)
			r.size += size
			r.events += len(send)
		}
		data, err = codec{}.Marshal(r.message(id))
		require.NoError(t, err)
		var stream goethev1.ProduceStreamRequest
		require.NoError(t, proto.Unmarshal(data.Materialize(), &stream))
		data.Free()
		require.Equal(t, id, stream.GetRequestId())
		require.NotNil(t, stream.GetProduce(), "produce is present even when empty")
		require.Equal(t, topic, stream.GetProduce().GetTopic())
		requireEventData(t, events, stream.GetProduce().GetEvents())
		if hasExpect {
			require.NotNil(t, stream.GetProduce().ExpectedLastSeq)
			require.Equal(t, expectN, stream.GetProduce().GetExpectedLastSeq())
		} else {
			require.Nil(t, stream.GetProduce().ExpectedLastSeq)
		}
	})
}
