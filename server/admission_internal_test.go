package server

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// The prescan agrees with validate at and past each limit, counts header
// bytes, refuses what does not parse, and never passes what decoding and
// validate would refuse for a limit.
func TestScanProduce(t *testing.T) {
	ev := func(payload int, headers map[string]string) *goethev1.EventData {
		return &goethev1.EventData{Payload: make([]byte, payload), Headers: headers}
	}
	req := func(events ...*goethev1.EventData) []byte {
		b, err := proto.Marshal(&goethev1.ProduceRequest{Topic: "t", Events: events})
		require.NoError(t, err)
		return b
	}
	many := func(n int) []*goethev1.EventData {
		out := make([]*goethev1.EventData, n)
		for i := range out {
			out[i] = ev(0, nil)
		}
		return out
	}
	cases := []struct {
		name string
		b    []byte
		want string // "" passes; else the error's text
	}{
		{"empty request", nil, ""},
		{"events at the limit", req(many(10)...), ""},
		{"one event too many", req(many(11)...), "a produce has 11 events, the limit is 10"},
		{"event at the limit", req(ev(100, nil)), ""},
		{"event one byte over", req(ev(101, nil)), "event 0 is 101 bytes"},
		{"headers at the limit", req(ev(80, map[string]string{"k": strings.Repeat("v", 19)})), ""},
		{"headers one byte over", req(ev(0, nil), ev(80, map[string]string{"k": strings.Repeat("v", 20)})), "event 1 is 101 bytes"},
		{"truncated", req(ev(50, nil))[:20], "malformed"},
	}
	for _, c := range cases {
		err := scanProduce(c.b, 10, 100)
		if c.want == "" {
			require.NoError(t, err, c.name)
			continue
		}
		require.ErrorContains(t, err, c.want, c.name)
		if c.want != "malformed" {
			require.ErrorIs(t, err, errLimitExceeded, c.name)
		} else {
			require.ErrorIs(t, err, errMalformed, c.name)
		}
	}
}

// A mark round-trips, and a message without one has none.
func TestMark(t *testing.T) {
	m := &goethev1.ProduceRequest{Topic: "t"}
	require.Equal(t, mark{}, readMark(m))
	setMark(m, markAdmitted, 12345, "")
	require.Equal(t, mark{held: 12345}, readMark(m))
	for k, want := range map[markKind]error{markLimit: errLimitExceeded, markMalformed: errBadRequest, markBudget: errMemoryBudget} {
		setMark(m, k, 0, "why")
		got := readMark(m)
		require.ErrorIs(t, got.err, want)
		require.ErrorContains(t, got.err, "why")
		require.Zero(t, got.held)
	}
	require.Equal(t, mark{}, readMark("not a message"))
}

// The budget refuses what does not fit and takes what does, at the limit.
func TestBudget(t *testing.T) {
	b := budget{limit: 100}
	require.True(t, b.tryTake(60))
	require.True(t, b.tryTake(40))
	require.False(t, b.tryTake(1))
	b.release(40)
	require.False(t, b.tryTake(41))
	require.True(t, b.tryTake(40))
	b.release(100)
	require.Zero(t, b.used.Load())
}

// The resource limits take their defaults, the budget follows a large
// MaxRequestBytes up when unset, and bad values are refused.
func TestOptionsFillLimits(t *testing.T) {
	var o Options
	require.NoError(t, o.fill())
	require.Equal(t, int64(DefaultMaxInflightBytes), o.MaxInflightBytes)
	require.Equal(t, uint32(DefaultMaxConcurrentStreams), o.MaxConcurrentStreams)
	require.Equal(t, DefaultMaxConnections, o.MaxConnections)
	require.Equal(t, DefaultSlowConsumerTimeout, o.SlowConsumerTimeout)
	require.Equal(t, DefaultStopGrace, o.StopGrace)
	require.Equal(t, DefaultHandshakeTimeout, o.HandshakeTimeout)

	o = Options{MaxEventBytes: 128 << 20}
	require.NoError(t, o.fill())
	require.Equal(t, int64(o.MaxRequestBytes), o.MaxInflightBytes, "the default budget takes the largest request")

	o = Options{MaxInflightBytes: DefaultMaxRequestBytes}
	require.NoError(t, o.fill(), "a budget of exactly one largest request")
	o = Options{MaxInflightBytes: DefaultMaxRequestBytes - 1}
	require.ErrorContains(t, o.fill(), "MaxInflightBytes")

	for _, bad := range []Options{
		{MaxInflightBytes: -1}, {MaxConnections: -1}, {SlowConsumerTimeout: -time.Second},
		{StopGrace: -time.Second}, {HandshakeTimeout: -1}, {KeepaliveTime: -1},
	} {
		require.Error(t, bad.fill(), "%+v", bad)
	}
}

// FuzzScanProduce: what the prescan passes never decodes to a Produce over
// a limit (it may refuse more: a header key repeated in the encoding counts
// each time), and it never panics on any bytes.
func FuzzScanProduce(f *testing.F) {
	for _, m := range []*goethev1.ProduceRequest{
		{Topic: "t"},
		{Topic: "t", Events: []*goethev1.EventData{{Payload: make([]byte, 8)}, {Headers: map[string]string{"k": "vvvv"}}}},
		{Topic: "t", Events: []*goethev1.EventData{{}, {}, {}, {}, {}}},
		{Topic: "t", Events: []*goethev1.EventData{{Payload: []byte("pp"), DedupeKey: "kkkkkkkk"}, {DedupeKey: "kkkkkkkkkkk"}}},
	} {
		b, err := proto.Marshal(m)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{0x12, 0x00, 0x12, 0x00, 0x12, 0x00, 0x12, 0x00, 0x12, 0x00})
	f.Add([]byte{0x12, 0x04, 0x0a, 0x02, 'a', 'b', 0x12, 0x03, 0x12, 0x01})
	const maxEvents, maxEventBytes = 4, 10
	f.Fuzz(func(t *testing.T, b []byte) {
		if scanProduce(b, maxEvents, maxEventBytes) != nil {
			return
		}
		var m goethev1.ProduceRequest
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		require.LessOrEqual(t, len(m.Events), maxEvents)
		for _, e := range m.Events {
			size := len(e.Payload) + len(e.DedupeKey)
			for k, v := range e.Headers {
				size += len(k) + len(v)
			}
			require.LessOrEqual(t, size, maxEventBytes)
		}
	})
}

// The door closes at DoorFreeBytes free and past it, and after a refusal
// until the next release; a release before the refusal's check does not
// reopen it.
func TestBudgetDoor(t *testing.T) {
	b := budget{limit: 1 << 20}
	require.False(t, b.doorClosed())
	require.True(t, b.tryTake(b.limit-DoorFreeBytes))
	require.False(t, b.doorClosed(), "exactly DoorFreeBytes free")
	require.True(t, b.tryTake(1))
	require.True(t, b.doorClosed(), "one byte less")
	b.release(1)
	require.False(t, b.doorClosed())

	require.False(t, b.tryTake(DoorFreeBytes+1), "refused for lack of room")
	require.True(t, b.doorClosed(), "closed after a refusal, with DoorFreeBytes free")
	require.True(t, b.tryTake(10), "the codec still takes what fits")
	require.True(t, b.doorClosed(), "a take does not reopen it")
	b.release(10)
	require.False(t, b.doorClosed(), "a release reopens it")
}
