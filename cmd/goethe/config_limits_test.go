package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// The limit flags and their variables reach server.Options; zero takes the
// server's default; negative values are refused, naming the flag.
func TestLimitsFlags(t *testing.T) {
	c, err := parseConfig([]string{"--max-inflight-bytes", "100000000", "--max-concurrent-streams", "7",
		"--max-connections", "9", "--slow-consumer-timeout", "2s", "--handshake-timeout", "3s",
		"--keepalive-min-time", "4s", "--keepalive-time", "5s", "--keepalive-timeout", "6s", "--max-connection-idle", "7s"},
		env("GOETHE_STOP_GRACE", "250ms"), &bytes.Buffer{})
	require.NoError(t, err)
	o := c.limits.apply(server.Options{})
	require.Equal(t, server.Options{MaxInflightBytes: 100_000_000, MaxConcurrentStreams: 7, MaxConnections: 9,
		SlowConsumerTimeout: 2 * time.Second, HandshakeTimeout: 3 * time.Second, KeepaliveMinTime: 4 * time.Second,
		KeepaliveTime: 5 * time.Second, KeepaliveTimeout: 6 * time.Second, MaxConnectionIdle: 7 * time.Second,
		StopGrace: 250 * time.Millisecond}, o)

	c, err = parseConfig(nil, env(), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, server.Options{}, c.limits.apply(server.Options{}), "unset flags leave the server's defaults")

	for _, bad := range [][]string{
		{"--max-inflight-bytes", "-1"}, {"--max-connections", "-1"}, {"--slow-consumer-timeout", "-1s"},
		{"--stop-grace", "-1s"}, {"--handshake-timeout", "-1s"}, {"--keepalive-time", "-1s"},
	} {
		_, err := parseConfig(bad, env(), &bytes.Buffer{})
		require.ErrorContains(t, err, bad[0], "%v", bad)
	}
	var out bytes.Buffer
	_, err = parseConfig([]string{"-h"}, env(), &out)
	require.ErrorIs(t, err, errHelp)
	for _, f := range []string{"-max-inflight-bytes", "-slow-consumer-timeout", "-stop-grace", "-max-concurrent-streams", "-max-connections", "-handshake-timeout"} {
		require.Contains(t, out.String(), f)
	}
	// A budget below the largest request is refused at start.
	runFails(t, "MaxInflightBytes", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--max-inflight-bytes", "1000")
}

// A stop (SIGTERM) with followers that do not read ends them, closes their
// connections after --stop-grace, and exits 0: a cut stalled follower is
// not a failed stop. Before, the stop waited 30 s and exited 1.
func TestStopWithStalledFollowersExitsZero(t *testing.T) {
	in := launch(t, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--log-format", "json", "--stop-grace", "300ms")
	c, err := client.Dial(in.addr)
	require.NoError(t, err)
	defer c.Close()
	batch := make([]client.EventData, 1024)
	for i := range batch {
		batch[i].Payload = make([]byte, 1024)
	}
	for range 8 {
		_, err := c.Produce(context.Background(), "big", batch)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 2 {
		conn, err := grpc.NewClient(in.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		require.NoError(t, err)
		defer conn.Close()
		st, err := goethev1.NewGoetheClient(conn).Consume(ctx, &goethev1.ConsumeRequest{Topic: "big", Follow: true})
		require.NoError(t, err)
		_, err = st.Header()
		require.NoError(t, err)
	}
	require.Equal(t, exitOK, in.stop(t), in.stderr.String())
	require.Contains(t, in.stderr.String(), `"graceful":true`)
}
