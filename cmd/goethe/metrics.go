package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/goethe-log/goethe/server"
)

// metricsPath is where --metrics-listen serves the metrics.
const metricsPath = "/metrics"

// metricsServer serves a server's Prometheus metrics over HTTP on a
// listener of its own, apart from gRPC.
type metricsServer struct {
	http *http.Server
	// done receives Serve's result: http.ErrServerClosed after stop, or
	// the error that made accepting fail.
	done chan error
}

// startMetrics serves m at metricsPath on lis until stop; other paths are
// not found. Errors of the HTTP server itself go to log.
func startMetrics(lis net.Listener, m *server.Metrics, log *slog.Logger) *metricsServer {
	mux := http.NewServeMux()
	mux.Handle("GET "+metricsPath, m.Handler())
	ms := &metricsServer{
		http: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done: make(chan error, 1),
	}
	go func() { ms.done <- ms.http.Serve(lis) }()
	return ms
}

// failed returns a channel that receives the error that made the server
// stop accepting; nil (which never receives) for a nil server.
func (ms *metricsServer) failed() <-chan error {
	if ms == nil {
		return nil
	}
	return ms.done
}

// stop closes the listener and lets scrapes in flight finish until ctx
// ends, then cuts them. A nil server is a no-op.
func (ms *metricsServer) stop(ctx context.Context) {
	if ms == nil {
		return
	}
	if err := ms.http.Shutdown(ctx); err != nil {
		_ = ms.http.Close()
	}
}
