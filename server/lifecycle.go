package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// configFieldNames are the names SetTopicConfigRequest.clear_fields takes.
var configFieldNames = map[string]store.ConfigFields{
	"max_age":       store.FieldMaxAge,
	"max_events":    store.FieldMaxEvents,
	"max_bytes":     store.FieldMaxBytes,
	"dedupe_window": store.FieldDedupeWindow,
}

// SetTopicConfig validates the settings and sets them through the Log.
func (v *service) SetTopicConfig(ctx context.Context, req *goethev1.SetTopicConfigRequest) (*goethev1.SetTopicConfigResponse, error) {
	if err := store.ValidateName("topic", req.GetTopic()); err != nil {
		return nil, v.status(err)
	}
	cfg, err := configFromProto(req.GetConfig())
	if err != nil {
		return nil, v.status(err)
	}
	var clear store.ConfigFields
	for _, name := range req.GetClearFields() {
		f, ok := configFieldNames[name]
		if !ok {
			return nil, v.status(fmt.Errorf("%w: clear_fields: unknown setting %q (max_age, max_events, max_bytes or dedupe_window)", errBadRequest, name))
		}
		if cfg.Set&f != 0 {
			return nil, v.status(fmt.Errorf("%w: %s is both set and cleared", errBadRequest, name))
		}
		clear |= f
	}
	ti, err := v.log.SetTopicConfig(ctx, req.Topic, cfg, clear)
	if err != nil {
		return nil, v.status(err)
	}
	return &goethev1.SetTopicConfigResponse{Topic: topicProto(&ti)}, nil
}

// configFromProto is a TopicConfig message as the store's config: the
// fields present are set. A negative or malformed duration is
// INVALID_ARGUMENT.
func configFromProto(m *goethev1.TopicConfig) (store.TopicConfig, error) {
	var c store.TopicConfig
	duration := func(name string, d *durationpb.Duration) error {
		if err := d.CheckValid(); err != nil {
			return fmt.Errorf("%w: config.%s: %v", errBadRequest, name, err)
		}
		if d.AsDuration() < 0 {
			return fmt.Errorf("%w: config.%s is negative (%v)", errBadRequest, name, d.AsDuration())
		}
		return nil
	}
	if d := m.GetMaxAge(); d != nil {
		if err := duration("max_age", d); err != nil {
			return c, err
		}
		c.MaxAge, c.Set = d.AsDuration(), c.Set|store.FieldMaxAge
	}
	if m != nil && m.MaxEvents != nil {
		c.MaxEvents, c.Set = m.GetMaxEvents(), c.Set|store.FieldMaxEvents
	}
	if m != nil && m.MaxBytes != nil {
		c.MaxBytes, c.Set = m.GetMaxBytes(), c.Set|store.FieldMaxBytes
	}
	if d := m.GetDedupeWindow(); d != nil {
		if err := duration("dedupe_window", d); err != nil {
			return c, err
		}
		c.DedupeWindow, c.Set = d.AsDuration(), c.Set|store.FieldDedupeWindow
	}
	return c, nil
}

// configProto is the fields of c that c.Set names as the API's message.
func configProto(c *store.TopicConfig) *goethev1.TopicConfig {
	m := &goethev1.TopicConfig{}
	if c.Set&store.FieldMaxAge != 0 {
		m.MaxAge = durationpb.New(c.MaxAge)
	}
	if c.Set&store.FieldMaxEvents != 0 {
		n := c.MaxEvents
		m.MaxEvents = &n
	}
	if c.Set&store.FieldMaxBytes != 0 {
		n := c.MaxBytes
		m.MaxBytes = &n
	}
	if c.Set&store.FieldDedupeWindow != 0 {
		m.DedupeWindow = durationpb.New(c.DedupeWindow)
	}
	return m
}

// TrimTopic removes the events before the position given, at once.
func (v *service) TrimTopic(ctx context.Context, req *goethev1.TrimTopicRequest) (*goethev1.TrimTopicResponse, error) {
	res, err := v.trimTopic(ctx, req)
	return res, v.status(err)
}

func (v *service) trimTopic(ctx context.Context, req *goethev1.TrimTopicRequest) (*goethev1.TrimTopicResponse, error) {
	topic := req.GetTopic()
	if err := store.ValidateName("topic", topic); err != nil {
		return nil, err
	}
	var before store.TrimPoint
	switch b := req.GetBefore().(type) {
	case *goethev1.TrimTopicRequest_BeforeSeq:
		before.Seq = b.BeforeSeq
	case *goethev1.TrimTopicRequest_BeforeId:
		before.ID = b.BeforeId
	case *goethev1.TrimTopicRequest_BeforeTime:
		if err := b.BeforeTime.CheckValid(); err != nil {
			return nil, fmt.Errorf("%w: before_time: %v", errBadRequest, err)
		}
		before.ID = store.At(b.BeforeTime.AsTime())
	default:
		return nil, fmt.Errorf("%w: a trim needs a position: before_seq, before_id or before_time", errBadRequest)
	}
	var removed uint64
	if !before.IsZero() { // before seq or id 0: nothing is before it
		n, err := v.log.Trim(ctx, topic, before)
		if err != nil {
			return nil, topicNotFound(err, topic)
		}
		removed = n
	}
	ti, err := v.log.Info(topic)
	if err != nil {
		return nil, topicNotFound(err, topic)
	}
	return &goethev1.TrimTopicResponse{Removed: removed, Topic: topicProto(&ti)}, nil
}

// DeleteTopic deletes the topic with its cursors.
func (v *service) DeleteTopic(ctx context.Context, req *goethev1.DeleteTopicRequest) (*goethev1.DeleteTopicResponse, error) {
	topic := req.GetTopic()
	if err := store.ValidateName("topic", topic); err != nil {
		return nil, v.status(err)
	}
	if err := v.log.DeleteTopic(ctx, topic); err != nil {
		return nil, v.status(topicNotFound(err, topic))
	}
	return &goethev1.DeleteTopicResponse{}, nil
}
