package store_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/store"
)

// FuzzReplicas: a leader builds a log of every kind of command — appends
// with and without dedupe keys and expectations, cursors, topic configs,
// trims and deletes planned on its own state — applying each entry as it
// goes; replicas apply the same log: one in a single group, one two
// entries at a time with a restart in between, one after restoring a
// snapshot of the log's first half. All three must give the
// same results and end byte for byte the same, and goethe check must find
// each folder clean. It is the determinism replication rests on, over the
// commands this build added to the apply step.
func FuzzReplicas(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x06, 0x17})
	f.Add([]byte{0x40, 0x41, 0x42, 0x04, 0x40, 0x41, 0x05, 0x40, 0x43, 0x80})
	f.Add([]byte{0x30, 0x30, 0x30, 0xF0, 0x30, 0x22, 0x14, 0x30, 0x35})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64 {
			data = data[:64]
		}
		leader, le := openEngine(t, "leveldb", t.TempDir(), replicaOpts)
		log, results := leaderLog(t, leader, data)
		if len(log) == 0 {
			return
		}
		defer func() {
			if t.Failed() {
				for i, e := range log {
					t.Logf("entry %d at %d: %+v → %+v", i, e.Time, e.Commands, results[i])
				}
			}
		}()

		opts := replicaOpts
		one, oe := openEngine(t, "leveldb", t.TempDir(), opts)
		res, err := one.ApplyCommitted(log)
		require.NoError(t, err)
		requireSameResults(t, results, res)

		dir := t.TempDir()
		two, _ := openEngine(t, "leveldb", dir, opts)
		var res2 [][]store.Result
		for i := 0; i < len(log); i += 2 {
			if i == len(log)/2&^1 {
				require.NoError(t, two.Close())
				two, _ = openEngine(t, "leveldb", dir, opts)
			}
			r, err := two.ApplyCommitted(log[i:min(i+2, len(log))])
			require.NoError(t, err)
			res2 = append(res2, r...)
		}
		requireSameResults(t, results, res2)
		require.NoError(t, two.Close())
		_, te := openEngine(t, "leveldb", dir, opts)

		// A replica that catches up from a snapshot taken halfway, as a
		// lagging Raft follower does, then applies the whole log (what the
		// snapshot holds is skipped).
		src, _ := openEngine(t, "leveldb", t.TempDir(), opts)
		_, err = src.ApplyCommitted(log[:len(log)/2])
		require.NoError(t, err)
		snap := snapshotBytes(t, src)
		three, he := openEngine(t, "leveldb", t.TempDir(), opts)
		require.NoError(t, three.Restore(bytes.NewReader(snap)))
		_, err = three.ApplyCommitted(log)
		require.NoError(t, err)

		// Deleted topics' events are reclaimed in the background, by
		// each replica on its own: compare once every one is done.
		for _, e := range []engine.Engine{le, oe, te, he} {
			require.Eventually(t, func() bool {
				kvs, err := e.Scan([]byte{0xF7}, []byte{0xF8}, 1, 0)
				return err == nil && len(kvs) == 0
			}, 10*time.Second, time.Millisecond)
		}
		want := dump(t, le)
		require.Equal(t, want, dump(t, oe), "the log applied in one group")
		require.Equal(t, want, dump(t, te), "the log applied two entries at a time, with a restart")
		require.Equal(t, want, dump(t, he), "the log applied after a snapshot of its first half")
		for _, e := range []engine.Engine{le, oe, te, he} {
			r, err := store.Check(e, store.CheckOptions{})
			require.NoError(t, err)
			require.True(t, r.Clean(), "goethe check: %+v", r.Problems)
		}
	})
}

// replicaOpts are FuzzReplicas' stores': a dedupe window of a minute and a
// limit of 4 keys per topic, so that expiry and the limit are both met,
// and the background reclaim of deleted topics every 10 ms.
var replicaOpts = store.Options{DedupeWindow: time.Minute, RetentionByLog: true, MaxDedupeKeys: 4, RetentionInterval: 10 * time.Millisecond}

// leaderLog builds FuzzReplicas' log from data on leader, applying each
// entry as it goes, and returns it with the leader's results.
func leaderLog(t *testing.T, leader *store.Store, data []byte) (log []store.CommittedEntry, results [][]store.Result) {
	t.Helper()
	topics := []string{"a", "b", "c"}
	now := int64(1_700_000_000_000_000_000)
	for i, b := range data {
		topic := topics[int(b>>4)%len(topics)]
		// Time moves by a little, or past the dedupe window.
		if b&0x80 != 0 {
			now += int64(2 * time.Minute)
		} else {
			now += int64(b&0x0F) * int64(time.Millisecond)
		}
		var cmds []store.Command
		switch b % 7 {
		case 0, 1:
			n := int(b%3) + 1
			evs := make([]store.Event, n)
			for j := range evs {
				evs[j].Payload = fmt.Appendf(nil, "%d-%d", i, j)
				if b&0x40 != 0 {
					evs[j].DedupeKey = fmt.Sprintf("k%d", (int(b)+j)%5)
				}
			}
			c := store.Command{Kind: store.CommandAppend, Topic: topic, Events: evs}
			if b%7 == 1 {
				if info, err := leader.Info(topic); err == nil {
					c.Expect = store.ExpectLastSeq(info.LastSeq - uint64(b>>6&1))
				}
			}
			cmds = append(cmds, c)
		case 2:
			cmds = append(cmds, store.Command{Kind: store.CommandSetCursor, Topic: topic, Consumer: "c", CursorID: uint64(now)})
		case 3:
			cfg := store.TopicConfig{MaxEvents: uint64(b % 5), DedupeWindow: time.Duration(b%3) * 30 * time.Second,
				Set: store.FieldMaxEvents | store.FieldDedupeWindow}
			cmds = append(cmds, store.Command{Kind: store.CommandSetConfig, Topic: topic, Config: cfg})
		case 4, 5:
			info, err := leader.Info(topic)
			if err != nil {
				continue
			}
			steps, err := leader.PlanTrim(topic, store.TrimPoint{Seq: info.FirstSeq + uint64(b%4)})
			require.NoError(t, err)
			cmds = append(cmds, steps...)
		case 6:
			c, err := leader.PlanDelete(topic)
			if err != nil {
				continue
			}
			cmds = append(cmds, c)
		}
		if len(cmds) == 0 {
			continue
		}
		e := store.CommittedEntry{Index: uint64(len(log) + 1), Time: now, Commands: cmds}
		res, err := leader.ApplyCommitted([]store.CommittedEntry{e})
		require.NoError(t, err)
		log = append(log, e)
		results = append(results, res...)
	}
	return log, results
}

// requireSameResults compares per-command results, errors by their text.
func requireSameResults(t *testing.T, want, got [][]store.Result) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Len(t, got[i], len(want[i]), "entry %d", i)
		for j := range want[i] {
			w, g := want[i][j], got[i][j]
			require.Equal(t, fmt.Sprint(w.Err), fmt.Sprint(g.Err), "entry %d command %d", i, j)
			w.Err, g.Err = nil, nil
			w.Append.Duplicates, g.Append.Duplicates = slices.Clip(w.Append.Duplicates), slices.Clip(g.Append.Duplicates)
			require.Equal(t, w, g, "entry %d command %d", i, j)
		}
	}
}
