package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
)

// FuzzParsePosition: parsePosition, which reads --from, --until and cursor
// set's POS, never panics on any string, and what it accepts keeps its
// meaning:
//   - "beginning" is exactly that word, "end" and "now" exactly those;
//     start() is client.Beginning() and client.End(), cursorID(last) is 0
//     and last.
//   - "seq:N" is exactly a decimal uint64 after "seq:"; start() is
//     client.AtSeq(N).
//   - an id is a decimal uint64 after "id:", or a bare one of at least
//     minBareIDDigits significant digits; a shorter bare number is refused
//     as ambiguous, and the message says to type seq:N or id:N. Its
//     canonical form parses back to the same id; start() is
//     client.AfterID(id), cursorID is id. For an id in the int64 range, the
//     time goethectl prints for it (formatTime) parses back, as the doc of
//     timeLayout promises, to that instant, whose cursor resumes after the
//     event before it: cursorID is id-1.
//   - a time is RFC 3339, or a time ago (a duration or whole days, with or
//     without "-"), which is that long before now; printed again (RFC 3339
//     with its own offset, or formatTime in UTC when its year has four
//     digits) it parses back to the same instant; start() is client.AtTime
//     of it; and its cursorID c resumes at the first event at or after it:
//     the id after c stands for a time at or after it, and c itself (when
//     not 0) for a time before it, also for times no int64 of nanoseconds
//     holds.
//   - anything else is an error that names the string.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{
		"beginning", "end", "now", "Beginning", " end", "", "0", "007", "1", "-1", "+1", "0x10",
		"seq:3", "seq:0", "seq:", "seq:-1", "seq:18446744073709551615", "seq:18446744073709551616", "SEQ:3", "seq: 3",
		"id:3", "id:0", "id:", "id:007", "id:18446744073709551615", "1000000000000000", "999999999999999", "0001000000000000000",
		"-5m", "5m", "+5m", "1h30m", "-2d", "2d", "0s", "-0", "1.5h", "-106751d", "106752d", "9223372036854775807ns", "-9999999999h", "5x", "d", "-d",
		"1_000", "18446744073709551615", "18446744073709551616", "1700000000000000000",
		"9223372036854775807", "9223372036854775808",
		"2026-01-02T15:04:05Z", "2026-01-02T15:04:05.123456789+02:00", "2026-01-02T15:04:05.000000001Z",
		"1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000001Z", "1969-12-31T23:59:59.999999999Z",
		"0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59.999999999-23:59",
		"2262-04-11T23:47:16.854775807Z", "1677-09-21T00:12:43.145224192Z",
		"2026-01-02 15:04:05Z", "2026-01-02T15:04:05", "2026-02-30T00:00:00Z",
		"1600-01-01T00:00:00Z", "2300-01-01T00:00:00Z", "2600-01-01T00:00:00Z",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePositionAt(s, now)
		if err != nil {
			require.Contains(t, err.Error(), strconv.Quote(s))
			if n, errID := strconv.ParseUint(s, 10, 64); errID == nil {
				require.Contains(t, err.Error(), fmt.Sprintf("type seq:%d for the event with seq %d, or id:%d", n, n, n), "a bare small number says what to type")
				require.Less(t, len(strings.TrimLeft(s, "0")), minBareIDDigits)
			}
			require.NotContains(t, []string{"beginning", "end", "now"}, s)
			return
		}
		const last = uint64(1_700_000_000_000_000_000)
		switch p.kind {
		case posBeginning:
			require.Equal(t, "beginning", s)
			require.Equal(t, client.Beginning(), p.start())
			require.Zero(t, p.cursorID(last))
		case posEnd:
			require.Contains(t, []string{"end", "now"}, s)
			require.Equal(t, client.End(), p.start())
			require.Equal(t, last, p.cursorID(last))
		case posSeq:
			rest, ok := strings.CutPrefix(s, "seq:")
			require.True(t, ok, "a seq is written seq:N")
			n, err := strconv.ParseUint(rest, 10, 64)
			require.NoError(t, err)
			require.Equal(t, n, p.seq)
			require.Equal(t, client.AtSeq(n), p.start())
		case posID:
			digits, prefixed := strings.CutPrefix(s, "id:")
			canonical := strings.TrimLeft(digits, "0")
			if !prefixed {
				require.GreaterOrEqual(t, len(canonical), minBareIDDigits, "a bare id is long")
			}
			if canonical == "" {
				canonical = "0"
			}
			require.Equal(t, strconv.FormatUint(p.id, 10), canonical)
			q, err := parsePositionAt("id:"+canonical, now)
			require.NoError(t, err)
			require.Equal(t, p, q)
			require.Equal(t, client.AfterID(p.id), p.start())
			require.Equal(t, p.id, p.cursorID(last))
			if p.id <= math.MaxInt64 {
				printed := formatTime(idTime(p.id))
				q, err := parsePositionAt(printed, now)
				require.NoError(t, err, "goethectl's own time %q", printed)
				require.Equal(t, posTime, q.kind)
				require.True(t, q.time.Equal(idTime(p.id)), "%q is %v, want %v", printed, q.time, idTime(p.id))
				require.Equal(t, max(p.id, 1)-1, q.cursorID(last))
			}
		case posTime:
			if d, ok := parseAgo(s); ok {
				require.True(t, p.time.Equal(now.Add(-d)), "%q is %v ago", s, d)
				require.False(t, p.time.After(now), "a time ago is not in the future")
			}
			requireSameTime(t, p.time, p.time.Format(time.RFC3339Nano))
			if y := p.time.UTC().Year(); y >= 0 && y <= 9999 {
				requireSameTime(t, p.time, formatTime(p.time))
			}
			require.Equal(t, client.AtTime(p.time), p.start())
			c := p.cursorID(last)
			require.Equal(t, c, p.cursorID(0), "a time's cursor does not depend on the topic's end")
			if c < math.MaxInt64 {
				require.False(t, idTime(c+1).Before(p.time), "cursor %d for %v: event %d, at %v, would be skipped", c, p.time, c+1, idTime(c+1))
			}
			if c > 0 {
				require.True(t, idTime(min(c, math.MaxInt64)).Before(p.time), "cursor %d for %v: event %d, at %v, would be read", c, p.time, c, idTime(c))
			}
		default:
			t.Fatalf("kind %d", p.kind)
		}
	})
}

func requireSameTime(t *testing.T, want time.Time, printed string) {
	t.Helper()
	q, err := parsePosition(printed)
	require.NoError(t, err, "%v printed as %q", want, printed)
	require.Equal(t, posTime, q.kind, "%q", printed)
	require.True(t, q.time.Equal(want), "%q is %v, want %v", printed, q.time, want)
}
