package main

import (
	"flag"
	"fmt"
	"math"
	"time"

	"github.com/goethe-log/goethe/server"
)

// limitsConfig holds the flags of memory budgets, stream and connection limits, keepalive, slow consumers and the stop grace period.
// A flag left at 0 (its zero value) takes the server package's default of
// the same option (server.DefaultOptions), which its usage names, so the
// binary and an embedded server agree.
type limitsConfig struct {
	MaxInflightBytes     int64
	MaxConcurrentStreams uint
	MaxConnections       int
	KeepaliveMinTime     time.Duration
	KeepaliveTime        time.Duration
	KeepaliveTimeout     time.Duration
	MaxConnectionIdle    time.Duration
	HandshakeTimeout     time.Duration
	SlowConsumerTimeout  time.Duration
	StopGrace            time.Duration
}

// register adds the group's flags to fs.
func (c *limitsConfig) register(fs *flag.FlagSet) {
	d := server.DefaultOptions()
	fs.Int64Var(&c.MaxInflightBytes, "max-inflight-bytes", 0, fmt.Sprintf(
		"budget of produce requests in flight, in bytes as encoded: past it a Produce answers\n"+
			"RESOURCE_EXHAUSTED (MEMORY_BUDGET) without being read; at least the largest request\n"+
			"(4 × --max-event-bytes + 64 KiB, and 64 MiB); memory held is a small multiple of it\n"+
			"(0: %d, or the largest request if larger)", d.MaxInflightBytes))
	fs.UintVar(&c.MaxConcurrentStreams, "max-concurrent-streams", 0, fmt.Sprintf(
		"most calls (streams included) open at once on one connection (0: %d)", d.MaxConcurrentStreams))
	fs.IntVar(&c.MaxConnections, "max-connections", 0, fmt.Sprintf(
		"most connections served at once; more wait in the listen backlog until one closes (0: %d)", d.MaxConnections))
	fs.DurationVar(&c.KeepaliveMinTime, "keepalive-min-time", 0, fmt.Sprintf(
		"shortest keepalive ping interval a client may use; one pinging more often is disconnected (0: %v)", d.KeepaliveMinTime))
	fs.DurationVar(&c.KeepaliveTime, "keepalive-time", 0, fmt.Sprintf(
		"ping a connection that has been silent this long (0: %v)", d.KeepaliveTime))
	fs.DurationVar(&c.KeepaliveTimeout, "keepalive-timeout", 0, fmt.Sprintf(
		"close a connection whose ping is not answered within this (0: %v)", d.KeepaliveTimeout))
	fs.DurationVar(&c.MaxConnectionIdle, "max-connection-idle", 0, fmt.Sprintf(
		"close a connection with no call open for this long; a following Consume is an open call (0: %v)", d.MaxConnectionIdle))
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", 0, fmt.Sprintf(
		"close a new connection that has not completed its handshake (TLS, HTTP/2 preface) within this (0: %v)", d.HandshakeTimeout))
	fs.DurationVar(&c.SlowConsumerTimeout, "slow-consumer-timeout", 0, fmt.Sprintf(
		"end a Consume stream with RESOURCE_EXHAUSTED (SLOW_CONSUMER) when its client has not read\n"+
			"for this long; until then a stalled stream holds one page of events and its encoding (0: %v)", d.SlowConsumerTimeout))
	fs.DurationVar(&c.StopGrace, "stop-grace", 0, fmt.Sprintf(
		"on SIGTERM, how long clients of ended streams may take to read their last messages before\n"+
			"their connections are closed; Produces in flight are finished regardless (0: %v)", d.StopGrace))
}

// validate reports the first flag of the group with a bad value.
func (c *limitsConfig) validate() error {
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"keepalive-min-time", c.KeepaliveMinTime}, {"keepalive-time", c.KeepaliveTime},
		{"keepalive-timeout", c.KeepaliveTimeout}, {"max-connection-idle", c.MaxConnectionIdle},
		{"handshake-timeout", c.HandshakeTimeout}, {"slow-consumer-timeout", c.SlowConsumerTimeout},
		{"stop-grace", c.StopGrace},
	} {
		if f.v < 0 {
			return fmt.Errorf("--%s %v: must not be negative (0 takes the default)", f.name, f.v)
		}
	}
	switch {
	case c.MaxInflightBytes < 0:
		return fmt.Errorf("--max-inflight-bytes %d: must not be negative (0 takes the default)", c.MaxInflightBytes)
	case c.MaxConcurrentStreams > math.MaxUint32:
		return fmt.Errorf("--max-concurrent-streams %d: must be at most %d", c.MaxConcurrentStreams, uint32(math.MaxUint32))
	case c.MaxConnections < 0:
		return fmt.Errorf("--max-connections %d: must not be negative (0 takes the default)", c.MaxConnections)
	}
	return nil
}

// apply sets the group's options in o and returns it; zero fields take
// their defaults in server.New, which also checks what depends on other
// flags (--max-inflight-bytes at least the largest request).
func (c *limitsConfig) apply(o server.Options) server.Options {
	o.MaxInflightBytes = c.MaxInflightBytes
	o.MaxConcurrentStreams = uint32(c.MaxConcurrentStreams)
	o.MaxConnections = c.MaxConnections
	o.KeepaliveMinTime = c.KeepaliveMinTime
	o.KeepaliveTime = c.KeepaliveTime
	o.KeepaliveTimeout = c.KeepaliveTimeout
	o.MaxConnectionIdle = c.MaxConnectionIdle
	o.HandshakeTimeout = c.HandshakeTimeout
	o.SlowConsumerTimeout = c.SlowConsumerTimeout
	o.StopGrace = c.StopGrace
	return o
}
