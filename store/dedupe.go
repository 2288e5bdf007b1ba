package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"
	"unicode/utf8"
)

// Idempotent appends. An event may carry a dedupe key (Event.DedupeKey).
// Within a topic's dedupe window (Options.DedupeWindow), an event whose key
// the topic stored within the window is not stored again: the append
// reports it in AppendResult.Duplicates with the id and seq of the event
// stored under that key. A key repeated inside one append is stored once.
//
// Everything is decided by the pure apply step, from the in-memory state of
// the topic and the timestamp apply is given, so that replicas decide
// alike. An event counts as within the window while its id (its commit
// time in ns) is at least the append's timestamp minus the window.
//
// Durability: every stored key gets a record {0xF8} topic id, event id →
// seq, key, written in the same engine batch as its event, so the window
// survives a restart: Open loads each topic's records (all of them: the
// keys the topic remembered, at most MaxDedupeKeys).
// Expired records are removed by the appends to their topic, with one range
// delete of at most DedupeExpireStep records per topic and commit, so no
// batch grows with the number of expired keys.
//
// Memory: a topic remembers at most Options.MaxDedupeKeys keys
// (DefaultMaxDedupeKeys). Past that, its oldest keys are forgotten before
// their window ends (Stats.DedupeForgotten counts them): a retry of an
// event whose key was forgotten is stored again. A topic that receives no
// appends keeps its last keys in memory and on disk until its next append
// (or, in memory, until the store is reopened past its window).

// Limits and defaults of dedupe, as documented constants.
const (
	// MaxDedupeKeyLen bounds an event's dedupe key, in bytes of UTF-8.
	MaxDedupeKeyLen = 255
	// DefaultDedupeWindow is how long a key is remembered when
	// Options.DedupeWindow is 0: two minutes, as NATS JetStream's
	// duplicate window.
	DefaultDedupeWindow = 2 * time.Minute
	// DefaultMaxDedupeKeys bounds the keys one topic remembers when
	// Options.MaxDedupeKeys is 0: about 100 bytes of memory each plus the
	// key, so some 14 MiB for a topic full of 36-byte keys.
	DefaultMaxDedupeKeys = 100_000
	// DedupeExpireStep bounds the expired records one commit removes
	// from one topic (in one range delete), so that expiry never makes
	// an unbounded batch; an append to the topic removes the next step.
	DedupeExpireStep = 4096
)

// Duplicate is one event of an Append that was not stored because its
// dedupe key was stored within the window: Index is its position in the
// Append (from 0), ID and Seq are those of the event stored under the key.
type Duplicate struct {
	Index int
	ID    uint64
	Seq   uint64
}

// ValidateDedupeKey reports whether key is a valid dedupe key: at most
// MaxDedupeKeyLen bytes of valid UTF-8 (the empty key means none). The
// error wraps ErrInvalid.
func ValidateDedupeKey(key string) error {
	switch {
	case len(key) > MaxDedupeKeyLen:
		return fmt.Errorf("%w: dedupe key is %d bytes, the limit is %d", ErrInvalid, len(key), MaxDedupeKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: dedupe key is not valid UTF-8", ErrInvalid)
	}
	return nil
}

func validateDedupeKeys(events []Event) error {
	for i := range events {
		if k := events[i].DedupeKey; k != "" {
			if err := ValidateDedupeKey(k); err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
		}
	}
	return nil
}

// dedupeRec is one remembered key: the event stored under it.
type dedupeRec struct {
	id, seq uint64
	key     string
}

// dedupeState is a topic's remembered keys, owned by the committer: recs
// in id order from head (oldest first), byKey the newest record of each
// key. A key stored again after its window has two records; dropping the
// older one leaves byKey alone.
type dedupeState struct {
	recs  []dedupeRec
	head  int
	byKey map[string]dedupeRec
}

func (d *dedupeState) live() []dedupeRec {
	if d == nil {
		return nil
	}
	return d.recs[d.head:]
}

func (d *dedupeState) push(r dedupeRec) {
	if d.byKey == nil {
		d.byKey = make(map[string]dedupeRec)
	}
	d.recs = append(d.recs, r)
	d.byKey[r.key] = r
}

func (d *dedupeState) pop() {
	r := d.recs[d.head]
	if cur, ok := d.byKey[r.key]; ok && cur.id == r.id {
		delete(d.byKey, r.key)
	}
	d.recs[d.head] = dedupeRec{}
	d.head++
	if d.head > 1024 && d.head > len(d.recs)/2 {
		n := copy(d.recs, d.recs[d.head:])
		clear(d.recs[n:])
		d.recs, d.head = d.recs[:n], 0
	}
}

// dedupeChange is what a group does to a topic's remembered keys: drop the
// drop oldest committed records, then add add[addDrop:] (the first addDrop
// of add were forgotten at once, past the limit).
type dedupeChange struct {
	drop    int
	dropEnd uint64 // the id after the last committed record dropped
	add     []dedupeRec
	addDrop int
	byKey   map[string]int // key → index in add
}

// dedupeWindow is the dedupe window of the topic c, in ns; 0 means off.
// The one place that decides it (a per-topic setting goes here).
func (a *applied) dedupeWindow(c *change, cmd *command) int64 {
	switch {
	case c.meta.cfg.Set&FieldDedupeWindow != 0:
		// The topic's own, set through the log: the same everywhere.
		return int64(c.meta.cfg.DedupeWindow)
	case cmd.window < 0:
		return 0
	case cmd.window > 0:
		return cmd.window
	}
	return a.window
}

// dedupeLookup returns the record under key that is within the window at
// cutoff, as of the group so far.
func (a *applied) dedupeLookup(c *change, key string, cutoff int64) (dedupeRec, bool) {
	dc := &c.dd
	if i, ok := dc.byKey[key]; ok && i >= dc.addDrop && int64(dc.add[i].id) >= cutoff {
		return dc.add[i], true
	}
	if c.t == nil {
		return dedupeRec{}, false
	}
	r, ok := c.t.dd.byKey[key]
	if !ok || int64(r.id) < cutoff {
		return dedupeRec{}, false
	}
	if live := c.t.dd.live(); dc.drop > 0 && (dc.drop >= len(live) || r.id < live[dc.drop].id) {
		return dedupeRec{}, false // dropped by this group
	}
	return r, true
}

// dedupeExpire drops, in c, at most DedupeExpireStep records older than
// cutoff: committed ones, then those of earlier commands of the group (so
// that a log applied in one group or in several ends with the same
// records).
func (a *applied) dedupeExpire(c *change, cutoff int64) {
	var live []dedupeRec
	if c.t != nil {
		live = c.t.dd.live()
	}
	dc := &c.dd
	for n := 0; n < DedupeExpireStep; n++ {
		switch {
		case dc.drop < len(live) && int64(live[dc.drop].id) < cutoff:
			dc.dropEnd = live[dc.drop].id + 1
			dc.drop++
		case dc.drop == len(live) && dc.addDrop < len(dc.add) && int64(dc.add[dc.addDrop].id) < cutoff:
			dc.addDrop++
		default:
			return
		}
	}
}

// dedupeRemember adds r to c, forgetting the oldest records past the limit.
func (a *applied) dedupeRemember(c *change, r dedupeRec) {
	dc := &c.dd
	if dc.byKey == nil {
		dc.byKey = make(map[string]int)
	}
	dc.byKey[r.key] = len(dc.add)
	dc.add = append(dc.add, r)
	var live []dedupeRec
	if c.t != nil {
		live = c.t.dd.live()
	}
	for len(live)-dc.drop+len(dc.add)-dc.addDrop > a.maxKeys {
		if dc.drop < len(live) {
			dc.dropEnd = live[dc.drop].id + 1
			dc.drop++
		} else {
			dc.addDrop++
		}
		a.forgotten++
	}
}

// dedupeWrite adds c's dedupe records to the batch: one range delete for
// the records it drops, then the records it adds.
func (a *applied) dedupeWrite(c *change) {
	dc := &c.dd
	if dc.drop > 0 {
		live := c.t.dd.live()
		// From the first record dropped, which is the oldest on disk
		// (Open loads them all): an engine that expands a range delete by
		// a scan (goleveldb) never walks over earlier tombstones again.
		start, end := live[0].id, dc.dropEnd
		if dc.drop < len(live) {
			end = live[dc.drop].id
		}
		a.batch.DeleteRange(dedupeKey(a.alloc(17), c.meta.id, start), dedupeKey(a.alloc(17), c.meta.id, end))
	}
	for _, r := range dc.add[dc.addDrop:] {
		k := dedupeKey(a.alloc(17), c.meta.id, r.id)
		a.batch.Put(k, encodeDedupe(a.alloc(1+binary.MaxVarintLen64+len(r.key)), r.seq, r.key))
	}
}

// commitDedupe makes c's dedupe change current in t, once c's batch is
// written.
func commitDedupe(t *topic, c *change) {
	for range c.dd.drop {
		t.dd.pop()
	}
	for _, r := range c.dd.add[c.dd.addDrop:] {
		t.dd.push(r)
	}
}

// appendDeduped is appendEvents for an append that carries dedupe keys,
// with the topic's window on: it classifies the events, checks expect
// against the part to be stored (not at all when every event is a
// duplicate), and stores the rest.
func (a *applied) appendDeduped(c *change, cmd *command, now, window int64) (AppendResult, error) {
	events := cmd.events
	cutoff := now - window
	if now < math.MinInt64+window {
		cutoff = math.MinInt64
	}
	id0 := uint64(now)
	if id0 <= c.meta.lastID {
		id0 = c.meta.lastID + 1
	}
	var res AppendResult
	local := a.localKeys
	clear(local)
	stored := 0
	for i := range events {
		k := events[i].DedupeKey
		if k == "" {
			stored++
			continue
		}
		if r, ok := a.dedupeLookup(c, k, cutoff); ok {
			res.Duplicates = append(res.Duplicates, Duplicate{Index: i, ID: r.id, Seq: r.seq})
			continue
		}
		if j, ok := local[k]; ok {
			res.Duplicates = append(res.Duplicates, Duplicate{Index: i, ID: id0 + uint64(j), Seq: c.meta.lastSeq + 1 + uint64(j)})
			continue
		}
		local[k] = stored
		stored++
	}
	if stored == 0 {
		return res, nil // a retry of an append that was stored: no expectation
	}
	if cmd.expect.set && cmd.expect.lastSeq != c.meta.lastSeq {
		return AppendResult{}, &ConflictError{Topic: cmd.topic, Expected: cmd.expect.lastSeq, Actual: c.meta.lastSeq}
	}
	if err := a.create(c); err != nil {
		return AppendResult{}, err
	}
	a.dedupeExpire(c, cutoff)
	res.FirstID, res.FirstSeq, res.Count = id0, c.meta.lastSeq+1, stored
	d := 0
	for i := range events {
		if d < len(res.Duplicates) && res.Duplicates[d].Index == i {
			d++
			continue
		}
		e := &events[i]
		id, seq := a.putEvent(c, e, now)
		if e.DedupeKey != "" {
			a.dedupeRemember(c, dedupeRec{id: id, seq: seq, key: e.DedupeKey})
		}
	}
	c.dirty = true
	return res, nil
}

// dedupeKey is the key of the dedupe record of event id of topic tid.
// dedupeTopicEnd is the exclusive upper bound of topic tid's dedupe
// records.
func dedupeTopicEnd(tid uint64) []byte {
	if tid >= MaxTopicID {
		return []byte{prefixDedupe + 1}
	}
	return dedupeKey(nil, tid+1, 0)
}

func dedupeKey(dst []byte, tid, id uint64) []byte {
	dst = append(dst, prefixDedupe)
	dst = binary.BigEndian.AppendUint64(dst, tid)
	return binary.BigEndian.AppendUint64(dst, id)
}

func encodeDedupe(dst []byte, seq uint64, key string) []byte {
	dst = append(dst, valueVersion)
	dst = binary.AppendUvarint(dst, seq)
	return append(dst, key...)
}

func decodeDedupe(k, v []byte) (tid uint64, r dedupeRec, err error) {
	if len(k) != 17 || k[0] != prefixDedupe || len(v) < 1 || v[0] != valueVersion {
		return 0, r, fmt.Errorf("%w: dedupe record %x", ErrCorrupted, k)
	}
	seq, rest, ok := uvarint(v[1:])
	if !ok || len(rest) == 0 {
		return 0, r, fmt.Errorf("%w: dedupe record %x", ErrCorrupted, k)
	}
	return beUint64(k[1:]), dedupeRec{id: beUint64(k[9:]), seq: seq, key: string(rest)}, nil
}

// appendEventValueKey is appendEventValue for an event with a dedupe key:
// version eventVersionKey, CRC-32C (of the key, the version byte and the
// rest), seq, the dedupe key, headers, payload.
func appendEventValueKey(dst, key []byte, seq uint64, dedupe string, headers map[string]string, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, eventVersionKey, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, seq)
	dst = appendString(dst, dedupe)
	dst = appendEventRest(dst, headers, payload)
	sum := eventChecksumKeyed(key, dst[start+eventHeaderLen:])
	binary.LittleEndian.PutUint32(dst[start+1:], sum)
	return dst
}

// eventChecksumKeyed is the checksum of an eventVersionKey value: it covers
// the version byte too, so that a damaged version byte cannot make the
// value read as one of eventVersion with the same checksum.
func eventChecksumKeyed(key, rest []byte) uint32 {
	sum := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, []byte{eventVersionKey})
	return crc32.Update(sum, castagnoli, rest)
}

// DedupeWindow is the dedupe window of topics without one of their own
// (Options.DedupeWindow); 0 when dedupe is off. A cluster's leader puts it
// in the appends it proposes (Command.DedupeWindow).
func (s *Store) DedupeWindow() time.Duration { return time.Duration(s.c.applied.window) }

// loadDedupe reads t's dedupe records into memory, the newest
// MaxDedupeKeys of them. Called at Open and
// wherever a topic's state is re-read from the engine.
func (s *Store) loadDedupe(t *topic) error {
	t.dd = dedupeState{}
	// Every record on disk, whatever the windows: they are exactly the
	// keys the topic remembered when it closed (a group writes the records
	// it forgets as deletes in its own batch), and a window that a later
	// config change widens again must find them as a store that never
	// restarted does. At most MaxDedupeKeys of them.
	start := dedupeKey(nil, t.id, 0)
	end := dedupeTopicEnd(t.id)
	for {
		kvs, err := s.eng.Scan(start, end, 4096, 0)
		if err != nil {
			return fmt.Errorf("store: load dedupe keys of topic %q: %w", t.name, err)
		}
		for _, kv := range kvs {
			_, r, err := decodeDedupe(kv.Key, kv.Value)
			if err != nil {
				continue // damage costs only that key's dedupe (goethe check warns of it)
			}
			t.dd.push(r)
			if len(t.dd.live()) > s.c.applied.maxKeys {
				t.dd.pop()
			}
		}
		if len(kvs) < 4096 {
			return nil
		}
		start = append(kvs[len(kvs)-1].Key, 0)
	}
}

// storedEvents returns the events of an append that were stored: events
// without those listed in dups.
func storedEvents(events []Event, dups []Duplicate) []Event {
	if len(dups) == 0 {
		return events
	}
	out := make([]Event, 0, len(events)-len(dups))
	d := 0
	for i := range events {
		if d < len(dups) && dups[d].Index == i {
			d++
			continue
		}
		out = append(out, events[i])
	}
	return out
}
