package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
)

// Key layout. Event keys are a topic's 8-byte id followed by the 8-byte event
// id, both big-endian, so that a topic's events sit together in id order and
// a time seek is one engine seek. System records live under one-byte
// prefixes at or above prefixSystem; topic ids are allocated below
// MaxTopicID, so no event key can start with a system prefix.
const (
	prefixFormat  = 0xF0 // {0xF0} → format version
	prefixCatalog = 0xF1 // {0xF1} name → topic id
	prefixMeta    = 0xF2 // {0xF2} topic id → topic metadata
	prefixCursor  = 0xF3 // {0xF3} topic id, consumer name → cursor
	prefixCounter = 0xF4 // {0xF4} 't' → next topic id
	prefixReplica = 0xF5 // {0xF5} 'a' → Raft index applied; {0xF5} 'r' → restore in progress
	prefixConfig  = 0xF6 // {0xF6} topic id → topic config (retention, dedupe window)
	prefixReclaim = 0xF7 // {0xF7} topic id → the events of this deleted topic are still to be removed
	prefixDedupe  = 0xF8 // {0xF8} topic id, event id → seq, dedupe key (see dedupe.go)

	prefixSystem = prefixFormat
)

// FormatVersion is the on-disk layout this build writes. Version 2 stores
// every event with a CRC-32C of its key and value. Version 3 adds each
// topic's stored bytes to its metadata (meta value version 2), topic
// config, reclaim and dedupe records, and events that carry a dedupe key
// (eventVersionKey): records a build of version 2 would take for damage.
//
// This build reads versions 1, 2 and 3. Open raises the record of an older
// folder to 3 before anything is written, so that an older build refuses
// the folder (ErrFormat, "unsupported data format") rather than misread
// its new records. The record of a folder that began at version 1 says so
// ({3, 1}): it may hold events without a checksum; in any other folder
// such an event is damage, so that a damaged version byte cannot turn the
// check off. Any other version is refused by Open.
const FormatVersion = 3

// formatV2 is the layout before topic bytes, configs and dedupe keys.
const formatV2 = 2

// formatV1 is the layout before event checksums.
const formatV1 = 1

// MaxTopicID bounds topic ids so that event keys never collide with the
// system prefixes: the first byte of an event key is always below 0xF0.
const MaxTopicID = uint64(prefixSystem)<<56 - 1

const (
	eventKeyLen  = 16
	valueVersion = 1    // leading byte of every cursor value, of a meta value without bytes, and of a format-1 event
	metaVersion  = 2    // leading byte of a meta value that records the topic's stored bytes
	eventVersion = 0xE2 // leading byte of an event value with a checksum: 5 bits from valueVersion
	// eventVersionKey leads an event value with a checksum and a dedupe
	// key (see appendEventValueKey): 5 bits from valueVersion, 6 from
	// eventVersion. Events without a key keep eventVersion, byte for byte.
	eventVersionKey = 0x9C
	// eventHeaderLen is an event value's version byte and CRC-32C.
	eventHeaderLen = 5
)

// castagnoli is CRC-32C, hardware-accelerated where the CPU has it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// eventChecksum is the CRC-32C of an event's key and of its value after the
// checksum itself.
func eventChecksum(key, rest []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, rest)
}

var (
	formatKey  = []byte{prefixFormat}
	topicIDKey = []byte{prefixCounter, 't'}
	appliedKey = []byte{prefixReplica, 'a'}
	restoreKey = []byte{prefixReplica, 'r'}
)

func putEventKey(dst []byte, tid, id uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, tid)
	return binary.BigEndian.AppendUint64(dst, id)
}

func eventKey(tid, id uint64) []byte { return putEventKey(make([]byte, 0, eventKeyLen), tid, id) }

// topicEnd is the exclusive upper bound of a topic's event keys.
func topicEnd(tid uint64) []byte { return binary.BigEndian.AppendUint64(nil, tid+1) }

func catalogKey(name string) []byte {
	return append([]byte{prefixCatalog}, name...)
}

func metaKey(tid uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixMeta}, tid)
}

func configKey(tid uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixConfig}, tid)
}

func reclaimKey(tid uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixReclaim}, tid)
}

// cursorsStart and cursorsEnd bound the cursor keys of topic tid.
func cursorsStart(tid uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixCursor}, tid)
}

func cursorsEnd(tid uint64) []byte {
	if tid >= MaxTopicID {
		return []byte{prefixCursor + 1}
	}
	return binary.BigEndian.AppendUint64([]byte{prefixCursor}, tid+1)
}

func cursorKey(tid uint64, consumer string) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(consumer)), tid)
	return append(append([]byte{prefixCursor}, k...), consumer...)
}

// appendEventValue encodes the stored value of the event at key: version,
// CRC-32C (little-endian) of key and of the rest of the value, seq, headers
// sorted by key (so that the bytes are a deterministic function of the
// event, as replicas will need), then the payload.
func appendEventValue(dst, key []byte, seq uint64, headers map[string]string, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, eventVersion, 0, 0, 0, 0)
	dst = appendEventBody(dst, seq, headers, payload)
	sum := eventChecksum(key, dst[start+eventHeaderLen:])
	binary.LittleEndian.PutUint32(dst[start+1:], sum)
	return dst
}

// appendEventBody encodes what follows an event value's header.
func appendEventBody(dst []byte, seq uint64, headers map[string]string, payload []byte) []byte {
	return appendEventRest(binary.AppendUvarint(dst, seq), headers, payload)
}

// appendEventRest encodes an event value's headers and payload.
func appendEventRest(dst []byte, headers map[string]string, payload []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(headers)))
	switch len(headers) {
	case 0:
	case 1:
		for k, v := range headers {
			dst = appendString(dst, k)
			dst = appendString(dst, v)
		}
	default:
		keys := make([]string, 0, len(headers))
		for k := range headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			dst = appendString(dst, k)
			dst = appendString(dst, headers[k])
		}
	}
	return append(dst, payload...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeEvent fills e from a stored key and value, verifying the value's
// checksum: a mismatch is ErrCorrupted, never a changed event. An event of
// format 1 (no checksum) is accepted only with legacy set (a folder
// upgraded from format 1). The payload aliases value.
func decodeEvent(key, value []byte, legacy bool, e *Event) error {
	if len(key) != eventKeyLen || len(value) < 1 {
		return fmt.Errorf("%w: event %x", ErrCorrupted, key)
	}
	var v []byte
	keyed := false
	switch value[0] {
	case eventVersion, eventVersionKey:
		keyed = value[0] == eventVersionKey
		if len(value) < eventHeaderLen {
			return fmt.Errorf("%w: event %x: value of %d bytes", ErrCorrupted, key, len(value))
		}
		v = value[eventHeaderLen:]
		sum := eventChecksum(key, v)
		if keyed {
			sum = eventChecksumKeyed(key, v)
		}
		if binary.LittleEndian.Uint32(value[1:]) != sum {
			return fmt.Errorf("%w: event %x: checksum mismatch", ErrCorrupted, key)
		}
	case valueVersion: // format 1: no checksum
		if !legacy {
			return fmt.Errorf("%w: event %x: no checksum in a folder of format %d", ErrCorrupted, key, FormatVersion)
		}
		v = value[1:]
	default:
		return fmt.Errorf("%w: event %x: unknown value version %d", ErrCorrupted, key, value[0])
	}
	e.ID = binary.BigEndian.Uint64(key[8:])
	var ok bool
	if e.Seq, v, ok = uvarint(v); !ok {
		return fmt.Errorf("%w: event %x: seq", ErrCorrupted, key)
	}
	e.DedupeKey = ""
	if keyed {
		if e.DedupeKey, v, ok = readString(v); !ok || e.DedupeKey == "" {
			return fmt.Errorf("%w: event %x: dedupe key", ErrCorrupted, key)
		}
	}
	n, v, ok := uvarint(v)
	if !ok || n > uint64(len(v)) {
		return fmt.Errorf("%w: event %x: header count", ErrCorrupted, key)
	}
	e.Headers = nil
	if n > 0 {
		e.Headers = make(map[string]string, n)
		for range n {
			var k, hv string
			if k, v, ok = readString(v); !ok {
				return fmt.Errorf("%w: event %x: header", ErrCorrupted, key)
			}
			if hv, v, ok = readString(v); !ok {
				return fmt.Errorf("%w: event %x: header", ErrCorrupted, key)
			}
			e.Headers[k] = hv
		}
	}
	e.Payload = v
	return nil
}

func uvarint(b []byte) (uint64, []byte, bool) {
	x, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, b, false
	}
	return x, b[n:], true
}

func readString(b []byte) (string, []byte, bool) {
	n, b, ok := uvarint(b)
	if !ok || n > uint64(len(b)) {
		return "", b, false
	}
	return string(b[:n]), b[n:], true
}

// topicMeta is the per-topic record written in the same batch as the events
// it describes, so that after a crash it agrees with them.
//
// A topic emptied by retention or a trim keeps lastID and lastSeq, with
// firstID 0 and firstSeq lastSeq+1: its next event continues the seqs.
type topicMeta struct {
	id       uint64
	name     string
	created  int64 // ns since the epoch
	firstID  uint64
	firstSeq uint64
	lastID   uint64
	lastSeq  uint64
	// bytes is the stored size (keys and values) of the topic's events.
	bytes uint64
	// noBytes: decoded from a meta value of version 1, which does not
	// record bytes; the loader computes them from the events.
	noBytes bool
	// cfg is the topic's config record (see TopicConfig), kept under its
	// own key (prefixConfig), not in the meta value.
	cfg TopicConfig
}

// encode writes the meta value, version 2: created, first id, first seq,
// last id, last seq, bytes (uvarints), then the name.
func (m *topicMeta) encode(dst []byte) []byte {
	dst = append(dst, metaVersion)
	dst = binary.AppendUvarint(dst, uint64(m.created))
	dst = binary.AppendUvarint(dst, m.firstID)
	dst = binary.AppendUvarint(dst, m.firstSeq)
	dst = binary.AppendUvarint(dst, m.lastID)
	dst = binary.AppendUvarint(dst, m.lastSeq)
	dst = binary.AppendUvarint(dst, m.bytes)
	return append(dst, m.name...)
}

// encodeV1 writes the meta value of the builds before bytes were recorded
// (version 1), for tests of folders they wrote.
func (m *topicMeta) encodeV1(dst []byte) []byte {
	dst = append(dst, valueVersion)
	dst = binary.AppendUvarint(dst, uint64(m.created))
	dst = binary.AppendUvarint(dst, m.firstID)
	dst = binary.AppendUvarint(dst, m.firstSeq)
	dst = binary.AppendUvarint(dst, m.lastID)
	dst = binary.AppendUvarint(dst, m.lastSeq)
	return append(dst, m.name...)
}

// decodeMeta decodes a meta value of version 1 (noBytes set: the caller
// computes bytes from the events) or 2.
func decodeMeta(tid uint64, v []byte) (topicMeta, error) {
	m := topicMeta{id: tid}
	if len(v) < 1 || (v[0] != valueVersion && v[0] != metaVersion) {
		return m, fmt.Errorf("%w: topic %d metadata", ErrCorrupted, tid)
	}
	version := v[0]
	v = v[1:]
	var created uint64
	fields := []*uint64{&created, &m.firstID, &m.firstSeq, &m.lastID, &m.lastSeq}
	if version == metaVersion {
		fields = append(fields, &m.bytes)
	} else {
		m.noBytes = true
	}
	for _, f := range fields {
		var ok bool
		if *f, v, ok = uvarint(v); !ok {
			return m, fmt.Errorf("%w: topic %d metadata", ErrCorrupted, tid)
		}
	}
	m.created = int64(created)
	m.name = string(v)
	return m, nil
}

// empty reports whether the topic holds no event (never had one, or was
// emptied by a trim).
func (m *topicMeta) empty() bool { return m.firstID == 0 }

// encodeCursor writes a cursor value: version, id, updated, and the seq of
// the event at id when the writer knew it (not 0). Builds before the seq
// wrote no seq; decodeCursor reads both.
func encodeCursor(id uint64, updated int64, seq uint64) []byte {
	dst := []byte{valueVersion}
	dst = binary.AppendUvarint(dst, id)
	dst = binary.AppendUvarint(dst, uint64(updated))
	if seq != 0 {
		dst = binary.AppendUvarint(dst, seq)
	}
	return dst
}

func decodeCursor(v []byte) (id uint64, updated int64, err error) {
	id, updated, _, err = decodeCursorSeq(v)
	return id, updated, err
}

// decodeCursorSeq is decodeCursor with the cursor's seq (0: not recorded).
func decodeCursorSeq(v []byte) (id uint64, updated int64, seq uint64, err error) {
	if len(v) < 1 || v[0] != valueVersion {
		return 0, 0, 0, fmt.Errorf("%w: cursor", ErrCorrupted)
	}
	id, rest, ok := uvarint(v[1:])
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: cursor", ErrCorrupted)
	}
	u, rest, ok := uvarint(rest)
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: cursor", ErrCorrupted)
	}
	if len(rest) > 0 {
		if seq, rest, ok = uvarint(rest); !ok || len(rest) > 0 {
			return 0, 0, 0, fmt.Errorf("%w: cursor", ErrCorrupted)
		}
	}
	return id, int64(u), seq, nil
}

// putUint64 appends v big-endian to dst.
func putUint64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }
