package client

import (
	"errors"
	"fmt"
	"unicode/utf8"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/goethe-log/goethe/internal/wire"
)

// A Producer encodes its requests and decodes its answers by hand, as
// Consume decodes its batches (see codec): a request is one buffer built
// straight from the caller's events, without goethev1 messages in between,
// and an answer decodes into a reused struct. The messages are those of
// spec/goethe/v1/goethe.proto; the tests check both against the generated
// code.

// ProduceStreamRequest, ProduceRequest, EventData, ProduceStreamResponse
// and ProduceResponse field numbers, from goethe.proto.
const (
	psReqID      = 1
	psReqProduce = 2
	prodTopic    = 1
	prodEvents   = 2
	prodExpect   = 3
	dataPayload  = 1
	dataHeaders  = 2
	psRespID     = 1
	psRespResult = 2
	psRespError  = 3
	resFirstID   = 1
	resFirstSeq  = 2
	resCount     = 3
)

// encodedRequest is a ProduceStreamRequest already encoded: codec.Marshal
// hands its buffer to gRPC, which frees it once sent.
type encodedRequest struct {
	data mem.BufferSlice
}

// encodeProduce encodes a ProduceStreamRequest. It refuses what the
// protobuf encoding itself refuses, strings that are not valid UTF-8, with
// INVALID_ARGUMENT: sent, such a request would fail the whole stream, since
// the server could not decode it.
func encodeProduce(id uint64, topic string, events []EventData, expect *uint64) (*encodedRequest, int, error) {
	if !utf8.ValidString(topic) {
		return nil, 0, invalidf("topic %q is not valid UTF-8", topic)
	}
	size := 0
	if topic != "" {
		size += 1 + protowire.SizeBytes(len(topic))
	}
	for i := range events {
		n, err := eventSize(&events[i])
		if err != nil {
			return nil, 0, fmt.Errorf("%w (event %d)", err, i)
		}
		size += 1 + protowire.SizeBytes(n)
	}
	if expect != nil {
		size += 1 + protowire.SizeVarint(*expect)
	}
	total := 1 + protowire.SizeBytes(size) // produce: always present
	if id != 0 {
		total += 1 + protowire.SizeVarint(id)
	}

	// A large request's buffer comes from the codec's pool, and gRPC puts
	// it back once written.
	var pooled *[]byte
	var buf []byte
	if mem.IsBelowBufferPoolingThreshold(total) {
		buf = make([]byte, 0, total)
	} else {
		pooled = wire.Pool.Get(total)
		buf = (*pooled)[:0]
	}
	if id != 0 {
		buf = protowire.AppendTag(buf, psReqID, protowire.VarintType)
		buf = protowire.AppendVarint(buf, id)
	}
	buf = protowire.AppendTag(buf, psReqProduce, protowire.BytesType)
	buf = protowire.AppendVarint(buf, uint64(size))
	if topic != "" {
		buf = protowire.AppendTag(buf, prodTopic, protowire.BytesType)
		buf = protowire.AppendString(buf, topic)
	}
	for i := range events {
		e := &events[i]
		n, _ := eventSize(e)
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
	}
	if expect != nil {
		buf = protowire.AppendTag(buf, prodExpect, protowire.VarintType)
		buf = protowire.AppendVarint(buf, *expect)
	}
	if len(buf) != total {
		// Only events changed while Produce runs can do that.
		if pooled != nil {
			wire.Pool.Put(pooled)
		}
		return nil, 0, invalidf("events changed while being sent (%d bytes encoded, %d sized)", len(buf), total)
	}
	if pooled == nil {
		return &encodedRequest{data: mem.BufferSlice{mem.SliceBuffer(buf)}}, total, nil
	}
	*pooled = buf
	return &encodedRequest{data: mem.BufferSlice{mem.NewBuffer(pooled, wire.Pool)}}, total, nil
}

// eventSize is the encoded size of an EventData. Events changed while
// Produce runs could encode to another size; encodeProduce's final check
// turns that into an error rather than a corrupt message.
func eventSize(e *EventData) (int, error) {
	n := 0
	if len(e.Payload) > 0 {
		n += 1 + protowire.SizeBytes(len(e.Payload))
	}
	for k, v := range e.Headers {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return 0, invalidf("header %q is not valid UTF-8", k)
		}
		n += 1 + protowire.SizeBytes(headerSize(k, v))
	}
	return n, nil
}

// headerSize is the encoded size of a map entry. Both fields are written,
// also when empty, as the generated code does.
func headerSize(k, v string) int {
	return 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(len(v))
}

// invalidf is an INVALID_ARGUMENT error of the client's own making.
func invalidf(format string, args ...any) error {
	return &Error{st: status.Newf(codes.InvalidArgument, format, args...)}
}

// produceAnswer is a decoded ProduceStreamResponse: a result, or the
// status of a failed request.
type produceAnswer struct {
	id     uint64
	result bool
	res    ProduceResult
	status *spb.Status // not nil for a failed request
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
func (a *produceAnswer) decodeFrom(data mem.BufferSlice) error {
	if len(data) == 1 {
		return a.decode(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(wire.Pool)
	defer buf.Free()
	return a.decode(buf.ReadOnlyData())
}

// decode parses a ProduceStreamResponse from buf; the status, if any, is
// copied out of buf.
func (a *produceAnswer) decode(buf []byte) error {
	*a = produceAnswer{}
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return fmt.Errorf("%w: %v", errMalformedAnswer, protowire.ParseError(n))
		}
		buf = buf[n:]
		switch {
		case num == psRespID && typ == protowire.VarintType:
			a.id, n = protowire.ConsumeVarint(buf)
		case num == psRespResult && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(buf); n >= 0 {
				// The last of the oneof's fields wins, as in the generated
				// code.
				a.result, a.status, a.res = true, nil, ProduceResult{}
				if err := a.decodeResult(v); err != nil {
					return err
				}
			}
		case num == psRespError && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(buf); n >= 0 {
				a.result, a.status = false, &spb.Status{}
				if err := proto.Unmarshal(v, a.status); err != nil {
					return fmt.Errorf("%w: error: %v", errMalformedAnswer, err)
				}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, buf)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", errMalformedAnswer, num, protowire.ParseError(n))
		}
		buf = buf[n:]
	}
	return nil
}

func (a *produceAnswer) decodeResult(buf []byte) error {
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return fmt.Errorf("%w: result: %v", errMalformedAnswer, protowire.ParseError(n))
		}
		buf = buf[n:]
		var v uint64
		switch {
		case num == resFirstID && typ == protowire.Fixed64Type:
			a.res.FirstID, n = protowire.ConsumeFixed64(buf)
		case num == resFirstSeq && typ == protowire.VarintType:
			a.res.FirstSeq, n = protowire.ConsumeVarint(buf)
		case num == resCount && typ == protowire.VarintType:
			v, n = protowire.ConsumeVarint(buf)
			a.res.Count = int(uint32(v))
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
