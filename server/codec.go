package server

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/goethe-log/goethe/internal/wire"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// serverCodec is wire.Codec with admission on the way in: it decides about
// a request before materialising it and marks its verdict in the message
// (see the admission mark in admission.go). For a ProduceRequest or a
// ProduceStreamRequest, in this order:
//
//  1. the in-flight budget: the request's encoded size is taken from it,
//     or the request is refused (markBudget) without being read;
//  2. the event limits: the encoded bytes are scanned for the number of
//     events and each event's size (scanProduce), or the request is
//     refused (markLimit) without being decoded;
//  3. decoding.
//
// Every message is decoded with DiscardUnknown. A message that fails to
// decode (invalid UTF-8 in a string field, a broken encoding) is reset and
// marked malformed (markMalformed): its handler answers INVALID_ARGUMENT,
// where gRPC would have answered INTERNAL for a codec error. A refused
// request gives back the budget it took at once.
type serverCodec struct {
	wire.Codec
	budget        *budget
	maxEvents     int
	maxEventBytes int
}

var _ encoding.CodecV2 = (*serverCodec)(nil)

var unmarshalOpts = proto.UnmarshalOptions{DiscardUnknown: true}

// Unmarshal decodes data into v, a proto.Message, and marks v with its
// admission. It fails only for a v that is not a proto.Message.
func (c *serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("server: cannot unmarshal into %T: not a proto.Message", v)
	}
	var held int64
	if isProduce(m) {
		n := int64(data.Len())
		if !c.budget.tryTake(n) {
			proto.Reset(m)
			c.setRequestID(m, data)
			setMark(m, markBudget, 0, fmt.Sprintf(
				"the server holds its limit of %d bytes of produce requests in flight; retry later, or raise --max-inflight-bytes",
				c.budget.limit))
			return nil
		}
		held = n
	}
	buf := data.MaterializeToBuffer(wire.Pool)
	defer buf.Free()
	b := buf.ReadOnlyData()
	var err error
	var id uint64
	switch m.(type) {
	case *goethev1.ProduceRequest:
		err = scanProduce(b, c.maxEvents, c.maxEventBytes)
	case *goethev1.ProduceStreamRequest:
		id, err = scanStreamRequest(b, c.maxEvents, c.maxEventBytes)
	}
	if err == nil {
		if err = unmarshalOpts.Unmarshal(b, m); err == nil {
			if held > 0 {
				setMark(m, markAdmitted, held, "")
			}
			return nil
		}
	}
	c.budget.release(held)
	proto.Reset(m)
	if r, ok := m.(*goethev1.ProduceStreamRequest); ok {
		r.RequestId = id
	}
	if le := (*limitError)(nil); errors.As(err, &le) {
		setMark(m, markLimit, 0, le.msg)
		return nil
	}
	setMark(m, markMalformed, 0, fmt.Sprintf("malformed %s: %v", m.ProtoReflect().Descriptor().Name(), err))
	return nil
}

// setRequestID sets a ProduceStreamRequest's request_id from its encoding,
// read from data's first buffer only: a refusal for the budget reads no
// more. The id is the first field a client encodes.
func (c *serverCodec) setRequestID(m proto.Message, data mem.BufferSlice) {
	r, ok := m.(*goethev1.ProduceStreamRequest)
	if !ok || len(data) == 0 {
		return
	}
	id, _ := scanStreamRequestID(data[0].ReadOnlyData())
	r.RequestId = id
}
