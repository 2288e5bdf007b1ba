package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goethe-log/goethe/client"
)

// timeLayout is how goethectl prints times: RFC 3339 in UTC with all nine
// digits of the nanoseconds, so that every time has the same width and
// times sort as strings. --from accepts it back, as any RFC 3339 time.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// idTime is the time an event id stands for.
func idTime(id uint64) time.Time { return time.Unix(0, int64(id)) }

// jsonEvent is an event as consume --json prints it, one object per line.
// The payload is a JSON string when it is valid UTF-8 ("payload"), else
// base64 in "payload_base64"; exactly one of the two is present. Ids are
// JSON strings of decimal digits, in every --json output: they exceed 2^53,
// and tools that read numbers as float64 (JavaScript, jq) would round them,
// so that a replay from a rounded id starts at the wrong event. Seqs and
// counts stay numbers. produce --json reads this form back (readJSONEvent).
type jsonEvent struct {
	Topic         string            `json:"topic"`
	ID            uint64            `json:"id,string"`
	Seq           uint64            `json:"seq"`
	Time          string            `json:"time"`
	Headers       map[string]string `json:"headers"`
	Payload       *string           `json:"payload,omitempty"`
	PayloadBase64 []byte            `json:"payload_base64,omitempty"`
	// Skipped counts the events just before this one that retention or a
	// trim removed before the consume read them (absent when none).
	Skipped uint64 `json:"skipped,omitempty"`
}

func newJSONEvent(ev *client.Event) jsonEvent {
	j := jsonEvent{Topic: ev.Topic, ID: ev.ID, Seq: ev.Seq, Time: formatTime(idTime(ev.ID)), Headers: ev.Headers, Skipped: ev.Skipped}
	if j.Headers == nil {
		j.Headers = map[string]string{}
	}
	if utf8.Valid(ev.Payload) {
		s := string(ev.Payload)
		j.Payload = &s
	} else {
		j.PayloadBase64 = ev.Payload
	}
	return j
}

// jsonInput is an event as produce --json reads it: the form jsonEvent
// prints. topic, id, seq and time are accepted and ignored: the server
// assigns them.
type jsonInput struct {
	Topic         json.RawMessage   `json:"topic"`
	ID            json.RawMessage   `json:"id"`
	Seq           json.RawMessage   `json:"seq"`
	Time          json.RawMessage   `json:"time"`
	Headers       map[string]string `json:"headers"`
	Payload       *string           `json:"payload"`
	PayloadBase64 *[]byte           `json:"payload_base64"`
	// DedupeKey, if present, is the event's dedupe key (consume --json
	// does not print the keys: produce --retry makes one per event).
	DedupeKey string `json:"dedupe_key"`
}

// errNotJSONEvent is a produce --json line that is not an event.
var errNotJSONEvent = errors.New("not a JSON event as consume --json prints it")

// readJSONEvent reads one line of produce --json: exactly one JSON object
// of the fields jsonEvent prints, with at most one of payload and
// payload_base64 (neither is an empty payload). Errors wrap
// errNotJSONEvent.
func readJSONEvent(line []byte) (client.EventData, error) {
	if t := bytes.TrimSpace(line); len(t) == 0 || t[0] != '{' {
		return client.EventData{}, fmt.Errorf("%w: want a JSON object", errNotJSONEvent)
	}
	var in jsonInput
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return client.EventData{}, fmt.Errorf("%w: %w", errNotJSONEvent, err)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		return client.EventData{}, fmt.Errorf("%w: more than one JSON value on the line", errNotJSONEvent)
	}
	ev := client.EventData{Headers: in.Headers, DedupeKey: in.DedupeKey}
	switch {
	case in.Payload != nil && in.PayloadBase64 != nil:
		return client.EventData{}, fmt.Errorf("%w: both payload and payload_base64", errNotJSONEvent)
	case in.Payload != nil:
		ev.Payload = []byte(*in.Payload)
	case in.PayloadBase64 != nil:
		ev.Payload = *in.PayloadBase64
	}
	return ev, nil
}

// jsonTopic is a topic as topics --json and topic --json print it. The
// first and last fields are 0 and "" while the topic holds no event.
type jsonTopic struct {
	Name      string `json:"name"`
	Created   string `json:"created"`
	Count     uint64 `json:"count"`
	FirstID   uint64 `json:"first_id,string"`
	FirstSeq  uint64 `json:"first_seq"`
	FirstTime string `json:"first_time,omitempty"`
	LastID    uint64 `json:"last_id,string"`
	LastSeq   uint64 `json:"last_seq"`
	LastTime  string `json:"last_time,omitempty"`
	Bytes     uint64 `json:"bytes"`
	// Config is what applies: the topic's settings over the server's
	// defaults; absent settings and 0 are no limit (dedupe: off).
	Config jsonConfig `json:"config"`
}

// jsonConfig is a topic's effective retention and dedupe settings: Go
// duration strings and numbers, 0 (or absent) for none.
type jsonConfig struct {
	MaxAge       string `json:"max_age,omitempty"`
	MaxEvents    uint64 `json:"max_events,omitempty"`
	MaxBytes     uint64 `json:"max_bytes,omitempty"`
	DedupeWindow string `json:"dedupe_window,omitempty"`
}

func newJSONTopic(t *client.TopicInfo) jsonTopic {
	j := jsonTopic{Name: t.Name, Created: formatTime(t.Created), Count: t.Count,
		FirstID: t.FirstID, FirstSeq: t.FirstSeq, LastID: t.LastID, LastSeq: t.LastSeq, Bytes: t.Bytes}
	eff := t.Effective
	if eff.MaxAge != nil && *eff.MaxAge > 0 {
		j.Config.MaxAge = eff.MaxAge.String()
	}
	if eff.MaxEvents != nil {
		j.Config.MaxEvents = *eff.MaxEvents
	}
	if eff.MaxBytes != nil {
		j.Config.MaxBytes = *eff.MaxBytes
	}
	if eff.DedupeWindow != nil && *eff.DedupeWindow > 0 {
		j.Config.DedupeWindow = eff.DedupeWindow.String()
	}
	if t.Count > 0 {
		j.FirstTime, j.LastTime = formatTime(idTime(t.FirstID)), formatTime(idTime(t.LastID))
	}
	return j
}

// jsonCursor is a cursor as cursor get --json prints it.
type jsonCursor struct {
	Topic    string `json:"topic"`
	Consumer string `json:"consumer"`
	ID       uint64 `json:"id,string"`
	Time     string `json:"time"`
	Updated  string `json:"updated"`
	LastID   uint64 `json:"last_id,string"`
	LastSeq  uint64 `json:"last_seq"`
	Lag      uint64 `json:"lag"`
}

// marshalLine encodes v as one line of JSON, without escaping <, > and &.
func marshalLine(buf *bytes.Buffer, v any) ([]byte, error) {
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// position is a place in a topic as --from, --until and cursor set take
// it; parsePosition lists the forms.
type position struct {
	kind posKind
	id   uint64    // posID
	seq  uint64    // posSeq
	time time.Time // posTime
}

type posKind uint8

const (
	posBeginning posKind = iota
	posEnd
	posID
	posTime
	posSeq
)

// minBareIDDigits is the fewest digits of a number read as an event id
// without "id:". Ids are nanoseconds since 1970, 19 digits since 2001: a
// shorter number is far more likely a seq (Kafka's offsets and NATS's
// stream sequences are small numbers), and reading 3 as the nanosecond id 3
// would silently replay the whole topic, so a bare number below 10^15 (a
// time in January 1970) is refused as ambiguous.
const minBareIDDigits = 16

// parsePosition reads a position at the current time; the error says what
// it accepts.
func parsePosition(s string) (position, error) { return parsePositionAt(s, time.Now()) }

// parsePositionAt reads a position, resolving relative times against now:
//
//	beginning, end     the topic's first event; after its last ("now" is end)
//	seq:N              the event with seq N
//	id:N               after the event with id N; a bare number of at least
//	                   16 digits is an id too, a shorter one is refused
//	-5m, 5m, 1h30m, 2d a time that long ago (a Go duration, or whole days)
//	RFC 3339 time      that time, e.g. 2026-01-02T15:04:05Z
func parsePositionAt(s string, now time.Time) (position, error) {
	switch s {
	case "beginning":
		return position{kind: posBeginning}, nil
	case "end", "now":
		return position{kind: posEnd}, nil
	}
	if rest, ok := strings.CutPrefix(s, "seq:"); ok {
		n, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			return position{}, fmt.Errorf("%q is not a position: seq: wants a seq, a whole number such as seq:3", s)
		}
		return position{kind: posSeq, seq: n}, nil
	}
	if rest, ok := strings.CutPrefix(s, "id:"); ok {
		n, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			return position{}, fmt.Errorf("%q is not a position: id: wants an event id, a whole number such as id:1767261600482913564", s)
		}
		return position{kind: posID, id: n}, nil
	}
	if isDigits(s) {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return position{}, fmt.Errorf("%q is not a position: it is larger than any event id", s)
		}
		if len(strings.TrimLeft(s, "0")) < minBareIDDigits {
			return position{}, fmt.Errorf("%q is ambiguous: type seq:%d for the event with seq %d, or id:%d for the events after id %d", s, n, n, n, n)
		}
		return position{kind: posID, id: n}, nil
	}
	if d, ok := parseAgo(s); ok {
		return position{kind: posTime, time: now.Add(-d)}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return position{kind: posTime, time: t}, nil
	}
	return position{}, fmt.Errorf("%q is not a position: want beginning, end, now, seq:N, id:N, a time ago such as -5m or 2h, or an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseAgo reads a time ago: a Go duration ("5m", "1h30m") or whole days
// ("2d"), with or without a leading "-" (both mean ago). "+" is not taken,
// since it would read as the future.
func parseAgo(s string) (time.Duration, bool) {
	s = strings.TrimPrefix(s, "-")
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	if days, ok := strings.CutSuffix(s, "d"); ok && isDigits(days) {
		n, err := strconv.ParseUint(days, 10, 64)
		if err != nil || n > uint64(math.MaxInt64/(24*time.Hour)) {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// start is the Consume start of a --from position: an id means after that
// event, a time the first event at or after it, a seq that event.
func (p position) start() client.Start {
	switch p.kind {
	case posEnd:
		return client.End()
	case posID:
		return client.AfterID(p.id)
	case posTime:
		return client.AtTime(p.time)
	case posSeq:
		return client.AtSeq(p.seq)
	}
	return client.Beginning()
}

// cursorID is the cursor id that makes a consumer resume at p, for a
// topic whose last event is lastID: after the id, at the time. A seq is
// not an id: setCursor resolves it with the server first (seqCursor).
func (p position) cursorID(lastID uint64) uint64 {
	switch p.kind {
	case posEnd:
		return lastID
	case posID:
		return p.id
	case posTime:
		// Before the first event at or after the time.
		return max(timeID(p.time), 1) - 1
	}
	return 0
}

// timeID is the event id of time t, the nanoseconds since the epoch,
// computed from seconds: time.UnixNano wraps before 1677 and after 2262,
// which made a far-future time replay everything and a distant past skip
// everything. Before the epoch is 0; past what a uint64 holds is the
// largest id.
func timeID(t time.Time) uint64 {
	sec, nsec := t.Unix(), uint64(t.Nanosecond())
	switch {
	case sec < 0:
		return 0
	case uint64(sec) > (math.MaxUint64-nsec)/uint64(time.Second):
		return math.MaxUint64
	}
	return uint64(sec)*uint64(time.Second) + nsec
}

// seqFlag is an optional uint64 flag value: it records whether it was set.
type seqFlag struct {
	set bool
	n   uint64
}

func (f *seqFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatUint(f.n, 10)
}

func (f *seqFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want a seq, a whole number from 0")
	}
	f.set, f.n = true, n
	return nil
}

// headerFlag collects repeated --header key=value flags.
type headerFlag map[string]string

func (h headerFlag) String() string { return "" }

func (h headerFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value")
	}
	h[k] = v
	return nil
}
