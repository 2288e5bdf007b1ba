package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"time"

	"github.com/goethe-log/goethe/store"
)

// Log entry format, versions 1 and 2. Every field is a uvarint unless said:
//
//	byte version (0x01 or 0x02)
//	leader time (ns since the Unix epoch, as uint64)
//	number of commands
//	per command: byte kind, topic (length, bytes), then
//	  append:     byte flags (bit 0: expectation set; bit 1: events carry
//	              dedupe keys; bit 2: a dedupe window follows),
//	              [expected last seq], [the leader's dedupe window, ns,
//	              0 for off],
//	              number of events, per event: number of headers,
//	              headers sorted by key (key length, key, value length,
//	              value), payload length, payload, [dedupe key (length,
//	              bytes), when flag bit 1]
//	  set cursor: consumer (length, bytes), cursor id,
//	              version 2 only: cursor seq (0: unknown)
//	  version 2 only:
//	  set config: byte fields set, byte fields cleared (store.ConfigFields),
//	              then each field set, in flag order: max age (ns), max
//	              events, max bytes, dedupe window (ns)
//	  trim:       topic id, first seq, new first id, new first seq, bytes
//	  delete:     topic id
//
// Flag bit 1 of an append is set exactly when some event has a dedupe key
// (a decoder refuses it otherwise), so entries of builds before dedupe keys
// decode unchanged and the encoding stays canonical. Bit 2 carries the
// dedupe window the leader decided for topics without their own (see
// store.Command.DedupeWindow); a leader of this build sets it on every
// append, which a member of a build before it refuses (ErrBadEntry) rather
// than apply with a window of its own: upgrade every member first.
//
// An entry is written as version 1 when version 1 can say it (appends, and
// cursors without a seq), so that a build that reads only version 1 goes on
// reading what it could before; an entry with a command of a kind added in
// version 2, or a cursor with a seq, is version 2, which such a build
// refuses (ErrBadEntry) rather than misread: upgrade every member before
// using topic config, trims or deletes. Sorting the headers makes the
// encoding a function of the commands, so the same proposal always has the
// same bytes. A decoder refuses unknown versions, kinds and flags, kinds
// of version 2 in a version-1 entry, lengths past the data, and trailing
// bytes.
const (
	entryVersion1 = 1
	entryVersion2 = 2
)

// entryVersionOf is the lowest version that can carry cmds.
func entryVersionOf(cmds []store.Command) byte {
	for i := range cmds {
		switch c := &cmds[i]; c.Kind {
		case store.CommandAppend:
		case store.CommandSetCursor:
			if c.CursorSeq != 0 {
				return entryVersion2
			}
		default:
			return entryVersion2
		}
	}
	return entryVersion1
}

// Append flags.
const (
	flagExpect = 1 << 0 // an expected last seq follows
	flagDedupe = 1 << 1 // each event ends with its dedupe key
	flagWindow = 1 << 2 // the leader's dedupe window follows (ns, 0: off)
)

// ErrBadEntry wraps a log entry that does not decode: damaged, or written
// by a newer build. Every replica refuses it the same way.
var ErrBadEntry = errors.New("cluster: undecodable log entry")

// appendEntry encodes a proposal of cmds at the leader's time now.
func appendEntry(dst []byte, now int64, cmds []store.Command) []byte {
	// One allocation of the whole entry: grown by appends, a 100 KB
	// entry (1,000 events of 100 B) was copied and reallocated ~12 times,
	// 5x its size in garbage on the leader's hot path.
	dst = slices.Grow(dst, entrySize(cmds))
	version := entryVersionOf(cmds)
	dst = append(dst, version)
	dst = binary.AppendUvarint(dst, uint64(now))
	dst = binary.AppendUvarint(dst, uint64(len(cmds)))
	var keys []string
	for i := range cmds {
		c := &cmds[i]
		dst = append(dst, byte(c.Kind))
		dst = appendBytes(dst, c.Topic)
		switch c.Kind {
		case store.CommandAppend:
			var flags byte
			if c.Expect.IsSet() {
				flags |= flagExpect
			}
			dedupe := hasDedupeKeys(c.Events)
			if dedupe {
				flags |= flagDedupe
			}
			if c.DedupeWindow != 0 {
				flags |= flagWindow
			}
			dst = append(dst, flags)
			if c.Expect.IsSet() {
				dst = binary.AppendUvarint(dst, c.Expect.LastSeq())
			}
			if c.DedupeWindow != 0 {
				dst = binary.AppendUvarint(dst, uint64(max(c.DedupeWindow, 0)))
			}
			dst = binary.AppendUvarint(dst, uint64(len(c.Events)))
			for j := range c.Events {
				e := &c.Events[j]
				dst = binary.AppendUvarint(dst, uint64(len(e.Headers)))
				keys = keys[:0]
				for k := range e.Headers {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					dst = appendBytes(dst, k)
					dst = appendBytes(dst, e.Headers[k])
				}
				dst = appendBytes(dst, e.Payload) // no string(): it copied each payload
				if dedupe {
					dst = appendBytes(dst, e.DedupeKey)
				}
			}
		case store.CommandSetCursor:
			dst = appendBytes(dst, c.Consumer)
			dst = binary.AppendUvarint(dst, c.CursorID)
			if version >= entryVersion2 {
				dst = binary.AppendUvarint(dst, c.CursorSeq)
			}
		case store.CommandSetConfig:
			set := c.Config.Set & store.AllConfigFields
			dst = append(dst, byte(set), byte(c.Clear&store.AllConfigFields))
			if set&store.FieldMaxAge != 0 {
				dst = binary.AppendUvarint(dst, uint64(c.Config.MaxAge))
			}
			if set&store.FieldMaxEvents != 0 {
				dst = binary.AppendUvarint(dst, c.Config.MaxEvents)
			}
			if set&store.FieldMaxBytes != 0 {
				dst = binary.AppendUvarint(dst, c.Config.MaxBytes)
			}
			if set&store.FieldDedupeWindow != 0 {
				dst = binary.AppendUvarint(dst, uint64(c.Config.DedupeWindow))
			}
		case store.CommandTrim:
			st := &c.Trim
			for _, v := range []uint64{st.TopicID, st.FirstSeq, st.NewFirstID, st.NewFirstSeq, st.Bytes} {
				dst = binary.AppendUvarint(dst, v)
			}
		case store.CommandDeleteTopic:
			dst = binary.AppendUvarint(dst, c.TopicID)
		}
	}
	return dst
}

// entrySize bounds the size of cmds' entry from above: exact for events,
// at most a few bytes over per command.
func entrySize(cmds []store.Command) int {
	n := 1 + 2*binary.MaxVarintLen64
	for i := range cmds {
		c := &cmds[i]
		n += 1 + uvarintLen(len(c.Topic)) + len(c.Topic)
		switch c.Kind {
		case store.CommandAppend:
			n += 1 + 3*binary.MaxVarintLen64
			for j := range c.Events {
				e := &c.Events[j]
				n += uvarintLen(len(e.Headers))
				for k, v := range e.Headers {
					n += uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
				}
				n += uvarintLen(len(e.Payload)) + len(e.Payload)
				n += uvarintLen(len(e.DedupeKey)) + len(e.DedupeKey)
			}
		case store.CommandSetCursor:
			n += uvarintLen(len(c.Consumer)) + len(c.Consumer) + 2*binary.MaxVarintLen64
		default: // flags and at most five uvarints
			n += 2 + 5*binary.MaxVarintLen64
		}
	}
	return n
}

// uvarintLen is the length of binary.AppendUvarint's encoding of n.
func uvarintLen(n int) int { return (bits.Len64(uint64(n)|1) + 6) / 7 }

func hasDedupeKeys(events []store.Event) bool {
	for i := range events {
		if events[i].DedupeKey != "" {
			return true
		}
	}
	return false
}

func appendBytes[T string | []byte](dst []byte, s T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeEntry decodes an entry written by appendEntry. Payloads alias data,
// which the caller must not modify while the commands are in use.
func decodeEntry(data []byte) (now int64, cmds []store.Command, err error) {
	d := decoder{b: data}
	version := d.byte()
	if version != entryVersion1 && version != entryVersion2 {
		return 0, nil, fmt.Errorf("%w: version %d", ErrBadEntry, version)
	}
	now = int64(d.uvarint())
	n := d.count(2) // a command takes at least 2 bytes
	if d.err == nil {
		cmds = make([]store.Command, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		c := &cmds[i]
		c.Kind = store.CommandKind(d.byte())
		c.Topic = string(d.bytes())
		switch c.Kind {
		case store.CommandAppend:
			flags := d.byte()
			if flags&^(flagExpect|flagDedupe|flagWindow) != 0 {
				d.fail("append flags")
			}
			if flags&flagExpect != 0 {
				c.Expect = store.ExpectLastSeq(d.uvarint())
			}
			if flags&flagWindow != 0 {
				w := d.uvarint()
				if w > math.MaxInt64 {
					d.fail("dedupe window")
				}
				c.DedupeWindow = time.Duration(w)
				if w == 0 {
					c.DedupeWindow = -1 // off
				}
			}
			ne := d.count(2)
			if d.err != nil {
				break
			}
			c.Events = make([]store.Event, ne)
			for j := 0; j < ne && d.err == nil; j++ {
				e := &c.Events[j]
				if nh := d.count(2); nh > 0 {
					e.Headers = make(map[string]string, nh)
					for k := 0; k < nh && d.err == nil; k++ {
						key := string(d.bytes())
						e.Headers[key] = string(d.bytes())
					}
					if d.err == nil && len(e.Headers) != nh {
						d.fail("duplicate header")
					}
				}
				e.Payload = d.bytes()
				if flags&flagDedupe != 0 {
					e.DedupeKey = string(d.bytes())
				}
			}
			if d.err == nil && flags&flagDedupe != 0 && !hasDedupeKeys(c.Events) {
				d.fail("dedupe flag without dedupe keys")
			}
		case store.CommandSetCursor:
			c.Consumer = string(d.bytes())
			c.CursorID = d.uvarint()
			if version >= entryVersion2 {
				c.CursorSeq = d.uvarint()
			}
		case store.CommandSetConfig, store.CommandTrim, store.CommandDeleteTopic:
			if version < entryVersion2 {
				d.fail(fmt.Sprintf("command kind %d in a version-1 entry", c.Kind))
				break
			}
			d.lifecycle(c)
		default:
			d.fail(fmt.Sprintf("command kind %d", c.Kind))
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return 0, nil, d.err
	}
	return now, cmds, nil
}

// lifecycle reads the fields of a set config, trim or delete command.
func (d *decoder) lifecycle(c *store.Command) {
	switch c.Kind {
	case store.CommandSetConfig:
		set, clear := store.ConfigFields(d.byte()), store.ConfigFields(d.byte())
		if set&^store.AllConfigFields != 0 || clear&^store.AllConfigFields != 0 {
			d.fail("config fields")
			return
		}
		c.Config.Set, c.Clear = set, clear
		duration := func() time.Duration {
			v := d.uvarint()
			if v > math.MaxInt64 {
				d.fail("duration")
			}
			return time.Duration(v)
		}
		if set&store.FieldMaxAge != 0 {
			c.Config.MaxAge = duration()
		}
		if set&store.FieldMaxEvents != 0 {
			c.Config.MaxEvents = d.uvarint()
		}
		if set&store.FieldMaxBytes != 0 {
			c.Config.MaxBytes = d.uvarint()
		}
		if set&store.FieldDedupeWindow != 0 {
			c.Config.DedupeWindow = duration()
		}
	case store.CommandTrim:
		st := &c.Trim
		for _, f := range []*uint64{&st.TopicID, &st.FirstSeq, &st.NewFirstID, &st.NewFirstSeq, &st.Bytes} {
			*f = d.uvarint()
		}
	case store.CommandDeleteTopic:
		c.TopicID = d.uvarint()
	}
}

// decoder reads an entry; the first error sticks and later reads return
// zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadEntry, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("cut short")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items each at least min bytes long, refusing one
// the rest of the data cannot hold (so a damaged count allocates nothing).
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/min) {
		d.fail("count past the end")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length past the end")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
