package store

import (
	"fmt"
	"math/bits"
)

// SeqReader is what SeqPosition needs of a log: *Store is one, and so is
// any log with the contracts of Store.Info and Store.Read (a replicated one).
type SeqReader interface {
	Info(topic string) (TopicInfo, error)
	Read(topic string, from uint64, limit int) (Page, error)
}

// maxSeqProbes bounds SeqPosition's reads. Bisection alone halves the id
// interval at every other probe, and the interval is at most 2^64 wide, so
// a consistent topic never needs more than 2*64 probes.
const maxSeqProbes = 2*64 + 2

// SeqPosition returns the Read position of the event of topic with seq: its
// id. A seq below the topic's first (0 included) is the first event's id;
// seq last_seq+1 and beyond, and any seq of a topic emptied by a trim, are
// the position after the last event (the end: what is read from there is
// committed later, with seqs from last_seq+1).
// exhausted says that no event can exist at or after the position (the
// last event has the largest id). ErrNotFound when the topic does not
// exist.
//
// Event keys hold ids, not seqs, but ids and seqs increase together, so
// the event is found by a search over the id interval between the first
// and the last event: each probe is one Read of one event (the first at or
// after a candidate id: one engine seek, or none when the live tail holds
// it). Probes alternate interpolation (the seq's share of the id interval,
// exact for a steady produce rate, so a few probes find an event in a topic
// of any length) with bisection, which bounds the worst case (bursts and
// pauses) at 2*log2 of the id interval, at most 128 probes and in practice
// about 100 for a topic spanning a year. An index of seqs would make it one
// read but cost a key per event on the write path.
//
// It reads the topic as of its last commit when called: an event committed
// meanwhile is found as well or not, and a prefix removed meanwhile makes
// the position land on the first event after the removed ones.
func SeqPosition(r SeqReader, topic string, seq uint64) (pos uint64, exhausted bool, err error) {
	ti, err := r.Info(topic)
	if err != nil {
		return 0, false, err
	}
	switch {
	case ti.LastSeq == 0:
		return FromBeginning, false, nil // no event yet: the first one comes
	case ti.FirstID == 0 || seq > ti.LastSeq:
		// Emptied by a trim, or past the end: what comes next.
		if ti.LastID == ^uint64(0) {
			return ti.LastID, true, nil
		}
		return After(ti.LastID), false, nil
	case seq <= ti.FirstSeq:
		return ti.FirstID, false, nil
	case seq == ti.LastSeq:
		return ti.LastID, false, nil
	}
	// The event sought has an id in (loID, hiID): loSeq < seq is the seq of
	// the event at loID, and hiSeq > seq the seq of the first event at or
	// after hiID.
	loID, loSeq, hiID, hiSeq := ti.FirstID, ti.FirstSeq, ti.LastID, ti.LastSeq
	for probe := 0; probe < maxSeqProbes; probe++ {
		if hiID-loID <= 1 {
			// No id left between: the event is gone (removed by a trim
			// meanwhile); the next one is where it was.
			return loID + 1, false, nil
		}
		p := loID + (hiID-loID)/2
		if probe%2 == 0 {
			p = interpolate(loID, hiID, seq-loSeq, hiSeq-loSeq)
		}
		page, err := r.Read(topic, p, 1)
		if err != nil {
			return 0, false, fmt.Errorf("seq %d of topic %q: %w", seq, topic, err)
		}
		if len(page.Events) == 0 {
			// Nothing at or after p: the topic lost its events meanwhile.
			return p, false, nil
		}
		e := &page.Events[0]
		switch {
		case e.Seq == seq:
			return e.ID, false, nil
		case e.Seq < seq:
			loID, loSeq = e.ID, e.Seq
		default:
			// e is the first event at or after p, so the one sought,
			// with a smaller seq, is before p.
			hiID, hiSeq = p, e.Seq
		}
	}
	return 0, false, fmt.Errorf("%w: topic %q: seq %d not found in %d reads: seqs do not increase with ids", ErrCorrupted, topic, seq, maxSeqProbes)
}

// interpolate is the id in (lo, hi) at the fraction num/den of the way,
// 0 < num < den, computed without overflow.
func interpolate(lo, hi, num, den uint64) uint64 {
	h, l := bits.Mul64(hi-lo, num)
	q, _ := bits.Div64(h, l, den) // h < den as num < den: no overflow
	return min(max(lo+q, lo+1), hi-1)
}
