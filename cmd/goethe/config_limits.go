package main

import "flag"

// limitsConfig holds the flags of memory budgets, stream and connection limits, keepalive, slow consumers and the stop grace period.
type limitsConfig struct{}

// register adds the group's flags to fs.
func (c *limitsConfig) register(fs *flag.FlagSet) {}

// validate reports the first flag of the group with a bad value.
func (c *limitsConfig) validate() error { return nil }
