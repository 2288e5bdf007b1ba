package main

import (
	"flag"
	"fmt"
	"math"
	"time"

	"github.com/goethe-log/goethe/server"
)

// limitsConfig holds the flags of memory budgets, stream and connection limits, keepalive, slow consumers and the stop grace period.
// Each flag's default is the server package's default of the same option
// (server.DefaultOptions), so the binary and an embedded server agree.
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
	fs.Int64Var(&c.MaxInflightBytes, "max-inflight-bytes", d.MaxInflightBytes,
		"budget of produce requests in flight, in bytes as encoded: past it a Produce answers\n"+
			"RESOURCE_EXHAUSTED (MEMORY_BUDGET) without being read; at least the largest request\n"+
			"(4 × --max-event-bytes + 64 KiB, and 64 MiB); memory held is a small multiple of it")
	fs.UintVar(&c.MaxConcurrentStreams, "max-concurrent-streams", uint(d.MaxConcurrentStreams),
		"most calls (streams included) open at once on one connection")
	fs.IntVar(&c.MaxConnections, "max-connections", d.MaxConnections,
		"most connections served at once; more wait in the listen backlog until one closes")
	fs.DurationVar(&c.KeepaliveMinTime, "keepalive-min-time", d.KeepaliveMinTime,
		"shortest keepalive ping interval a client may use; one pinging more often is disconnected")
	fs.DurationVar(&c.KeepaliveTime, "keepalive-time", d.KeepaliveTime,
		"ping a connection that has been silent this long")
	fs.DurationVar(&c.KeepaliveTimeout, "keepalive-timeout", d.KeepaliveTimeout,
		"close a connection whose ping is not answered within this")
	fs.DurationVar(&c.MaxConnectionIdle, "max-connection-idle", d.MaxConnectionIdle,
		"close a connection with no call open for this long (a following Consume is an open call)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", d.HandshakeTimeout,
		"close a new connection that has not completed its handshake (TLS, HTTP/2 preface) within this")
	fs.DurationVar(&c.SlowConsumerTimeout, "slow-consumer-timeout", d.SlowConsumerTimeout,
		"end a Consume stream with RESOURCE_EXHAUSTED (SLOW_CONSUMER) when its client has not read\n"+
			"for this long; until then a stalled stream holds one page of events and its encoding")
	fs.DurationVar(&c.StopGrace, "stop-grace", d.StopGrace,
		"on SIGTERM, how long clients of ended streams may take to read their last messages before\n"+
			"their connections are closed; Produces in flight are finished regardless")
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
		if f.v <= 0 {
			return fmt.Errorf("--%s %v: must be positive", f.name, f.v)
		}
	}
	switch {
	case c.MaxInflightBytes <= 0:
		return fmt.Errorf("--max-inflight-bytes %d: must be positive", c.MaxInflightBytes)
	case c.MaxConcurrentStreams == 0 || c.MaxConcurrentStreams > math.MaxUint32:
		return fmt.Errorf("--max-concurrent-streams %d: must be between 1 and %d", c.MaxConcurrentStreams, uint32(math.MaxUint32))
	case c.MaxConnections <= 0:
		return fmt.Errorf("--max-connections %d: must be positive", c.MaxConnections)
	}
	return nil
}

// apply sets the group's options in o and returns it. server.New checks
// what depends on other flags: --max-inflight-bytes must be at least the
// largest request, which its default grows to.
func (c *limitsConfig) apply(o server.Options) server.Options {
	o.MaxInflightBytes = c.MaxInflightBytes
	if c.MaxInflightBytes == server.DefaultMaxInflightBytes {
		o.MaxInflightBytes = 0 // the default, raised to the largest request if that is larger
	}
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
