package main

import "flag"

// diskConfig holds the flags of the free-space guard of the write path.
type diskConfig struct{}

// register adds the group's flags to fs.
func (c *diskConfig) register(fs *flag.FlagSet) {}

// validate reports the first flag of the group with a bad value.
func (c *diskConfig) validate() error { return nil }
