package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/goethe-log/goethe/server"
)

// fanoutConfig holds the flags of the fan-out to followers at the end of
// a topic (server/fanout_gate.go).
type fanoutConfig struct {
	// Senders is --fanout-senders: the most Consume streams sending a
	// tail delivery at once; 0 takes server.DefaultFanoutSenders().
	Senders int
	// Solo is --fanout-solo: every follower sends for itself
	// (server.Options.FanoutSolo).
	Solo bool
	// Linger is --fanout-linger (server.Options.FanoutLinger); 0 takes
	// the default, negative turns the wait off.
	Linger time.Duration
}

// register adds the group's flags to fs.
func (c *fanoutConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.Senders, "fanout-senders", 0, fmt.Sprintf(
		"most Consume streams that send the events a commit just made at once; the other\n"+
			"followers it woke wait for a turn, in order, and get the events committed meanwhile\n"+
			"in the same message: fewer keeps a processor free for writes, at the cost of follower\n"+
			"latency; at least the number of followers turns the bound off (0: GOMAXPROCS-1, at\n"+
			"least 1; %d here); with rounds (the default, see --fanout-solo) it bounds only\n"+
			"followers with an end of their own (until or limit)", server.DefaultFanoutSenders()))
	fs.BoolVar(&c.Solo, "fanout-solo", false,
		"turn fan-out rounds off: every follower at the end of a topic is woken by each commit and\n"+
			"sends the new events itself (bounded by --fanout-senders); by default one goroutine per\n"+
			"topic sends them to all its followers at the end, so a commit wakes one, not thousands")
	fs.DurationVar(&c.Linger, "fanout-linger", 0, fmt.Sprintf(
		"how long a fan-out round for at least 64 followers waits after the commit that woke it,\n"+
			"so that the commit's acknowledgements go out first; adds as much to those followers'\n"+
			"delivery latency (0: %v; negative: no wait; at most %v)", server.DefaultFanoutLinger, server.MaxFanoutLinger))
}

// validate reports a bad value of the group's flags.
func (c *fanoutConfig) validate() error {
	if c.Senders < 0 {
		return fmt.Errorf("--fanout-senders %d: must not be negative (0 takes the default, GOMAXPROCS-1)", c.Senders)
	}
	if c.Linger > server.MaxFanoutLinger {
		return fmt.Errorf("--fanout-linger %v: must be at most %v (every event to a large group of followers waits that long)", c.Linger, server.MaxFanoutLinger)
	}
	return nil
}

// apply sets the group's options in o and returns it; a zero field takes
// its default in server.New.
func (c *fanoutConfig) apply(o server.Options) server.Options {
	o.FanoutSenders = c.Senders
	o.FanoutSolo = c.Solo
	o.FanoutLinger = c.Linger
	return o
}
