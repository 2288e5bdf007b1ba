package client

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/goethe-log/goethe/internal/wire"
)

// batch is a decoded goethe.v1.ConsumeResponse. Consume streams decode into
// it directly, without building a goethev1.Event per event: one allocation
// for the message's bytes, which the payloads share, and one slice of
// events, reused from batch to batch.
type batch struct {
	events []Event
	// skipped is the response's skipped: events removed before the
	// stream read them, just before events (see goethe.proto).
	skipped uint64
}

// codec is wire.Codec, except that it decodes a ConsumeResponse into a
// *batch by hand, and encodes and decodes Produce's and ProduceStream's
// messages by hand (see produce_wire.go). The messages are those of
// spec/goethe/v1/goethe.proto; fields it does not know are skipped, as
// protobuf requires.
type codec struct{ wire.Codec }

var _ encoding.CodecV2 = codec{}

// useCodec is the call option that makes a call use codec, made once: a
// call option made per call costs an allocation.
var useCodec = grpc.ForceCodecV2(codec{})

// Unmarshal decodes a ConsumeResponse into a *batch, a
// ProduceStreamResponse into a *produceAnswers, a ProduceResponse into a
// *ProduceResult, anything else as wire.Codec does.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *batch:
		// A buffer of the batch's own, never returned to a pool: the
		// payloads point into it.
		return m.decode(data.Materialize())
	case *produceAnswers:
		return m.decodeFrom(data)
	case *ProduceResult:
		// A unary ProduceResponse.
		*m = ProduceResult{}
		if len(data) == 1 {
			return m.decode(data[0].ReadOnlyData())
		}
		buf := data.MaterializeToBuffer(wire.Pool)
		defer buf.Free()
		return m.decode(buf.ReadOnlyData())
	}
	return c.Codec.Unmarshal(data, v)
}

var errMalformed = errors.New("goethe: malformed ConsumeResponse")

// ConsumeResponse and Event field numbers, from goethe.proto.
const (
	respTopic   = 1
	respEvents  = 2
	respSkipped = 3
	eventID     = 1
	eventSeq    = 2
	eventBody   = 3
	eventHeader = 4
	eventDedupe = 5
	mapKey      = 1
	mapValue    = 2
)

// decode parses a ConsumeResponse from buf. Payloads are slices of buf,
// capped so that appending to one never overwrites another.
func (b *batch) decode(buf []byte) error {
	clear(b.events)
	b.events = b.events[:0]
	b.skipped = 0
	var topic string
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return fmt.Errorf("%w: %v", errMalformed, protowire.ParseError(n))
		}
		buf = buf[n:]
		switch {
		case num == respTopic && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(buf)
			if n < 0 {
				return fmt.Errorf("%w: topic: %v", errMalformed, protowire.ParseError(n))
			}
			topic = string(v)
			buf = buf[n:]
		case num == respEvents && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(buf)
			if n < 0 {
				return fmt.Errorf("%w: event: %v", errMalformed, protowire.ParseError(n))
			}
			b.events = append(b.events, Event{})
			if err := decodeEvent(v, &b.events[len(b.events)-1]); err != nil {
				return err
			}
			buf = buf[n:]
		case num == respSkipped && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(buf)
			if n < 0 {
				return fmt.Errorf("%w: skipped: %v", errMalformed, protowire.ParseError(n))
			}
			b.skipped = v
			buf = buf[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, buf)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %v", errMalformed, num, protowire.ParseError(n))
			}
			buf = buf[n:]
		}
	}
	for i := range b.events {
		e := &b.events[i]
		e.Topic = topic
		e.Time = time.Unix(0, int64(e.ID))
	}
	return nil
}

func decodeEvent(buf []byte, e *Event) error {
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return fmt.Errorf("%w: event: %v", errMalformed, protowire.ParseError(n))
		}
		buf = buf[n:]
		switch {
		case num == eventID && typ == protowire.Fixed64Type:
			e.ID, n = protowire.ConsumeFixed64(buf)
		case num == eventSeq && typ == protowire.VarintType:
			e.Seq, n = protowire.ConsumeVarint(buf)
		case num == eventBody && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(buf)
			if n >= 0 {
				e.Payload = v[:len(v):len(v)]
			}
		case num == eventDedupe && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(buf); n >= 0 {
				e.DedupeKey = string(v)
			}
		case num == eventHeader && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(buf)
			if n >= 0 {
				if e.Headers == nil {
					e.Headers = make(map[string]string, 2)
				}
				if err := decodeHeader(v, e.Headers); err != nil {
					return err
				}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, buf)
		}
		if n < 0 {
			return fmt.Errorf("%w: event field %d: %v", errMalformed, num, protowire.ParseError(n))
		}
		buf = buf[n:]
	}
	return nil
}

// decodeHeader adds one map entry to h. A missing key or value is "".
func decodeHeader(buf []byte, h map[string]string) error {
	var k, v string
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return fmt.Errorf("%w: header: %v", errMalformed, protowire.ParseError(n))
		}
		buf = buf[n:]
		switch {
		case num == mapKey && typ == protowire.BytesType:
			var s []byte
			s, n = protowire.ConsumeBytes(buf)
			k = string(s)
		case num == mapValue && typ == protowire.BytesType:
			var s []byte
			s, n = protowire.ConsumeBytes(buf)
			v = string(s)
		default:
			n = protowire.ConsumeFieldValue(num, typ, buf)
		}
		if n < 0 {
			return fmt.Errorf("%w: header field %d: %v", errMalformed, num, protowire.ParseError(n))
		}
		buf = buf[n:]
	}
	h[k] = v
	return nil
}
