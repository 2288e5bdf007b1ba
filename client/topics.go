package client

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// TopicConfig is a topic's retention and dedupe settings. A nil field is
// not set: in SetTopicConfig it keeps its value, in TopicInfo.Config it
// takes the server's default. A limit of 0 is none. Retention keeps the
// events within all three limits, removing the oldest first, in the
// background within seconds (TrimTopic removes at once).
type TopicConfig struct {
	// MaxAge: events committed longer ago are removed.
	MaxAge *time.Duration `json:"max_age,omitempty"`
	// MaxEvents: the oldest events beyond this count are removed.
	MaxEvents *uint64 `json:"max_events,omitempty"`
	// MaxBytes: the oldest events are removed until TopicInfo.Bytes is at
	// most this.
	MaxBytes *uint64 `json:"max_bytes,omitempty"`
	// DedupeWindow: how long a dedupe key is remembered; 0 turns dedupe
	// off for the topic.
	DedupeWindow *time.Duration `json:"dedupe_window,omitempty"`
}

// ConfigField names a setting of TopicConfig, for SetTopicConfig's clear.
type ConfigField string

// The settings of a TopicConfig.
const (
	FieldMaxAge       ConfigField = "max_age"
	FieldMaxEvents    ConfigField = "max_events"
	FieldMaxBytes     ConfigField = "max_bytes"
	FieldDedupeWindow ConfigField = "dedupe_window"
)

func topicConfig(m *goethev1.TopicConfig) TopicConfig {
	var c TopicConfig
	if m.GetMaxAge() != nil {
		d := m.GetMaxAge().AsDuration()
		c.MaxAge = &d
	}
	if m != nil && m.MaxEvents != nil {
		n := m.GetMaxEvents()
		c.MaxEvents = &n
	}
	if m != nil && m.MaxBytes != nil {
		n := m.GetMaxBytes()
		c.MaxBytes = &n
	}
	if m.GetDedupeWindow() != nil {
		d := m.GetDedupeWindow().AsDuration()
		c.DedupeWindow = &d
	}
	return c
}

func (c *TopicConfig) proto() *goethev1.TopicConfig {
	m := &goethev1.TopicConfig{MaxEvents: c.MaxEvents, MaxBytes: c.MaxBytes}
	if c.MaxAge != nil {
		m.MaxAge = durationpb.New(*c.MaxAge)
	}
	if c.DedupeWindow != nil {
		m.DedupeWindow = durationpb.New(*c.DedupeWindow)
	}
	return m
}

// SetTopicConfig sets the fields of cfg that are not nil on topic's config
// and drops the fields named in clear (the server's defaults then apply to
// them), creating the topic, empty, if it does not exist. It returns the
// topic as of the change. It needs the admin permission on the topic;
// ErrInvalidArgument for a negative duration or a field both set and
// cleared.
func (c *Client) SetTopicConfig(ctx context.Context, topic string, cfg TopicConfig, clear ...ConfigField) (TopicInfo, error) {
	req := &goethev1.SetTopicConfigRequest{Topic: topic, Config: cfg.proto()}
	for _, f := range clear {
		req.ClearFields = append(req.ClearFields, string(f))
	}
	res, err := c.api.SetTopicConfig(ctx, req)
	if err != nil {
		return TopicInfo{}, wrapError(err)
	}
	return topicInfo(res.GetTopic()), nil
}

// TrimPosition is where TrimTopic stops: BeforeSeq, BeforeID or
// BeforeTime.
type TrimPosition func(*goethev1.TrimTopicRequest)

// BeforeSeq trims the events with a seq below seq.
func BeforeSeq(seq uint64) TrimPosition {
	return func(r *goethev1.TrimTopicRequest) { r.Before = &goethev1.TrimTopicRequest_BeforeSeq{BeforeSeq: seq} }
}

// BeforeID trims the events with an id below id.
func BeforeID(id uint64) TrimPosition {
	return func(r *goethev1.TrimTopicRequest) { r.Before = &goethev1.TrimTopicRequest_BeforeId{BeforeId: id} }
}

// BeforeTime trims the events committed before t.
func BeforeTime(t time.Time) TrimPosition {
	return func(r *goethev1.TrimTopicRequest) {
		r.Before = &goethev1.TrimTopicRequest_BeforeTime{BeforeTime: timestamppb.New(t)}
	}
}

// TrimTopic removes every event of topic before the position at once, and
// returns how many it removed and the topic after. Trimming nothing is no
// error. Consumers positioned before the removed events start at the first
// one left, told how many they skipped. It needs the admin permission on
// the topic; ErrNotFound when the topic does not exist, ErrInvalidArgument
// without a position.
func (c *Client) TrimTopic(ctx context.Context, topic string, before TrimPosition) (removed uint64, info TopicInfo, err error) {
	req := &goethev1.TrimTopicRequest{Topic: topic}
	if before != nil {
		before(req)
	}
	res, err := c.api.TrimTopic(ctx, req)
	if err != nil {
		return 0, TopicInfo{}, wrapError(err)
	}
	return res.GetRemoved(), topicInfo(res.GetTopic()), nil
}

// DeleteTopic deletes topic with its events and cursors. Its name is free
// at once: a later Produce creates a new topic whose ids and seqs start
// afresh. Subscriptions following it end with ErrNotFound (IsReason
// goethev1.ReasonTopicDeleted). The server reclaims the space in the
// background. It needs the admin permission on the topic; ErrNotFound when
// the topic does not exist.
func (c *Client) DeleteTopic(ctx context.Context, topic string) error {
	_, err := c.api.DeleteTopic(ctx, &goethev1.DeleteTopicRequest{Topic: topic})
	return wrapError(err)
}
