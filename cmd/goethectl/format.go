package main

import (
	"bytes"
	"encoding/json"
	"fmt"
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
// JSON numbers: they exceed 2^53, so tools that read numbers as float64
// (JavaScript, jq before 1.7) round them.
type jsonEvent struct {
	Topic         string            `json:"topic"`
	ID            uint64            `json:"id"`
	Seq           uint64            `json:"seq"`
	Time          string            `json:"time"`
	Headers       map[string]string `json:"headers"`
	Payload       *string           `json:"payload,omitempty"`
	PayloadBase64 []byte            `json:"payload_base64,omitempty"`
}

func newJSONEvent(ev *client.Event) jsonEvent {
	j := jsonEvent{Topic: ev.Topic, ID: ev.ID, Seq: ev.Seq, Time: formatTime(idTime(ev.ID)), Headers: ev.Headers}
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

// jsonTopic is a topic as topics --json and topic --json print it. The
// first and last fields are 0 and "" while the topic holds no event.
type jsonTopic struct {
	Name      string `json:"name"`
	Created   string `json:"created"`
	Count     uint64 `json:"count"`
	FirstID   uint64 `json:"first_id"`
	FirstSeq  uint64 `json:"first_seq"`
	FirstTime string `json:"first_time,omitempty"`
	LastID    uint64 `json:"last_id"`
	LastSeq   uint64 `json:"last_seq"`
	LastTime  string `json:"last_time,omitempty"`
}

func newJSONTopic(t *client.TopicInfo) jsonTopic {
	j := jsonTopic{Name: t.Name, Created: formatTime(t.Created), Count: t.Count,
		FirstID: t.FirstID, FirstSeq: t.FirstSeq, LastID: t.LastID, LastSeq: t.LastSeq}
	if t.Count > 0 {
		j.FirstTime, j.LastTime = formatTime(idTime(t.FirstID)), formatTime(idTime(t.LastID))
	}
	return j
}

// jsonCursor is a cursor as cursor get --json prints it.
type jsonCursor struct {
	Topic    string `json:"topic"`
	Consumer string `json:"consumer"`
	ID       uint64 `json:"id"`
	Time     string `json:"time"`
	Updated  string `json:"updated"`
	LastID   uint64 `json:"last_id"`
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

// position is a place in a topic as --from and cursor set take it:
// "beginning", "end", an event id (decimal) or an RFC 3339 time.
type position struct {
	kind posKind
	id   uint64
	time time.Time
}

type posKind uint8

const (
	posBeginning posKind = iota
	posEnd
	posID
	posTime
)

// parsePosition reads a position; the error says what it accepts.
func parsePosition(s string) (position, error) {
	switch s {
	case "beginning":
		return position{kind: posBeginning}, nil
	case "end":
		return position{kind: posEnd}, nil
	}
	if id, err := strconv.ParseUint(s, 10, 64); err == nil {
		return position{kind: posID, id: id}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return position{kind: posTime, time: t}, nil
	}
	return position{}, fmt.Errorf("%q is not a position: want beginning, end, an event id or an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
}

// start is the Consume start of a --from position: an id means after that
// event, a time the first event at or after it.
func (p position) start() client.Start {
	switch p.kind {
	case posEnd:
		return client.End()
	case posID:
		return client.AfterID(p.id)
	case posTime:
		return client.AtTime(p.time)
	}
	return client.Beginning()
}

// cursorID is the cursor id that makes a consumer resume at p, for a
// topic whose last event is lastID: after the id, at the time.
func (p position) cursorID(lastID uint64) uint64 {
	switch p.kind {
	case posEnd:
		return lastID
	case posID:
		return p.id
	case posTime:
		// The nanoseconds since the epoch as an event id, computed from
		// seconds: time.UnixNano wraps before 1677 and after 2262, which
		// made a far-future time replay everything and a distant past
		// skip everything. Before the epoch is 0, past what a uint64
		// holds is the last id.
		sec, nsec := p.time.Unix(), uint64(p.time.Nanosecond())
		switch {
		case sec < 0 || sec == 0 && nsec == 0:
			return 0
		case uint64(sec) > (math.MaxUint64-nsec)/uint64(time.Second):
			return math.MaxUint64 - 1
		}
		return uint64(sec)*uint64(time.Second) + nsec - 1
	}
	return 0
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
