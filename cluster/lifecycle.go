package cluster

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// SetTopicConfig changes topic's config (store.Store.SetTopicConfig): on
// the leader as an entry, on a follower forwarded to the leader's
// SetTopicConfig. The TopicInfo is this node's after the change (on a
// follower, the leader's answer).
func (l *Log) SetTopicConfig(ctx context.Context, topic string, cfg store.TopicConfig, clear store.ConfigFields) (store.TopicInfo, error) {
	var info store.TopicInfo
	err := l.onLeader(ctx, func() error {
		cmd := store.Command{Kind: store.CommandSetConfig, Topic: topic, Config: cfg, Clear: clear}
		if _, _, err := l.node.propose(ctx, cmd); err != nil {
			return err
		}
		var err error
		info, err = l.st.Info(topic)
		return err
	}, func(ctx context.Context, c goethev1.GoetheClient) error {
		req := &goethev1.SetTopicConfigRequest{Topic: topic, Config: configProto(cfg), ClearFields: clearNames(clear)}
		resp, err := c.SetTopicConfig(ctx, req)
		info = topicInfo(resp.GetTopic())
		return err
	})
	return info, err
}

// Trim removes topic's events before before (store.Store.Trim): on the
// leader, step by step as entries, planned from its applied state; on a
// follower forwarded to the leader's TrimTopic.
func (l *Log) Trim(ctx context.Context, topic string, before store.TrimPoint) (uint64, error) {
	if l.node.IsLeader() || forwarded(ctx) {
		n, err := store.RunTrim(ctx, func() ([]store.Command, error) { return l.st.PlanTrim(topic, before) }, l.proposeSteps)
		if !errors.Is(err, ErrNotLeader) || forwarded(ctx) || n > 0 {
			return n, l.hint(err)
		}
	}
	c, err := l.leaderClient()
	if err != nil {
		return 0, err
	}
	req := &goethev1.TrimTopicRequest{Topic: topic}
	switch {
	case before.Seq != 0:
		req.Before = &goethev1.TrimTopicRequest_BeforeSeq{BeforeSeq: before.Seq}
	default:
		req.Before = &goethev1.TrimTopicRequest_BeforeId{BeforeId: before.ID}
	}
	resp, err := c.TrimTopic(metadata.AppendToOutgoingContext(ctx, ForwardedKey, "1"), req)
	if err != nil {
		return 0, forwardErr(err)
	}
	return resp.GetRemoved(), nil
}

// DeleteTopic deletes topic (store.Store.DeleteTopic): on the leader as an
// entry naming the topic id the leader holds, on a follower forwarded to
// the leader's DeleteTopic.
func (l *Log) DeleteTopic(ctx context.Context, topic string) error {
	return l.onLeader(ctx, func() error {
		cmd, err := l.st.PlanDelete(topic)
		if err != nil {
			return err
		}
		_, _, err = l.node.propose(ctx, cmd)
		return err
	}, func(ctx context.Context, c goethev1.GoetheClient) error {
		_, err := c.DeleteTopic(ctx, &goethev1.DeleteTopicRequest{Topic: topic})
		return err
	})
}

// WaitTopic waits on this node's store (store.Store.WaitTopic).
func (l *Log) WaitTopic(ctx context.Context, topic string, topicID, from uint64) error {
	return l.st.WaitTopic(ctx, topic, topicID, from)
}

// proposeSteps proposes trim steps, each its own entry, all queued before
// the first is waited for, and returns their results. An error is the
// first proposal's that failed (not leader, outcome unknown…): the steps
// after it may or may not have been applied, which the next plan sees.
func (l *Log) proposeSteps(ctx context.Context, cmds []store.Command) ([]store.Result, error) {
	type outcome struct {
		r   store.Result
		err error
	}
	chans := make([]chan outcome, 0, len(cmds))
	var err error
	for _, cmd := range cmds {
		ch := make(chan outcome, 1)
		serr := l.node.startAsync(ctx, cmd, func(r store.Result, _ uint64, err error) { ch <- outcome{r, err} })
		if serr != nil {
			err = serr
			break
		}
		chans = append(chans, ch)
	}
	results := make([]store.Result, 0, len(chans))
	for _, ch := range chans {
		// Every queued step is answered (committed, failed, or the node
		// closed), whatever ctx does: wait for all of them.
		o := <-ch
		if o.err != nil && !errors.Is(o.err, store.ErrStaleTrim) && o.r.Err == nil {
			if err == nil {
				err = o.err
			}
			continue
		}
		results = append(results, o.r)
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

// retain enforces retention while this node leads: every
// store.Store.RetentionInterval it runs a retention pass whose steps are
// proposed. A pass stops when leadership moves (the proposals fail) or the
// Log closes.
func (l *Log) retain() {
	defer l.watched.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-l.stop
		cancel()
	}()
	tick := time.NewTicker(l.st.RetentionInterval())
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-l.stop:
			return
		}
		if !l.node.IsLeader() {
			continue
		}
		l.st.RetentionPass(ctx, l.node.cfg.Clock(), l.proposeSteps)
	}
}

// configProto is cfg's fields that cfg.Set names, as the API's message.
func configProto(cfg store.TopicConfig) *goethev1.TopicConfig {
	m := &goethev1.TopicConfig{}
	if cfg.Set&store.FieldMaxAge != 0 {
		m.MaxAge = durationpb.New(cfg.MaxAge)
	}
	if cfg.Set&store.FieldMaxEvents != 0 {
		m.MaxEvents = &cfg.MaxEvents
	}
	if cfg.Set&store.FieldMaxBytes != 0 {
		m.MaxBytes = &cfg.MaxBytes
	}
	if cfg.Set&store.FieldDedupeWindow != 0 {
		m.DedupeWindow = durationpb.New(cfg.DedupeWindow)
	}
	return m
}

// configFromProto is the API's config message as a store config.
func configFromProto(m *goethev1.TopicConfig) store.TopicConfig {
	var c store.TopicConfig
	if m.GetMaxAge() != nil {
		c.MaxAge, c.Set = m.GetMaxAge().AsDuration(), c.Set|store.FieldMaxAge
	}
	if m != nil && m.MaxEvents != nil {
		c.MaxEvents, c.Set = m.GetMaxEvents(), c.Set|store.FieldMaxEvents
	}
	if m != nil && m.MaxBytes != nil {
		c.MaxBytes, c.Set = m.GetMaxBytes(), c.Set|store.FieldMaxBytes
	}
	if m.GetDedupeWindow() != nil {
		c.DedupeWindow, c.Set = m.GetDedupeWindow().AsDuration(), c.Set|store.FieldDedupeWindow
	}
	return c
}

// clearNames are the API's names of the fields in clear.
func clearNames(clear store.ConfigFields) []string {
	var names []string
	for _, f := range []struct {
		f    store.ConfigFields
		name string
	}{{store.FieldMaxAge, "max_age"}, {store.FieldMaxEvents, "max_events"}, {store.FieldMaxBytes, "max_bytes"}, {store.FieldDedupeWindow, "dedupe_window"}} {
		if clear&f.f != 0 {
			names = append(names, f.name)
		}
	}
	return names
}

// topicInfo is a forwarded call's answer as a store.TopicInfo (its ID is
// not on the wire: 0).
func topicInfo(t *goethev1.Topic) store.TopicInfo {
	ti := store.TopicInfo{Name: t.GetName(), Created: t.GetCreated().AsTime(), FirstID: t.GetFirstId(), FirstSeq: t.GetFirstSeq(),
		LastID: t.GetLastId(), LastSeq: t.GetLastSeq(), Count: t.GetCount(), Bytes: t.GetBytes(),
		Config: configFromProto(t.GetConfig()), Effective: configFromProto(t.GetEffectiveConfig())}
	return ti
}
