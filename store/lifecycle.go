package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/goethe-log/goethe/engine"
)

// Topic lifecycle: config, retention, trims and deletes.
//
// A trim goes through the pure apply step like any write, so a replicated
// log applies the same trims on every replica. apply reads nothing, so the
// caller plans each step first (PlanTrim, PlanRetention): it reads the
// topic's published state and a bounded page of its first events, and the
// step it submits says what it found (topic id, first seq) and what to
// remove (up to a new first id and seq, and the bytes that go). apply checks
// that the topic is still in the state the step was planned on and removes
// the prefix with one range delete in the same batch as the new metadata.
// A step removes at most TrimStepEvents events and TrimStepBytes bytes, so
// no batch is large and appends queue behind a trim for one bounded commit
// at most; Trim and the retention loop submit steps until done.
//
// A delete removes the topic's catalog entry, metadata, config and cursors
// in one batch, and records the topic id for reclaim (prefixReclaim): the
// name is free at once, and the events, which no lookup reaches any more,
// are removed in the background in bounded pages by the maintenance
// goroutine, also after a restart. Topic ids are never reused, so a new
// topic of the same name never meets the old one's events.

// Bounds of one trim or reclaim step.
const (
	// TrimStepEvents bounds the events one trim step removes.
	TrimStepEvents = 10_000
	// TrimStepBytes bounds the stored bytes one trim step removes (a
	// step removes at least one event, whatever its size).
	TrimStepBytes = 16 << 20
	// ReclaimStepEvents bounds the event records of a deleted topic that
	// one reclaim write removes.
	ReclaimStepEvents = 10_000
	// ReclaimStepBytes bounds the stored bytes of the records one reclaim
	// write removes (the page of keys read first).
	ReclaimStepBytes = 16 << 20
	// TrimPipelineSteps bounds the steps planned and submitted together:
	// consecutive steps, each bounded as above, that are queued at once and
	// so usually commit in one group, so that retention keeps up with a
	// topic appended to as fast as the store commits, where one step per
	// commit would not.
	TrimPipelineSteps = 4
	// maxStaleTrims bounds the rounds of steps in a row that Trim plans
	// again because the topic changed under them (another trim won).
	maxStaleTrims = 100
)

// DefaultRetentionInterval is how often the maintenance goroutine enforces
// retention, unless Options.RetentionInterval says otherwise.
const DefaultRetentionInterval = time.Second

var (
	// ErrTopicDeleted: the topic a reader followed was deleted. It wraps
	// ErrNotFound.
	ErrTopicDeleted = fmt.Errorf("store: topic deleted: %w", ErrNotFound)
	// ErrStaleTrim: a trim step was planned on a state of its topic that
	// has changed (another trim, a delete, or appends to a topic the step
	// would have emptied). Nothing was removed; plan again. It wraps
	// ErrConflict.
	ErrStaleTrim = fmt.Errorf("store: trim step is stale: %w", ErrConflict)
)

// TrimStep is one bounded trim of a topic's first events, as planned by
// PlanTrim or PlanRetention from the topic's state: every event from the
// topic's first (seq FirstSeq) up to, not including, the event with id
// NewFirstID and seq NewFirstSeq, Bytes of them. NewFirstID 0 empties the
// topic: NewFirstSeq is then its last seq + 1.
type TrimStep struct {
	TopicID     uint64
	FirstSeq    uint64
	NewFirstID  uint64
	NewFirstSeq uint64
	Bytes       uint64
}

// TrimPoint is where a trim ends: the events before it are removed. Seq,
// when not 0, removes events with a seq below it; ID, when not 0, events
// with an id below it (a time is an id: At(t)). With both set, both apply
// (the later of the two positions).
type TrimPoint struct {
	Seq uint64
	ID  uint64
}

// IsZero reports whether p names no position.
func (p TrimPoint) IsZero() bool { return p.Seq == 0 && p.ID == 0 }

// SetTopicConfig changes topic's config: the fields cfg.Set names take
// cfg's values, then the fields of clear are dropped (the defaults of
// Options.Retention apply to them again). The topic is created, empty, if
// it does not exist. It is committed like an Append. ErrInvalid for a
// negative duration.
func (s *Store) SetTopicConfig(ctx context.Context, topicName string, cfg TopicConfig, clear ConfigFields) (TopicInfo, error) {
	if err := ctx.Err(); err != nil {
		return TopicInfo{}, err
	}
	if err := ValidateName("topic", topicName); err != nil {
		return TopicInfo{}, err
	}
	if err := cfg.Validate(); err != nil {
		return TopicInfo{}, err
	}
	if clear&^AllConfigFields != 0 {
		return TopicInfo{}, fmt.Errorf("%w: unknown config fields %#x to clear", ErrInvalid, uint8(clear&^AllConfigFields))
	}
	r := newRequest()
	r.cmd = command{kind: cmdSetConfig, topic: topicName, config: cfg, clear: clear}
	r.bytes = 64
	if err := s.wait(r).err; err != nil {
		return TopicInfo{}, err
	}
	return s.Info(topicName)
}

// Trim removes topic's events before the position before, in steps of at
// most TrimStepEvents events and TrimStepBytes bytes, and returns how many
// it removed. Appends go on between steps. When it returns nil, no event
// before the position is left. ErrNotFound for a missing topic, ErrInvalid
// for an empty position.
func (s *Store) Trim(ctx context.Context, topicName string, before TrimPoint) (uint64, error) {
	if err := ValidateName("topic", topicName); err != nil {
		return 0, err
	}
	if before.IsZero() {
		return 0, fmt.Errorf("%w: a trim needs a position", ErrInvalid)
	}
	return RunTrim(ctx, func() ([]Command, error) { return s.PlanTrim(topicName, before) }, s.submitTrim)
}

// RunTrim submits the rounds of steps plan gives until it gives none,
// planning again after a round with a step that went stale, and returns
// the events removed. submit returns one Result per command, in order.
// Trim runs it with the store's own commit; a replicated log with its
// proposals.
func RunTrim(ctx context.Context, plan func() ([]Command, error), submit func(context.Context, []Command) ([]Result, error)) (uint64, error) {
	var removed uint64
	stale := 0
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		cmds, err := plan()
		if err != nil || len(cmds) == 0 {
			return removed, err
		}
		results, err := submit(ctx, cmds)
		if err != nil {
			return removed, err
		}
		var staleErr error
		for _, r := range results {
			switch {
			case r.Err == nil:
				removed += uint64(r.Append.Count)
			case errors.Is(r.Err, ErrStaleTrim):
				staleErr = r.Err // and so are the steps after it
			default:
				return removed, r.Err
			}
		}
		if staleErr == nil {
			stale = 0
			continue
		}
		if stale++; stale > maxStaleTrims {
			return removed, staleErr
		}
	}
}

// submitTrim queues trim commands in order through the store's write path
// and waits for each: they usually commit in one group.
func (s *Store) submitTrim(ctx context.Context, cmds []Command) ([]Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	reqs := make([]*request, len(cmds))
	for i := range cmds {
		r := newRequest()
		r.cmd = cmds[i].internal()
		// A step counts towards the group's bytes (MaxGroupBytes) as the
		// bytes it removes: an engine that emulates range deletes
		// (goleveldb) reads them, so few steps share one commit.
		r.bytes = 64 + int(min(cmds[i].Trim.Bytes, TrimStepBytes))
		reqs[i] = r
		s.submit(r, i == len(cmds)-1) // the last may lead the group
	}
	results := make([]Result, len(cmds))
	for i, r := range reqs {
		<-r.ready
		results[i] = Result{Append: r.out.res, Err: r.out.err}
		r.release()
	}
	return results, nil
}

// DeleteTopic deletes topic with its config and cursors: its name is free
// at once (a later Append creates a new topic, with a new id and seqs from
// 1), readers that wait on it end with ErrTopicDeleted, and its events are
// removed in the background. ErrNotFound when the topic does not exist.
func (s *Store) DeleteTopic(ctx context.Context, topicName string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cmd, err := s.PlanDelete(topicName)
	if err != nil {
		return err
	}
	r := newRequest()
	r.cmd = cmd.internal()
	r.bytes = 64
	return s.wait(r).err
}

// PlanDelete returns the command that deletes topic as it is now (its
// id), or ErrNotFound.
func (s *Store) PlanDelete(topicName string) (Command, error) {
	if err := ValidateName("topic", topicName); err != nil {
		return Command{}, err
	}
	t, err := s.lookup(topicName)
	if err != nil {
		return Command{}, err
	}
	return Command{Kind: CommandDeleteTopic, Topic: topicName, TopicID: t.id}, nil
}

// PlanTrim plans the next round of a trim of topic before the position
// before: up to TrimPipelineSteps consecutive steps, none when no event
// before the position is left.
func (s *Store) PlanTrim(topicName string, before TrimPoint) ([]Command, error) {
	return s.planSteps(topicName, func(m *topicMeta, seq, id, _ uint64) bool {
		return (before.Seq != 0 && seq < before.Seq) || (before.ID != 0 && id < before.ID)
	})
}

// PlanRetention plans the next round of retention for topic at time now
// (ns since the epoch), from its effective config: up to TrimPipelineSteps
// consecutive steps, none when the topic is within its limits.
func (s *Store) PlanRetention(topicName string, now int64) ([]Command, error) {
	t, err := s.lookup(topicName)
	if err != nil {
		return nil, err
	}
	cfg := t.pub.Load().cfg.effective(s.opts.Retention)
	if !cfg.hasRetention() {
		return nil, nil
	}
	var minID uint64
	if cfg.MaxAge > 0 && now > int64(cfg.MaxAge) {
		minID = uint64(now - int64(cfg.MaxAge))
	}
	// From the metadata alone, without reading events: most passes find
	// most topics within their limits.
	if m := t.pub.Load(); m.empty() ||
		!((minID != 0 && m.firstID < minID) ||
			(cfg.MaxEvents > 0 && m.lastSeq-m.firstSeq+1 > cfg.MaxEvents) ||
			(cfg.MaxBytes > 0 && m.bytes > cfg.MaxBytes)) {
		return nil, nil
	}
	return s.planSteps(topicName, func(m *topicMeta, seq, id, removedBytes uint64) bool {
		return (minID != 0 && id < minID) ||
			(cfg.MaxEvents > 0 && m.lastSeq-seq+1 > cfg.MaxEvents) ||
			(cfg.MaxBytes > 0 && m.bytes-removedBytes > cfg.MaxBytes)
	})
}

// planSteps plans up to TrimPipelineSteps consecutive steps from topic's
// published state, each from the state the one before leaves.
func (s *Store) planSteps(topicName string, remove func(m *topicMeta, seq, id, removedBytes uint64) bool) ([]Command, error) {
	t, err := s.lookup(topicName)
	if err != nil {
		return nil, err
	}
	m := *t.pub.Load()
	var cmds []Command
	for len(cmds) < TrimPipelineSteps && !m.empty() {
		step, ok, err := s.planStep(&m, remove)
		if err != nil || !ok {
			return cmds, err
		}
		cmds = append(cmds, Command{Kind: CommandTrim, Topic: topicName, Trim: step})
		m.firstID, m.firstSeq, m.bytes = step.NewFirstID, step.NewFirstSeq, m.bytes-step.Bytes
	}
	return cmds, nil
}

// planStep reads the first events of the topic in state m, in order, while
// remove says so of each (its seq, its id, and the bytes of the ones before
// it that go, counted from m), bounded by TrimStepEvents and TrimStepBytes,
// and returns the step that removes them.
func (s *Store) planStep(m *topicMeta, remove func(m *topicMeta, seq, id, removedBytes uint64) bool) (TrimStep, bool, error) {
	step := TrimStep{TopicID: m.id, FirstSeq: m.firstSeq}
	end := topicEnd(m.id)
	if m.lastID < math.MaxUint64 {
		end = eventKey(m.id, m.lastID+1)
	}
	start := eventKey(m.id, m.firstID)
	var n, bytes uint64
	for {
		kvs, err := s.eng.Scan(start, end, 1000, s.opts.PageBytes)
		if err != nil {
			return step, false, s.engineErr("plan trim", err)
		}
		if len(kvs) == 0 {
			break
		}
		for _, kv := range kvs {
			if len(kv.Key) != eventKeyLen {
				return step, false, fmt.Errorf("%w: event key %x", ErrCorrupted, kv.Key)
			}
			id, seq := beUint64(kv.Key[8:]), m.firstSeq+n // seqs are dense
			if n >= TrimStepEvents || (n > 0 && bytes >= TrimStepBytes) || !remove(m, seq, id, bytes) {
				if n == 0 {
					return step, false, nil
				}
				step.NewFirstID, step.NewFirstSeq, step.Bytes = id, seq, bytes
				return step, true, nil
			}
			n++
			bytes += uint64(len(kv.Key) + len(kv.Value))
		}
		start = append(kvs[len(kvs)-1].Key, 0)
	}
	if n == 0 {
		return step, false, nil
	}
	// Every event up to the last goes: the step empties the topic (and
	// goes stale if events were appended meanwhile).
	step.NewFirstSeq, step.Bytes = m.firstSeq+n, bytes
	return step, true, nil
}

// RetentionPass enforces retention on every topic at time now, submitting
// rounds of steps with submit (see RunTrim) until the topic is within its
// limits, and returns the events removed. It stops at ctx's end; a topic whose step fails is
// left for the next pass. The maintenance goroutine runs it with the
// store's commit; a replicated log runs it on its leader with proposals
// (Options.RetentionByLog).
func (s *Store) RetentionPass(ctx context.Context, now int64, submit func(context.Context, []Command) ([]Result, error)) uint64 {
	s.mu.RLock()
	names := make([]string, 0, len(s.topics))
	for name, t := range s.topics {
		if m := t.pub.Load(); !m.empty() && (m.cfg.Set != 0 || s.opts.Retention.hasRetention()) {
			names = append(names, name)
		}
	}
	s.mu.RUnlock()
	var removed uint64
	for _, name := range names {
		n, _ := RunTrim(ctx, func() ([]Command, error) { return s.PlanRetention(name, now) }, submit)
		removed += n
		if ctx.Err() != nil {
			break
		}
	}
	return removed
}

// maintain is the maintenance goroutine: every Options.RetentionInterval,
// and whenever a delete kicks it, it reclaims the events of deleted topics
// and (unless Options.RetentionByLog) enforces retention. It ends when the
// store closes; Close waits for it.
func (s *Store) maintain() {
	defer close(s.maintDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.quit
		cancel()
	}()
	tick := time.NewTicker(s.opts.RetentionInterval)
	defer tick.Stop()
	for {
		s.reclaim(ctx)
		if !s.opts.RetentionByLog && ctx.Err() == nil {
			s.RetentionPass(ctx, s.opts.Clock(), s.submitTrim)
		}
		select {
		case <-tick.C:
		case <-s.reclaimKick:
		case <-ctx.Done():
			return
		}
	}
}

// kickReclaim wakes the maintenance goroutine.
func (s *Store) kickReclaim() {
	select {
	case s.reclaimKick <- struct{}{}:
	default:
	}
}

// reclaim removes the events of deleted topics, a bounded page at a time,
// and each topic's reclaim record once none is left. It stops at ctx's end
// or at an engine error (the next round tries again).
func (s *Store) reclaim(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.WriteErr(); errors.Is(err, ErrFailed) {
			return
		}
		recs, err := s.eng.Scan([]byte{prefixReclaim}, []byte{prefixReclaim + 1}, 100, 0)
		if err != nil || len(recs) == 0 {
			return
		}
		for _, rec := range recs {
			if len(rec.Key) != 9 {
				continue // reported by goethe check
			}
			if err := s.reclaimTopic(ctx, beUint64(rec.Key[1:])); err != nil {
				return
			}
		}
	}
}

// reclaimTopic removes the event records of deleted topic tid, then its
// reclaim record.
func (s *Store) reclaimTopic(ctx context.Context, tid uint64) error {
	for ctx.Err() == nil {
		kvs, err := s.eng.Scan(eventKey(tid, 0), topicEnd(tid), ReclaimStepEvents, ReclaimStepBytes)
		if err != nil {
			return err
		}
		var b engine.Batch
		if len(kvs) == 0 {
			b.Delete(reclaimKey(tid))
		} else {
			b.DeleteRange(kvs[0].Key, append(kvs[len(kvs)-1].Key, 0))
		}
		if err := s.eng.Write(&b, !s.opts.UnsafeNoSync); err != nil {
			return err
		}
		s.stats.reclaimed.Add(uint64(len(kvs)))
		if len(kvs) == 0 {
			return nil
		}
	}
	return ctx.Err()
}

// WaitTopic is Wait on the topic with id topicID (TopicInfo.ID,
// Page.TopicID): it returns ErrTopicDeleted when topic no longer names
// that topic (it was deleted, and maybe created again), also while it
// waits.
func (s *Store) WaitTopic(ctx context.Context, topicName string, topicID, from uint64) error {
	t, err := s.lookup(topicName)
	if err != nil || t.id != topicID {
		return fmt.Errorf("%w: topic %q (id %d)", ErrTopicDeleted, topicName, topicID)
	}
	return s.waitTopic(ctx, t, from)
}

// topicBytes computes the stored bytes of topic tid's events by a scan,
// for a meta value written before bytes were recorded.
func (s *Store) topicBytes(tid uint64) (uint64, error) {
	start, end := eventKey(tid, 0), topicEnd(tid)
	var n uint64
	for {
		kvs, err := s.eng.Scan(start, end, 4096, 16<<20)
		if err != nil {
			return 0, fmt.Errorf("store: count the bytes of topic id %d: %w", tid, err)
		}
		for _, kv := range kvs {
			n += uint64(len(kv.Key) + len(kv.Value))
		}
		if len(kvs) == 0 {
			return n, nil
		}
		start = append(kvs[len(kvs)-1].Key, 0)
	}
}

// completeMeta fills in what a meta value does not hold: the topic's
// config record, and its bytes for a meta value of version 1.
func (s *Store) completeMeta(m *topicMeta) error {
	if m.noBytes {
		b, err := s.topicBytes(m.id)
		if err != nil {
			return err
		}
		m.bytes, m.noBytes = b, false
	}
	v, err := s.eng.Get(configKey(m.id))
	switch {
	case errors.Is(err, engine.ErrNotFound):
		m.cfg = TopicConfig{}
	case err != nil:
		return fmt.Errorf("store: read the config of topic %q: %w", m.name, err)
	default:
		if m.cfg, err = decodeConfig(v); err != nil {
			return fmt.Errorf("topic %q: %w", m.name, err)
		}
	}
	return nil
}

// RetentionByLog reports Options.RetentionByLog: whether a replicating
// log, not the store, enforces retention.
func (s *Store) RetentionByLog() bool { return s.opts.RetentionByLog }

// RetentionInterval is Options.RetentionInterval, with its default filled
// in: how often retention is enforced.
func (s *Store) RetentionInterval() time.Duration { return s.opts.RetentionInterval }
