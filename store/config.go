package store

import (
	"encoding/binary"
	"fmt"
	"time"
)

// ConfigFields names settings of a TopicConfig, as bit flags.
type ConfigFields uint8

// The settings of a TopicConfig.
const (
	FieldMaxAge ConfigFields = 1 << iota
	FieldMaxEvents
	FieldMaxBytes
	FieldDedupeWindow

	// AllConfigFields is every setting.
	AllConfigFields = FieldMaxAge | FieldMaxEvents | FieldMaxBytes | FieldDedupeWindow
)

// TopicConfig is a topic's retention and dedupe settings. Retention keeps
// the events that are within all three limits; a limit of 0 is none. Set
// says which fields the topic's config sets: a field not set takes the
// server-wide default (Options.Retention).
type TopicConfig struct {
	// MaxAge: events whose id (their commit time) is older than this are
	// removed.
	MaxAge time.Duration
	// MaxEvents: the oldest events beyond this count are removed.
	MaxEvents uint64
	// MaxBytes: the oldest events are removed until the topic's stored
	// bytes (TopicInfo.Bytes) are at most this.
	MaxBytes uint64
	// DedupeWindow: how long a dedupe key is remembered; 0 turns dedupe
	// off for the topic. The store keeps it; dedupe reads it.
	DedupeWindow time.Duration
	// Set names the fields this config sets.
	Set ConfigFields
}

// Validate refuses, with ErrInvalid, a negative duration or unknown field
// flags.
func (c *TopicConfig) Validate() error {
	switch {
	case c.Set&^AllConfigFields != 0:
		return fmt.Errorf("%w: unknown config fields %#x", ErrInvalid, uint8(c.Set&^AllConfigFields))
	case c.MaxAge < 0:
		return fmt.Errorf("%w: max age %v is negative", ErrInvalid, c.MaxAge)
	case c.DedupeWindow < 0:
		return fmt.Errorf("%w: dedupe window %v is negative", ErrInvalid, c.DedupeWindow)
	}
	return nil
}

// merge returns c with the fields of set that set.Set names replaced, then
// the fields of clear dropped (zero, not set).
func (c TopicConfig) merge(set TopicConfig, clear ConfigFields) TopicConfig {
	if set.Set&FieldMaxAge != 0 {
		c.MaxAge = set.MaxAge
	}
	if set.Set&FieldMaxEvents != 0 {
		c.MaxEvents = set.MaxEvents
	}
	if set.Set&FieldMaxBytes != 0 {
		c.MaxBytes = set.MaxBytes
	}
	if set.Set&FieldDedupeWindow != 0 {
		c.DedupeWindow = set.DedupeWindow
	}
	c.Set |= set.Set & AllConfigFields
	if clear&FieldMaxAge != 0 {
		c.MaxAge = 0
	}
	if clear&FieldMaxEvents != 0 {
		c.MaxEvents = 0
	}
	if clear&FieldMaxBytes != 0 {
		c.MaxBytes = 0
	}
	if clear&FieldDedupeWindow != 0 {
		c.DedupeWindow = 0
	}
	c.Set &^= clear
	return c
}

// effective is c with the fields it does not set taken from defaults; every
// field is set in the result.
func (c TopicConfig) effective(defaults TopicConfig) TopicConfig {
	e := defaults
	e.Set = AllConfigFields
	return e.merge(c, 0)
}

// hasRetention reports whether c (effective) limits anything.
func (c *TopicConfig) hasRetention() bool {
	return c.MaxAge > 0 || c.MaxEvents > 0 || c.MaxBytes > 0
}

// encodeConfig writes a config value: version, the Set flags, then each
// set field in the order of the flags, as uvarints (durations in ns).
func encodeConfig(dst []byte, c *TopicConfig) []byte {
	dst = append(dst, valueVersion, byte(c.Set))
	if c.Set&FieldMaxAge != 0 {
		dst = binary.AppendUvarint(dst, uint64(c.MaxAge))
	}
	if c.Set&FieldMaxEvents != 0 {
		dst = binary.AppendUvarint(dst, c.MaxEvents)
	}
	if c.Set&FieldMaxBytes != 0 {
		dst = binary.AppendUvarint(dst, c.MaxBytes)
	}
	if c.Set&FieldDedupeWindow != 0 {
		dst = binary.AppendUvarint(dst, uint64(c.DedupeWindow))
	}
	return dst
}

// decodeConfig reads a value written by encodeConfig.
func decodeConfig(v []byte) (TopicConfig, error) {
	var c TopicConfig
	if len(v) < 2 || v[0] != valueVersion || ConfigFields(v[1])&^AllConfigFields != 0 {
		return c, fmt.Errorf("%w: topic config", ErrCorrupted)
	}
	c.Set = ConfigFields(v[1])
	v = v[2:]
	read := func(f ConfigFields) uint64 {
		if c.Set&f == 0 || v == nil {
			return 0
		}
		x, rest, ok := uvarint(v)
		if !ok {
			v = nil
			return 0
		}
		v = rest
		return x
	}
	age := read(FieldMaxAge)
	c.MaxEvents = read(FieldMaxEvents)
	c.MaxBytes = read(FieldMaxBytes)
	window := read(FieldDedupeWindow)
	if v == nil || len(v) > 0 || age > uint64(1<<63-1) || window > uint64(1<<63-1) {
		return TopicConfig{}, fmt.Errorf("%w: topic config", ErrCorrupted)
	}
	c.MaxAge, c.DedupeWindow = time.Duration(age), time.Duration(window)
	return c, nil
}
