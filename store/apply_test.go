package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
)

// model is the committed state apply reads, kept the way the store keeps
// it: topics by name and the next topic id.
type model struct {
	topics map[string]*topic
	next   uint64
}

func newModel() *model { return &model{topics: map[string]*topic{}, next: 1} }

// commit makes a's state current, as the store does once a's batch is
// written.
func (m *model) commit(a *applied) {
	for _, c := range a.changes {
		if !c.dirty {
			continue
		}
		if c.t != nil {
			c.t.meta = c.meta
			commitDedupe(c.t, c)
		} else {
			t := newTopic(c.meta)
			commitDedupe(t, c)
			m.topics[c.meta.name] = t
		}
	}
	m.next = a.nextTopicID
}

func appendCmd(topic string, n int) command {
	evs := make([]Event, n)
	for i := range evs {
		evs[i].Payload = fmt.Appendf(nil, "%s-%d", topic, i)
	}
	return command{kind: cmdAppend, topic: topic, events: evs}
}

func expectCmd(topic string, n int, last uint64) command {
	c := appendCmd(topic, n)
	c.expect = ExpectLastSeq(last)
	return c
}

func cursorCmd(topic, consumer string, id uint64) command {
	return command{kind: cmdSetCursor, topic: topic, consumer: consumer, cursorID: id}
}

func TestApply(t *testing.T) {
	type want struct {
		res AppendResult
		err error
	}
	const now = 1_000
	tests := []struct {
		name    string
		before  [][]command // groups committed first, at now-100, now-99, …
		cmds    []command
		want    []want
		topics  map[string]uint64 // topic → id after the group
		lastSeq map[string]uint64
		ops     int // operations in the batch
	}{
		{
			name:    "a new topic takes the next id and seqs from 1",
			cmds:    []command{appendCmd("a", 3)},
			want:    []want{{res: AppendResult{FirstID: now, FirstSeq: 1, Count: 3}}},
			topics:  map[string]uint64{"a": 1},
			lastSeq: map[string]uint64{"a": 3},
			ops:     3 + 1 + 1 + 1, // events, catalog, meta, counter
		},
		{
			name:   "two appends to one topic in one group get consecutive ids and seqs",
			before: [][]command{{appendCmd("a", 1)}},
			cmds:   []command{appendCmd("a", 2), appendCmd("a", 1)},
			want: []want{
				{res: AppendResult{FirstID: now, FirstSeq: 2, Count: 2}},
				{res: AppendResult{FirstID: now + 2, FirstSeq: 4, Count: 1}},
			},
			lastSeq: map[string]uint64{"a": 4},
			ops:     3 + 1, // events, meta
		},
		{
			name:   "ids never go back when the clock does",
			before: [][]command{{appendCmd("a", 1)}, {appendCmd("a", 1)}},
			cmds:   []command{appendCmd("a", 1)},
			want:   []want{{res: AppendResult{FirstID: now, FirstSeq: 3, Count: 1}}},
		},
		{
			name:   "a failed expectation fails alone and later commands see the topic unchanged",
			before: [][]command{{appendCmd("a", 2)}},
			cmds:   []command{expectCmd("a", 1, 1), expectCmd("a", 1, 2), expectCmd("a", 1, 2)},
			want: []want{
				{err: &ConflictError{Topic: "a", Expected: 1, Actual: 2}},
				{res: AppendResult{FirstID: now, FirstSeq: 3, Count: 1}},
				{err: &ConflictError{Topic: "a", Expected: 2, Actual: 3}},
			},
			lastSeq: map[string]uint64{"a": 3},
			ops:     1 + 1,
		},
		{
			name:   "a topic named only by failed appends is not created and takes no id",
			cmds:   []command{expectCmd("x", 1, 5), appendCmd("y", 1)},
			want:   []want{{err: &ConflictError{Topic: "x", Expected: 5}}, {res: AppendResult{FirstID: now, FirstSeq: 1, Count: 1}}},
			topics: map[string]uint64{"y": 1},
			ops:    1 + 1 + 1 + 1,
		},
		{
			name: "a cursor needs its topic, which an earlier append of the group may create",
			cmds: []command{cursorCmd("a", "c", 7), appendCmd("a", 1), cursorCmd("a", "c", 9)},
			want: []want{
				{err: ErrNotFound},
				{res: AppendResult{FirstID: now, FirstSeq: 1, Count: 1}},
				{},
			},
			ops: 1 + 1 + 1 + 1 + 1, // event, cursor, catalog, meta, counter
		},
		{
			name:   "a cursor on a topic only failed appends named is not found",
			cmds:   []command{expectCmd("a", 1, 3), cursorCmd("a", "c", 1)},
			want:   []want{{err: &ConflictError{Topic: "a", Expected: 3}}, {err: ErrNotFound}},
			topics: map[string]uint64{},
			ops:    0,
		},
		{
			name:   "new topics are numbered in the order their first append succeeds",
			before: [][]command{{appendCmd("old", 1)}},
			cmds:   []command{expectCmd("b", 1, 9), appendCmd("c", 1), appendCmd("b", 1)},
			want: []want{
				{err: &ConflictError{Topic: "b", Expected: 9}},
				{res: AppendResult{FirstID: now, FirstSeq: 1, Count: 1}},
				{res: AppendResult{FirstID: now, FirstSeq: 1, Count: 1}},
			},
			topics: map[string]uint64{"old": 1, "c": 2, "b": 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			var a applied
			clock := int64(now - 100)
			if len(tt.before) > 1 {
				clock = now + 100 // later than now: ids must keep increasing
			}
			for _, g := range tt.before {
				apply(m.topics, m.next, g, clock, &a)
				m.commit(&a)
				clock++
			}
			apply(m.topics, m.next, tt.cmds, now, &a)
			require.Len(t, a.outcomes, len(tt.cmds))
			for i, w := range tt.want {
				o := a.outcomes[i]
				if w.err == nil {
					require.NoError(t, o.err, "command %d", i)
					if len(tt.before) > 1 {
						require.Greater(t, o.res.FirstID, uint64(now+100), "command %d", i)
						continue
					}
					require.Equal(t, w.res, o.res, "command %d", i)
					continue
				}
				if ce := (*ConflictError)(nil); errors.As(w.err, &ce) {
					require.Equal(t, w.err, o.err, "command %d", i)
				} else {
					require.ErrorIs(t, o.err, w.err, "command %d", i)
				}
			}
			if tt.ops > 0 || tt.topics != nil && len(tt.topics) == 0 {
				require.Equal(t, tt.ops, a.batch.Len())
			}
			m.commit(&a)
			if tt.topics != nil {
				got := map[string]uint64{}
				for name, tp := range m.topics {
					got[name] = tp.meta.id
				}
				require.Equal(t, tt.topics, got)
			}
			for name, seq := range tt.lastSeq {
				require.Equal(t, seq, m.topics[name].meta.lastSeq, name)
			}
		})
	}
}

// TestApplyReadsNoState checks that apply changes nothing it is given: a
// group whose batch is not written leaves the committed state as it was.
func TestApplyReadsNoState(t *testing.T) {
	m := newModel()
	var a applied
	apply(m.topics, m.next, []command{appendCmd("a", 2)}, 10, &a)
	m.commit(&a)
	before := m.topics["a"].meta
	apply(m.topics, m.next, []command{appendCmd("a", 5), appendCmd("b", 1)}, 20, &a)
	require.Equal(t, before, m.topics["a"].meta)
	require.NotContains(t, m.topics, "b")
	require.Equal(t, uint64(2), m.next)
}

// FuzzApply checks apply's invariants on command sequences decoded from
// the fuzzer's bytes, applied as several groups at non-monotonic times:
// ids strictly increase within a topic, seqs are dense, each command is all
// or nothing, failed commands write nothing, and the same input gives the
// same batch byte for byte. The seed corpus (the f.Add inputs and the
// largest inputs a fuzzing run found, in testdata/fuzz/FuzzApply) runs with
// every go test; fuzz further with go test -fuzz FuzzApply ./store.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0x10, 0x21, 0x32, 0x43, 0x80, 0x90, 0xa1, 0xff, 0x00, 0x11})
	f.Add(bytes.Repeat([]byte{0x05, 0x81, 0x40}, 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newModel()
		var a, again applied
		clock := int64(1_000_000)
		type seen struct{ lastID, lastSeq uint64 }
		state := map[string]*seen{}
		for len(data) > 0 {
			// One group: a time step byte, then up to 8 commands of 2
			// bytes each.
			step := int64(int8(data[0])) * 3 // may go backwards
			data = data[1:]
			clock += step
			var cmds []command
			for i := 0; i < 8 && len(data) >= 2; i++ {
				b0, b1 := data[0], data[1]
				data = data[2:]
				topic := string(rune('a' + b0%4))
				switch {
				case b0&0x80 != 0:
					cmds = append(cmds, cursorCmd(topic, "c", uint64(b1)))
				case b0&0x40 != 0:
					cmds = append(cmds, expectCmd(topic, int(b1%3)+1, uint64(b1>>2)%4))
				default:
					cmds = append(cmds, appendCmd(topic, int(b1%5)+1))
				}
			}
			apply(m.topics, m.next, cmds, clock, &a)
			apply(m.topics, m.next, cmds, clock, &again)
			requireSameBatch(t, &a.batch, &again.batch)

			// Each command's events are in the batch, as its outcome says.
			events := eventsByTopic(t, m, &a)
			for i, cmd := range cmds {
				o := a.outcomes[i]
				if cmd.kind != cmdAppend || o.err != nil {
					continue
				}
				require.Equal(t, len(cmd.events), o.res.Count)
				s := state[cmd.topic]
				if s == nil {
					s = &seen{}
					state[cmd.topic] = s
				}
				require.Greater(t, o.res.FirstID, s.lastID, "ids increase")
				require.Equal(t, s.lastSeq+1, o.res.FirstSeq, "seqs are dense")
				for j := range cmd.events {
					e := events[cmd.topic][0]
					events[cmd.topic] = events[cmd.topic][1:]
					require.Equal(t, o.res.FirstID+uint64(j), e.ID)
					require.Equal(t, o.res.FirstSeq+uint64(j), e.Seq)
					require.Equal(t, cmd.events[j].Payload, e.Payload)
				}
				s.lastID, s.lastSeq = o.res.FirstID+uint64(o.res.Count)-1, o.res.FirstSeq+uint64(o.res.Count)-1
			}
			for topic, rest := range events {
				require.Empty(t, rest, "topic %s: events no successful command wrote", topic)
			}
			m.commit(&a)
		}
	})
}

func requireSameBatch(t *testing.T, x, y *engine.Batch) {
	t.Helper()
	xo, yo := x.Ops(), y.Ops()
	require.Equal(t, len(xo), len(yo))
	for i := range xo {
		require.Equal(t, xo[i].Kind, yo[i].Kind)
		require.True(t, bytes.Equal(xo[i].Key, yo[i].Key), "op %d key", i)
		require.True(t, bytes.Equal(xo[i].Value, yo[i].Value), "op %d value", i)
	}
}

// eventsByTopic decodes the batch's event puts, per topic name, in batch
// order.
func eventsByTopic(t *testing.T, m *model, a *applied) map[string][]Event {
	names := map[uint64]string{}
	for name, tp := range m.topics {
		names[tp.meta.id] = name
	}
	for _, c := range a.changes {
		if c.dirty {
			names[c.meta.id] = c.meta.name
		}
	}
	out := map[string][]Event{}
	for _, op := range a.batch.Ops() {
		if op.Kind != engine.OpPut || len(op.Key) != eventKeyLen || op.Key[0] >= prefixSystem {
			continue
		}
		var e Event
		require.NoError(t, decodeEvent(op.Key, op.Value, false, &e))
		name, ok := names[binary.BigEndian.Uint64(op.Key)]
		require.True(t, ok, "event of an unknown topic id")
		out[name] = append(out[name], e)
	}
	return out
}
