package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/goethe-log/goethe/store"
)

// retentionConfig holds the flags of the server-wide retention defaults:
// what a topic keeps when its own config (SetTopicConfig) does not say.
// Its zero value keeps every event.
type retentionConfig struct {
	maxAge    time.Duration // --retention-max-age; 0: none
	maxEvents uint64        // --retention-max-events; 0: none
	maxBytes  byteSize      // --retention-max-bytes; unset or 0: none
}

// register adds the group's flags to fs.
func (c *retentionConfig) register(fs *flag.FlagSet) {
	fs.DurationVar(&c.maxAge, "retention-max-age", 0, "default retention of every topic by age: events committed longer ago than this\n"+
		"(168h for a week) are removed in the background; a topic's own max age\n"+
		"(SetTopicConfig, goethectl topic set) wins over it. 0 keeps events of any age")
	fs.Uint64Var(&c.maxEvents, "retention-max-events", 0, "default retention by count: the oldest events beyond this many per topic are\n"+
		"removed; 0 keeps any number")
	fs.Var(&c.maxBytes, "retention-max-bytes", "default retention by size: the oldest events of a topic are removed until its\n"+
		"stored bytes (keys, payloads, headers, framing) are at most this. In bytes, or\n"+
		"with a unit: KiB, MiB, GiB, TiB. 0 (the default) keeps any size")
}

// validate reports the first flag of the group with a bad value.
func (c *retentionConfig) validate() error {
	if c.maxAge < 0 {
		return fmt.Errorf("--retention-max-age %v: must not be negative", c.maxAge)
	}
	return nil
}

// storeOptions sets the store's retention defaults.
func (c *retentionConfig) storeOptions(o *store.Options) {
	o.Retention = store.TopicConfig{MaxAge: c.maxAge, MaxEvents: c.maxEvents, MaxBytes: c.maxBytes.n}
}
