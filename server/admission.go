package server

import (
	"errors"
	"fmt"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// Admission: what the server's codec decides about a request before the
// request is materialised, and how it tells the handler.
//
// gRPC turns an error of a codec's Unmarshal into INTERNAL ("grpc: failed
// to unmarshal the received message", rpc_util.go recv in grpc-go v1.85),
// whatever the error. So the codec (serverCodec) never fails a request of
// the client's making: it leaves the message empty (but for a
// ProduceStreamRequest's request_id) and writes its verdict into the
// message as an unknown field, the admission mark (markField). The mark is
// read before any handler work: by the unary interceptor admitUnary, by the
// stream wrapper's RecvMsg (stoppableStream), and by ProduceStream's
// session per request. A client cannot forge a mark: the codec decodes
// with DiscardUnknown, so the only unknown field a message can carry is
// the codec's own.
//
// A mark says one of: admitted, holding n bytes of the in-flight budget
// (released when the request's append completes); over a limit
// (LIMIT_EXCEEDED); malformed, invalid UTF-8 included (INVALID_ARGUMENT);
// over the in-flight budget (RESOURCE_EXHAUSTED, MEMORY_BUDGET); denied
// by the auth guard (PERMISSION_DENIED: a ProduceStream request whose
// token may not write its topic, marked by authStream so that the session
// answers it alone and goes on).
//
// What admission does not bound: gRPC reads a request's encoded bytes
// whole (as received HTTP/2 frames) before it calls the codec, whatever
// the budget, so each call in progress may hold up to MaxRequestBytes
// before the codec refuses it and frees them at once. That memory is
// bounded by the calls open at once (MaxConnections ×
// MaxConcurrentStreams), not by MaxInflightBytes; bounding it by bytes
// would take a hook in gRPC's transport between a message's length
// prefix and its body, which grpc-go v1.85 does not offer.

// Errors of admission. Handlers return them through toStatus.
var (
	// errMemoryBudget: taking the request would put the server past its
	// budget of in-flight produce bytes (Options.MaxInflightBytes).
	errMemoryBudget = errors.New("server memory budget exhausted")
	// errSlowConsumer: a stream's client has not read (its Consume events,
	// or its ProduceStream answers) for Options.SlowConsumerTimeout.
	errSlowConsumer = errors.New("slow consumer")
)

// markField is the field number of the admission mark: the largest valid
// one, used by no message of the API.
const markField = protowire.MaxValidNumber

// markKind is the verdict a mark carries.
type markKind byte

const (
	markAdmitted  markKind = 1 // the request holds n bytes of budget
	markLimit     markKind = 2 // over MaxBatchEvents or MaxEventBytes
	markMalformed markKind = 3 // not a valid encoding, e.g. invalid UTF-8
	markBudget    markKind = 4 // over MaxInflightBytes
	// markDenied: the auth guard refused the request (a ProduceStream
	// request whose token may not write its topic); n is the Permission
	// lacking, msg the topic. The request holds no budget.
	markDenied markKind = 5
)

// mark is a decoded admission mark. The zero mark: none (the message was
// not decoded by serverCodec, or is of a kind that holds no budget).
type mark struct {
	held int64 // bytes of budget the request holds, to release once
	err  error // the request's rejection; nil if admitted
}

// setMark writes k, n and msg into m as its admission mark, replacing its
// unknown fields.
func setMark(m proto.Message, k markKind, n int64, msg string) {
	var b []byte
	b = protowire.AppendTag(b, markField, protowire.BytesType)
	v := []byte{byte(k)}
	v = protowire.AppendVarint(v, uint64(n))
	v = append(v, msg...)
	b = protowire.AppendBytes(b, v)
	m.ProtoReflect().SetUnknown(b)
}

// readMark returns m's admission mark, if m is a message that has one.
func readMark(m any) mark {
	pm, ok := m.(proto.Message)
	if !ok {
		return mark{}
	}
	b := pm.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return mark{}
		}
		b = b[n:]
		if num != markField || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return mark{}
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 || len(v) == 0 {
			return mark{}
		}
		k := markKind(v[0])
		held, n := protowire.ConsumeVarint(v[1:])
		if n < 0 {
			return mark{}
		}
		msg := string(v[1+n:])
		switch k {
		case markAdmitted:
			return mark{held: int64(held)}
		case markLimit:
			return mark{err: fmt.Errorf("%w: %s", errLimitExceeded, msg)}
		case markMalformed:
			return mark{err: fmt.Errorf("%w: %s", errBadRequest, msg)}
		case markBudget:
			return mark{err: fmt.Errorf("%w: %s", errMemoryBudget, msg)}
		case markDenied:
			return mark{err: &deniedError{perm: Permission(held), topic: msg}}
		}
		return mark{}
	}
	return mark{}
}

// budget is the server-wide budget of in-flight produce bytes: the encoded
// size of every Produce and ProduceStream request decoded and not yet
// completed by the log. It never blocks: a request that does not fit is
// refused.
type budget struct {
	limit int64
	used  atomic.Int64
}

// tryTake takes n bytes if they fit under the limit.
func (b *budget) tryTake(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// release gives n bytes back.
func (b *budget) release(n int64) {
	if n != 0 {
		b.used.Add(-n)
	}
}

// Wire numbers of the messages the prescan walks (spec/goethe/v1/goethe.proto).
const (
	produceEventsField   = 2 // ProduceRequest.events
	eventPayloadField    = 1 // EventData.payload
	eventHeadersField    = 2 // EventData.headers (map entries)
	eventDedupeKeyField  = 3 // EventData.dedupe_key
	mapKeyField          = 1
	mapValueField        = 2
	streamRequestIDField = 1 // ProduceStreamRequest.request_id
	streamProduceField   = 2 // ProduceStreamRequest.produce
)

// limitError is a prescan's finding of a request over a limit; its text
// names the limit. It is errLimitExceeded.
type limitError struct{ msg string }

func (e *limitError) Error() string        { return e.msg }
func (e *limitError) Is(target error) bool { return target == errLimitExceeded }

// errMalformed is a prescan's finding that the bytes are not a valid
// encoding; the decoder would say the same.
var errMalformed = errors.New("malformed")

// scanProduce checks an encoded ProduceRequest against the event limits
// without decoding it: it counts the events and sizes each (payload plus
// header keys and values, as validate does; a header key repeated in the
// encoding counts each time, so the scan may only be stricter). It returns
// an error wrapping errLimitExceeded, or errMalformed when the bytes do not
// parse, at the first finding; it allocates nothing.
func scanProduce(b []byte, maxEvents, maxEventBytes int) error {
	events := 0
	return scanProduceFrom(b, &events, maxEvents, maxEventBytes)
}

// scanProduceFrom is scanProduce counting on from *events, the events of
// parts of the same message scanned before (decoding merges a repeated
// sub-message).
func scanProduceFrom(b []byte, events *int, maxEvents, maxEventBytes int) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if num != produceEventsField || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return errMalformed
			}
			b = b[n:]
			continue
		}
		ev, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if *events == maxEvents {
			// Over the limit: count the rest, without sizing them, to say
			// how many there are.
			for *events++; len(b) > 0; {
				num, typ, n := protowire.ConsumeTag(b)
				if n < 0 {
					return errMalformed
				}
				b = b[n:]
				if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
					return errMalformed
				}
				b = b[n:]
				if num == produceEventsField {
					*events++
				}
			}
			return &limitError{fmt.Sprintf("a produce has %d events, the limit is %d", *events, maxEvents)}
		}
		size, err := scanEvent(ev)
		if err != nil {
			return err
		}
		if size > maxEventBytes {
			return &limitError{fmt.Sprintf("event %d is %d bytes (payload and headers), the limit is %d", *events, size, maxEventBytes)}
		}
		*events++
	}
	return nil
}

// scanEvent returns the counted size of an encoded EventData: its last
// payload's length plus the lengths of every header key and value plus its
// last dedupe key's length.
func scanEvent(b []byte) (int, error) {
	payload, headers, key := 0, 0, 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, errMalformed
		}
		b = b[n:]
		switch {
		case num == eventPayloadField && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, errMalformed
			}
			payload, b = len(v), b[n:]
		case num == eventDedupeKeyField && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, errMalformed
			}
			key, b = len(v), b[n:]
		case num == eventHeadersField && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, errMalformed
			}
			b = b[n:]
			kv, err := scanMapEntry(v)
			if err != nil {
				return 0, err
			}
			headers += kv
		default:
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return 0, errMalformed
			}
			b = b[n:]
		}
	}
	return payload + headers + key, nil
}

// scanMapEntry returns the key and value lengths of an encoded map entry.
func scanMapEntry(b []byte) (int, error) {
	key, val := 0, 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, errMalformed
		}
		b = b[n:]
		if (num == mapKeyField || num == mapValueField) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, errMalformed
			}
			b = b[n:]
			if num == mapKeyField {
				key = len(v)
			} else {
				val = len(v)
			}
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return 0, errMalformed
		}
		b = b[n:]
	}
	return key + val, nil
}

// scanStreamRequest checks an encoded ProduceStreamRequest as scanProduce
// does its produce (an absent produce passes: the session answers it), and
// returns its request_id for the
// answer of a refused request.
func scanStreamRequest(b []byte, maxEvents, maxEventBytes int) (id uint64, err error) {
	events := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return id, errMalformed
		}
		b = b[n:]
		switch {
		case num == streamRequestIDField && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return id, errMalformed
			}
			id, b = v, b[n:]
		case num == streamProduceField && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return id, errMalformed
			}
			// Decoding merges the parts of a repeated sub-message: their
			// events count together.
			if err := scanProduceFrom(v, &events, maxEvents, maxEventBytes); err != nil {
				return id, err
			}
			b = b[n:]
		default:
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return id, errMalformed
			}
			b = b[n:]
		}
	}
	return id, nil
}

// scanStreamRequestID returns the request_id of an encoded
// ProduceStreamRequest if it comes before the first field that does not
// parse or that ends past b.
func scanStreamRequestID(b []byte) (uint64, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if num == streamRequestIDField && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			return v, n >= 0
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return 0, false
		}
		b = b[n:]
	}
	return 0, false
}

// isProduce reports whether m is a request that holds in-flight budget.
func isProduce(m proto.Message) bool {
	switch m.(type) {
	case *goethev1.ProduceRequest, *goethev1.ProduceStreamRequest:
		return true
	}
	return false
}

// InflightBytes returns the bytes of the in-flight budget taken now: the
// encoded size of the Produce and ProduceStream requests decoded and not
// yet completed by the log. It is 0 when no produce is in flight.
func (s *Server) InflightBytes() int64 { return s.budget.used.Load() }
