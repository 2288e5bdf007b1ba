package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc/tap"
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
// The door: before gRPC reads a request. gRPC reads a request message
// whole (as received HTTP/2 frames, its flow-control window raised to the
// message's length once its 5-byte prefix is read) before it calls the
// codec; grpc-go v1.85 has no hook between a message's length prefix and
// its body. What it does have is a tap (grpc.InTapHandle) that runs when a
// call's HEADERS arrive, before any of its messages is read. Server.door
// is that tap: a new Produce or ProduceStream call is refused there, with
// RESOURCE_EXHAUSTED (MEMORY_BUDGET, the status carrying its ErrorInfo as
// any other), while the budget is exhausted (budget.doorClosed):
//
//   - less than DoorFreeBytes of it is free, or
//   - a request was refused for lack of room (the codec's markBudget) and
//     no request has given bytes back since.
//
// A call refused at the door is never read: gRPC answers its HEADERS with
// the status and resets the stream, and the DATA frames the client had
// already sent are dropped as they arrive (they count against the
// connection's 4 MiB flow-control window only). No interceptor sees it:
// goethe_admission_door_refusals_total counts it. The door comes before
// authentication, so while it is closed a caller without a valid token is
// refused RESOURCE_EXHAUSTED too: it learns that the server is busy,
// nothing of any topic.
//
// The bound, exactly. The bytes of produce requests the server holds are
// at most
//
//	MaxInflightBytes                 requests taken (decoded, or being decoded)
//	+ P × MaxRequestBytes            requests being read, not yet decoded
//	+ S × windowSize (4 MiB)         what follows them in open ProduceStreams
//
// where P is the number of produce calls let in at the door whose current
// request has not reached the codec yet (at most one request per call:
// gRPC reads a call's messages one at a time, and a ProduceStream reads
// its next request only once it has room for it, MaxStreamInFlight), and S
// the number of open ProduceStreams. While the door is closed P and S do
// not grow: calls already let in can each still have one request read,
// then refused by the codec, which frees it at once. P and S are bounded
// by the calls open at once (MaxConnections × MaxConcurrentStreams), not
// by bytes: a call let in while the budget had room may send a request of
// up to MaxRequestBytes, or half of one, and hold it until it completes or
// the call ends (a client that cancels, or its connection closing, frees
// it). Bounding P × MaxRequestBytes by bytes would take that missing hook.

// DoorFreeBytes is how much of the in-flight budget must be free for the
// door to let a new Produce or ProduceStream call in: below it, the budget
// is exhausted for any request but the smallest, and the call's request
// would most likely be read whole only to be refused.
const DoorFreeBytes = 64 << 10

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
	// gen counts the releases; full is gen+1 as it was when a request was
	// last refused for lack of room: equal to gen+1 while no release has
	// come since (see doorClosed).
	gen, full atomic.Uint64
}

// tryTake takes n bytes if they fit under the limit. A refusal closes the
// door until the next release.
func (b *budget) tryTake(n int64) bool {
	g := b.gen.Load() // before the check: a release after it reopens the door
	for {
		u := b.used.Load()
		if u+n > b.limit {
			b.full.Store(g + 1)
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
		b.gen.Add(1)
	}
}

// doorClosed reports whether the budget is exhausted for a new call: less
// than DoorFreeBytes free, or a request refused for lack of room since the
// last release. A refusal needs bytes held (no request is larger than the
// limit), whose release reopens the door.
func (b *budget) doorClosed() bool {
	return b.limit-b.used.Load() < DoorFreeBytes || b.full.Load() == b.gen.Load()+1
}

// door is the server's tap (grpc.InTapHandle), run on the connection's
// reading goroutine when a call's HEADERS arrive, before any message of it
// is read: it refuses a new Produce or ProduceStream call while the
// budget's door is closed (see the door above), with s.doorRefusal. It
// costs two atomic loads per call.
func (s *Server) door(ctx context.Context, info *tap.Info) (context.Context, error) {
	switch info.FullMethodName {
	case goethev1.Goethe_Produce_FullMethodName, goethev1.Goethe_ProduceStream_FullMethodName:
		if s.budget.doorClosed() {
			s.opts.Metrics.observeDoorRefusal()
			return ctx, s.doorRefusal
		}
	}
	return ctx, nil
}

// doorRefusalStatus is the status of a call refused at the door, made once.
func doorRefusalStatus(limit int64) error {
	return toStatus(fmt.Errorf("%w: the server holds its limit of %d bytes of produce requests in flight, "+
		"and refused this call before reading it; retry later, or raise --max-inflight-bytes", errMemoryBudget, limit))
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
