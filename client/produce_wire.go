package client

import (
	"errors"
	"fmt"
	"unicode/utf8"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/goethe-log/goethe/internal/wire"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// Produce requests are encoded by hand, as Consume decodes its batches by
// hand (see codec): a Send encodes its events straight into a pooled buffer,
// without goethev1 messages in between, and a request is those buffers
// behind a small head, handed to gRPC as they are (mem.BufferSlice), so
// that merging several Sends into one request copies nothing. Protobuf
// decoders accept fields in any order, so the head carries the topic and
// expected_last_seq before the events. Answers decode into a reused struct.
// The messages are those of spec/goethe/v1/goethe.proto; the tests check
// both directions against the generated code.

// ProduceStreamRequest, ProduceRequest, EventData, ProduceStreamResponse,
// ProduceStreamAnswer and ProduceResponse field numbers, from goethe.proto.
const (
	psReqID      = 1
	psReqProduce = 2
	prodTopic    = 1
	prodEvents   = 2
	prodExpect   = 3
	dataPayload  = 1
	dataHeaders  = 2
	dataDedupe   = 3
	psRespID     = 1 // also ProduceStreamAnswer's
	psRespResult = 2 // also ProduceStreamAnswer's
	psRespError  = 3 // also ProduceStreamAnswer's
	psRespMore   = 4
	resFirstID   = 1
	resFirstSeq  = 2
	resCount     = 3
	resRaftIndex = 4
	resDuplicate = 5
	dupIndex     = 1
	dupID        = 2
	dupSeq       = 3
)

// maxStreamHead bounds the bytes of a ProduceStreamRequest before its
// produce's fields: request_id's tag and varint, produce's tag and length.
const maxStreamHead = 1 + 10 + 1 + 5

// encodedRequest is a request message already encoded: codec.Marshal hands
// its buffers to gRPC, which frees them once sent.
type encodedRequest struct {
	data   mem.BufferSlice
	inline [2]mem.Buffer // data's array for a message of one or two buffers
}

// newEncodedRequest returns an encodedRequest whose data has room for n
// buffers, in the same allocation for n <= 2.
func newEncodedRequest(n int) *encodedRequest {
	r := new(encodedRequest)
	if n <= len(r.inline) {
		r.data = r.inline[:0]
	} else {
		r.data = make(mem.BufferSlice, 0, n)
	}
	return r
}

// eventsSize is the encoded size of events as the events field of a
// ProduceRequest. It refuses what the protobuf encoding itself refuses,
// strings that are not valid UTF-8 (sent, such a request would fail the
// whole stream, since the server could not decode it), and, when
// maxEventBytes > 0, an event over the server's max-event-bytes, counted as
// the server counts it (payload plus header keys and values).
func eventsSize(events []EventData, maxEventBytes int) (int, error) {
	size := 0
	for i := range events {
		n, counted, err := eventSize(&events[i])
		if err != nil {
			return 0, fmt.Errorf("%w (event %d)", err, i)
		}
		if maxEventBytes > 0 && counted > maxEventBytes {
			return 0, newError(codes.InvalidArgument, goethev1.ReasonLimitExceeded,
				"event %d is %d bytes (payload and headers), the limit is %d", i, counted, maxEventBytes)
		}
		size += 1 + protowire.SizeBytes(n)
	}
	return size, nil
}

// eventSize is the encoded size of an EventData, and its size as the
// server's max-event-bytes counts it. Events changed while they are encoded
// could encode to another size; encodeChunk's final check turns that into
// an error rather than a corrupt message.
func eventSize(e *EventData) (encoded, counted int, err error) {
	if len(e.Payload) > 0 {
		encoded += 1 + protowire.SizeBytes(len(e.Payload))
	}
	counted = len(e.Payload) + len(e.DedupeKey)
	if e.DedupeKey != "" {
		if !utf8.ValidString(e.DedupeKey) {
			return 0, 0, invalidf("dedupe key %q is not valid UTF-8", e.DedupeKey)
		}
		encoded += 1 + protowire.SizeBytes(len(e.DedupeKey))
	}
	for k, v := range e.Headers {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return 0, 0, invalidf("header %q is not valid UTF-8", k)
		}
		encoded += 1 + protowire.SizeBytes(headerSize(k, v))
		counted += len(k) + len(v)
	}
	return encoded, counted, nil
}

// headerSize is the encoded size of a map entry. Both fields are written,
// also when empty, as the generated code does.
func headerSize(k, v string) int {
	return 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(len(v))
}

// chunk is one Send's encoded events, b[reserve:]. A large one is a
// buffer of wire.Pool (pooled), which gRPC puts back once written. A small
// one is a plain slice (gRPC pools no buffer of 1 KiB or less) whose first
// reserve bytes are room for its request's head, so that a request of one
// small Send is one buffer.
type chunk struct {
	pooled  *[]byte
	b       []byte
	reserve int
}

// encodeChunk encodes events, whose eventsSize is size, into a chunk with
// reserve bytes of room before them if it is small.
func encodeChunk(events []EventData, size, reserve int) (chunk, error) {
	if mem.IsBelowBufferPoolingThreshold(size) {
		b := appendEvents(make([]byte, reserve, reserve+size), events)
		if len(b) != reserve+size {
			return chunk{}, changedWhileSent(len(b)-reserve, size)
		}
		return chunk{b: b, reserve: reserve}, nil
	}
	pooled := wire.Pool.Get(size)
	b := appendEvents((*pooled)[:0], events)
	if len(b) != size {
		wire.Pool.Put(pooled)
		return chunk{}, changedWhileSent(len(b), size)
	}
	*pooled = b
	return chunk{pooled: pooled, b: b}, nil
}

// buffer hands the chunk's events to gRPC.
func (c chunk) buffer() mem.Buffer {
	if c.pooled != nil {
		return mem.NewBuffer(c.pooled, wire.Pool)
	}
	return mem.SliceBuffer(c.b[c.reserve:])
}

// free puts a chunk that was never handed to gRPC back.
func (c chunk) free() {
	if c.pooled != nil {
		wire.Pool.Put(c.pooled)
	}
}

// changedWhileSent is the error of events that encoded to another size
// than they were sized at: only events changed while Send or Produce
// reads them can do that.
func changedWhileSent(encoded, sized int) error {
	return invalidf("events changed while being sent (%d bytes encoded, %d sized)", encoded, sized)
}

// appendEvents appends events as the events field of a ProduceRequest.
func appendEvents(buf []byte, events []EventData) []byte {
	for i := range events {
		e := &events[i]
		n, _, _ := eventSize(e)
		buf = protowire.AppendTag(buf, prodEvents, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(n))
		if len(e.Payload) > 0 {
			buf = protowire.AppendTag(buf, dataPayload, protowire.BytesType)
			buf = protowire.AppendBytes(buf, e.Payload)
		}
		for k, v := range e.Headers {
			buf = protowire.AppendTag(buf, dataHeaders, protowire.BytesType)
			buf = protowire.AppendVarint(buf, uint64(headerSize(k, v)))
			buf = protowire.AppendTag(buf, mapKey, protowire.BytesType)
			buf = protowire.AppendString(buf, k)
			buf = protowire.AppendTag(buf, mapValue, protowire.BytesType)
			buf = protowire.AppendString(buf, v)
		}
		if e.DedupeKey != "" {
			buf = protowire.AppendTag(buf, dataDedupe, protowire.BytesType)
			buf = protowire.AppendString(buf, e.DedupeKey)
		}
	}
	return buf
}

// produceHeadSize is the encoded size of a ProduceRequest's fields other
// than its events: topic (omitted when empty, as proto3 does) and
// expected_last_seq.
func produceHeadSize(topic string, expect *uint64) int {
	n := 0
	if topic != "" {
		n += 1 + protowire.SizeBytes(len(topic))
	}
	if expect != nil {
		n += 1 + protowire.SizeVarint(*expect)
	}
	return n
}

// appendProduceHead appends the fields that produceHeadSize counts.
func appendProduceHead(buf []byte, topic string, expect *uint64) []byte {
	if topic != "" {
		buf = protowire.AppendTag(buf, prodTopic, protowire.BytesType)
		buf = protowire.AppendString(buf, topic)
	}
	if expect != nil {
		buf = protowire.AppendTag(buf, prodExpect, protowire.VarintType)
		buf = protowire.AppendVarint(buf, *expect)
	}
	return buf
}

// appendStreamHead appends a ProduceStreamRequest's request_id (omitted
// when 0) and the tag and length of its produce, which is always present.
func appendStreamHead(buf []byte, id uint64, produceLen int) []byte {
	if id != 0 {
		buf = protowire.AppendTag(buf, psReqID, protowire.VarintType)
		buf = protowire.AppendVarint(buf, id)
	}
	buf = protowire.AppendTag(buf, psReqProduce, protowire.BytesType)
	return protowire.AppendVarint(buf, uint64(produceLen))
}

// invalidf is an INVALID_ARGUMENT error of the client's own making.
func invalidf(format string, args ...any) error {
	return newError(codes.InvalidArgument, goethev1.ReasonInvalidArgument, format, args...)
}

// answer is one decoded answer of a ProduceStreamResponse: a result, or the
// status of a failed request.
type answer struct {
	id     uint64
	result bool
	res    ProduceResult
	status *spb.Status // not nil for a failed request
}

// produceAnswers is a decoded ProduceStreamResponse: its top-level answer
// first, then those of its more field, in the order the server sent them
// (commit order). Its list is reused from message to message.
type produceAnswers struct {
	list []answer
}

var errMalformedAnswer = errors.New("goethe: malformed ProduceStreamResponse")

// Marshal sends an *encodedRequest as it is, anything else as wire.Codec
// does.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*encodedRequest); ok {
		data := r.data
		r.data = nil // gRPC owns it now
		return data, nil
	}
	return c.Codec.Marshal(v)
}

// decodeFrom decodes a ProduceStreamResponse as gRPC received it.
func (a *produceAnswers) decodeFrom(data mem.BufferSlice) error {
	if len(data) == 1 {
		return a.decode(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(wire.Pool)
	defer buf.Free()
	return a.decode(buf.ReadOnlyData())
}

// decode parses a ProduceStreamResponse from buf; statuses, if any, are
// copied out of buf.
func (a *produceAnswers) decode(buf []byte) error {
	clear(a.list) // drop the statuses of the previous message
	a.list = append(a.list[:0], answer{})
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return fmt.Errorf("%w: %v", errMalformedAnswer, protowire.ParseError(n))
		}
		buf = buf[n:]
		if num == psRespMore && typ == protowire.BytesType {
			var v []byte
			if v, n = protowire.ConsumeBytes(buf); n >= 0 {
				a.list = append(a.list, answer{})
				if err := a.list[len(a.list)-1].decode(v); err != nil {
					return fmt.Errorf("%w (in more)", err)
				}
			}
		} else {
			var err error
			if n, err = a.list[0].decodeField(num, typ, buf); err != nil {
				return err
			}
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", errMalformedAnswer, num, protowire.ParseError(n))
		}
		buf = buf[n:]
	}
	return nil
}

// decode parses a ProduceStreamAnswer from buf into a.
func (a *answer) decode(buf []byte) error {
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return fmt.Errorf("%w: %v", errMalformedAnswer, protowire.ParseError(n))
		}
		buf = buf[n:]
		n, err := a.decodeField(num, typ, buf)
		if err != nil {
			return err
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", errMalformedAnswer, num, protowire.ParseError(n))
		}
		buf = buf[n:]
	}
	return nil
}

// decodeField decodes one field of an answer, whose tag has been consumed
// from buf, and returns the bytes its value took (negative if malformed).
// Fields it does not know are skipped.
func (a *answer) decodeField(num protowire.Number, typ protowire.Type, buf []byte) (int, error) {
	var n int
	switch {
	case num == psRespID && typ == protowire.VarintType:
		a.id, n = protowire.ConsumeVarint(buf)
	case num == psRespResult && typ == protowire.BytesType:
		var v []byte
		if v, n = protowire.ConsumeBytes(buf); n >= 0 {
			// As in the generated code: another member of the oneof is
			// replaced, the same member given again is merged into.
			if !a.result {
				a.result, a.status, a.res = true, nil, ProduceResult{}
			}
			if err := a.res.decode(v); err != nil {
				return 0, err
			}
		}
	case num == psRespError && typ == protowire.BytesType:
		var v []byte
		if v, n = protowire.ConsumeBytes(buf); n >= 0 {
			if a.result || a.status == nil {
				a.result, a.status, a.res = false, &spb.Status{}, ProduceResult{}
			}
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, a.status); err != nil {
				return 0, fmt.Errorf("%w: error: %v", errMalformedAnswer, err)
			}
		}
	default:
		n = protowire.ConsumeFieldValue(num, typ, buf)
	}
	return n, nil
}

// decode parses a ProduceResponse from buf into r.
func (r *ProduceResult) decode(buf []byte) error {
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return fmt.Errorf("%w: result: %v", errMalformedAnswer, protowire.ParseError(n))
		}
		buf = buf[n:]
		var v uint64
		switch {
		case num == resFirstID && typ == protowire.Fixed64Type:
			r.FirstID, n = protowire.ConsumeFixed64(buf)
		case num == resFirstSeq && typ == protowire.VarintType:
			r.FirstSeq, n = protowire.ConsumeVarint(buf)
		case num == resCount && typ == protowire.VarintType:
			v, n = protowire.ConsumeVarint(buf)
			r.Count = int(uint32(v))
		case num == resRaftIndex && typ == protowire.VarintType:
			r.RaftIndex, n = protowire.ConsumeVarint(buf)
		case num == resDuplicate && typ == protowire.BytesType:
			var b []byte
			if b, n = protowire.ConsumeBytes(buf); n >= 0 {
				d, err := decodeDuplicate(b)
				if err != nil {
					return err
				}
				r.Duplicates = append(r.Duplicates, d)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, buf)
		}
		if n < 0 {
			return fmt.Errorf("%w: result field %d: %v", errMalformedAnswer, num, protowire.ParseError(n))
		}
		buf = buf[n:]
	}
	return nil
}

// decodeDuplicate parses a Duplicate message.
func decodeDuplicate(buf []byte) (Duplicate, error) {
	var d Duplicate
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return d, fmt.Errorf("%w: duplicate: %v", errMalformedAnswer, protowire.ParseError(n))
		}
		buf = buf[n:]
		var v uint64
		switch {
		case num == dupIndex && typ == protowire.VarintType:
			v, n = protowire.ConsumeVarint(buf)
			d.Index = int(uint32(v))
		case num == dupID && typ == protowire.Fixed64Type:
			d.ID, n = protowire.ConsumeFixed64(buf)
		case num == dupSeq && typ == protowire.VarintType:
			d.Seq, n = protowire.ConsumeVarint(buf)
		default:
			n = protowire.ConsumeFieldValue(num, typ, buf)
		}
		if n < 0 {
			return d, fmt.Errorf("%w: duplicate field %d: %v", errMalformedAnswer, num, protowire.ParseError(n))
		}
		buf = buf[n:]
	}
	return d, nil
}
