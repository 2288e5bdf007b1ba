package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/goethe-log/goethe/store"
)

// dedupeConfig holds the flags of idempotent produce (see store/dedupe.go).
type dedupeConfig struct {
	Window time.Duration // --dedupe-window; 0 turns dedupe off
}

// register adds the group's flags to fs.
func (c *dedupeConfig) register(fs *flag.FlagSet) {
	fs.DurationVar(&c.Window, "dedupe-window", store.DefaultDedupeWindow,
		"how long a topic remembers the dedupe key of an event it stored: an event produced\n"+
			"again with the same key within it is not stored twice (the answer names the original).\n"+
			"The window is kept on disk and survives restarts; each topic remembers at most\n"+
			fmt.Sprintf("%d keys (the oldest are forgotten first). 0 turns dedupe off. In a cluster the\n", store.DefaultMaxDedupeKeys)+
			"leader's window applies to every write (a topic's own, goethectl topic set, to its writes)")
}

// validate reports a bad value of the group's flags.
func (c *dedupeConfig) validate() error {
	if c.Window < 0 {
		return fmt.Errorf("--dedupe-window %s: must not be negative (0 turns dedupe off)", c.Window)
	}
	return nil
}

// storeOptions sets the store's dedupe window: the store's zero window
// means its default, a negative one off.
func (c *dedupeConfig) storeOptions(o *store.Options) {
	o.DedupeWindow = c.Window
	if c.Window == 0 {
		o.DedupeWindow = -1
	}
}
