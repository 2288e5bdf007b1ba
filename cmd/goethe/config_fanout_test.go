package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/server"
)

// --fanout-senders (or GOETHE_FANOUT_SENDERS) reaches
// server.Options.FanoutSenders; unset, the server's default applies; 1 is
// the smallest; a negative value is refused at startup, naming the flag.
func TestFanoutFlag(t *testing.T) {
	c, err := parseConfig([]string{"--fanout-senders", "3"}, env(), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 3, c.fanout.apply(server.Options{}).FanoutSenders)

	c, err = parseConfig(nil, env("GOETHE_FANOUT_SENDERS", "1"), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 1, c.fanout.apply(server.Options{}).FanoutSenders)

	c, err = parseConfig(nil, env(), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, server.Options{}, c.fanout.apply(server.Options{}), "unset: the server's default")

	for _, bad := range []string{"-1", "many"} {
		_, err := parseConfig([]string{"--fanout-senders", bad}, env(), &bytes.Buffer{})
		require.ErrorContains(t, err, "fanout-senders", bad)
	}
	runFails(t, "--fanout-senders -1", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--fanout-senders", "-1")

	c, err = parseConfig([]string{"--fanout-solo", "--fanout-linger", "2ms"}, env(), &bytes.Buffer{})
	require.NoError(t, err)
	o := c.fanout.apply(server.Options{})
	require.True(t, o.FanoutSolo)
	require.Equal(t, 2*time.Millisecond, o.FanoutLinger)
	c, err = parseConfig(nil, env("GOETHE_FANOUT_SOLO", "true", "GOETHE_FANOUT_LINGER", "-1ns"), &bytes.Buffer{})
	require.NoError(t, err)
	o = c.fanout.apply(server.Options{})
	require.True(t, o.FanoutSolo)
	require.Equal(t, -time.Nanosecond, o.FanoutLinger)
	_, err = parseConfig([]string{"--fanout-linger", "soon"}, env(), &bytes.Buffer{})
	require.ErrorContains(t, err, "fanout-linger")
	c, err = parseConfig([]string{"--fanout-linger", server.MaxFanoutLinger.String()}, env(), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, server.MaxFanoutLinger, c.fanout.apply(server.Options{}).FanoutLinger)
	_, err = parseConfig([]string{"--fanout-linger", (server.MaxFanoutLinger + time.Nanosecond).String()}, env(), &bytes.Buffer{})
	require.ErrorContains(t, err, "--fanout-linger")

	var out bytes.Buffer
	_, err = parseConfig([]string{"-h"}, env(), &out)
	require.ErrorIs(t, err, errHelp)
	require.Contains(t, out.String(), "-fanout-senders")
	require.Contains(t, out.String(), "-fanout-solo")
	require.Contains(t, out.String(), "-fanout-linger")
}
