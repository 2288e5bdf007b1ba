package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
)

func TestParseConfigMetricsListen(t *testing.T) {
	c, err := parseConfig(nil, env(), &bytes.Buffer{})
	require.NoError(t, err)
	require.Empty(t, c.MetricsListen, "metrics are off by default")
	c, err = parseConfig(nil, env("GOETHE_METRICS_LISTEN", "127.0.0.1:9420"), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9420", c.MetricsListen)
	c, err = parseConfig([]string{"--metrics-listen", ":9421"}, env("GOETHE_METRICS_LISTEN", "127.0.0.1:9420"), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, ":9421", c.MetricsListen, "the flag wins")
}

// get fetches url and returns the status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func TestServeMetrics(t *testing.T) {
	in := launch(t, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json")
	var start map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(in.stderr.String(), "\n", 2)[0]), &start))
	url, _ := start["metrics"].(string)
	require.True(t, strings.HasPrefix(url, "http://127.0.0.1:") && strings.HasSuffix(url, "/metrics"), "the start line names the metrics URL: %v", start)

	c, err := client.Dial(in.addr)
	require.NoError(t, err)
	defer c.Close()
	topics := []string{"invoices-91ab", "shipments-4cd2"}
	for _, topic := range topics {
		_, err := c.Produce(context.Background(), topic, []client.EventData{{Payload: []byte("x")}, {Payload: []byte("y")}})
		require.NoError(t, err)
	}

	code, body := get(t, url)
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`goethe_store_appended_events_total{engine="leveldb"} 4`,
		`goethe_grpc_server_handled_total{grpc_code="OK",grpc_method="/goethe.v1.Goethe/Produce",grpc_type="unary"} 2`,
		"goethe_consume_open_streams 0",
		"goethe_build_info{commit=",
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		require.Contains(t, body, want)
	}
	for _, topic := range topics {
		require.NotContains(t, body, topic, "no metric names a topic")
	}
	code, _ = get(t, strings.TrimSuffix(url, "/metrics")+"/")
	require.Equal(t, http.StatusNotFound, code, "only /metrics is served")

	// A graceful stop stops the metrics too.
	require.Equal(t, 0, in.stop(t))
	_, err = http.Get(url)
	require.Error(t, err)
}

func TestMetricsListenBusy(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "data")
	runFails(t, "--metrics-listen "+busy.Addr().String()+": bind: address already in use",
		"--data-dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", busy.Addr().String())
	// The failed start left the folder usable.
	in := launch(t, "--data-dir", dir, "--listen", "127.0.0.1:0")
	require.Equal(t, 0, in.stop(t))
}
