package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/server"
	"github.com/goethe-log/goethe/store"
)

// stopTimeout bounds a graceful stop: past it, calls still running are cut.
const stopTimeout = 30 * time.Second

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the server could not start or failed
	exitUsage = 2 // bad flags or environment
)

// run is the whole program but for the process: it parses the
// configuration, opens the data folder, serves until ctx ends (main cancels
// it on SIGINT or SIGTERM), then stops gracefully. Errors are one line on
// stderr. ready, if not nil, is called with the listening address once the
// server accepts connections.
func run(ctx context.Context, args []string, getenv func(string) (string, bool), stderr io.Writer, ready func(net.Addr)) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, errHelp) {
		printSubcommands(stderr)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "goethe: %v\n", err)
		return exitUsage
	}
	log := newLogger(cfg.LogFormat, stderr)
	if err := serve(ctx, cfg, log, ready); err != nil {
		fmt.Fprintf(stderr, "goethe: %v\n", err)
		return exitError
	}
	return exitOK
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// serve opens the store, listens, and serves until ctx ends. It owns the
// store: it closes it on every path, after the server has stopped.
func serve(ctx context.Context, cfg config, log *slog.Logger, ready func(net.Addr)) (err error) {
	restrictFileModes()
	sec, err := cfg.security.load(log)
	if err != nil {
		return err
	}
	defer sec.close()
	engineDir, initialized, err := prepareDataDir(cfg.DataDir, cfg.Engine)
	if err != nil {
		return diskFullAtStart(cfg.DataDir, err)
	}
	eng, err := engines.Open(cfg.Engine, engineDir)
	if errors.Is(err, engine.ErrLocked) {
		return fmt.Errorf("data folder %s is in use by another goethe process (%s holds its lock)", cfg.DataDir, cfg.Engine)
	}
	if err != nil {
		return diskFullAtStart(cfg.DataDir, fmt.Errorf("open %s data in %s: %w", cfg.Engine, engineDir, err))
	}
	sopts := store.DefaultOptions()
	sopts.UnsafeNoSync = !cfg.Sync
	sopts.MustExist = initialized
	cfg.dedupe.storeOptions(&sopts)                                                   // config_dedupe.go
	minFree, err := cfg.disk.storeOptions(&sopts, cfg.Engine, cfg.DataDir, engineDir) // config_disk.go
	if err != nil {
		_ = eng.Close()
		return err
	}
	cfg.retention.storeOptions(&sopts) // config_retention.go
	if cfg.cluster.enabled() {
		cfg.cluster.storeOptions(&sopts, cfg.Engine) // config_cluster.go
	}
	var metrics *server.Metrics
	if cfg.MetricsListen != "" {
		metrics = server.NewMetrics(server.MetricsOptions{Engine: cfg.Engine})
		sopts.Observer = metrics // only here: a nil *Metrics would be a non-nil interface
	}
	st, err := store.Open(eng, sopts)
	if err != nil {
		_ = eng.Close()
		return diskFullAtStart(cfg.DataDir, fmt.Errorf("open data folder %s: %w", cfg.DataDir, err))
	}
	if !initialized {
		if err := markInitialized(cfg.DataDir, cfg.Engine); err != nil {
			_ = st.Close()
			return diskFullAtStart(cfg.DataDir, err)
		}
	}
	// Runs last: every path out of serve has stopped the server (or never
	// started it) by then, so no call uses the store.
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close data folder %s: %w", cfg.DataDir, cerr)
		}
	}()
	if err := cfg.cluster.checkMode(cfg.DataDir, st); err != nil { // config_cluster.go
		return err
	}
	var logServed server.Log = st
	var node *cluster.Node
	if cfg.cluster.enabled() {
		n, clog, oerr := cfg.cluster.open(cfg.DataDir, cfg.Listen, st, log, &cfg.security) // config_cluster.go
		if oerr != nil {
			return oerr
		}
		node = n
		// Runs before the store's close, after the server's stop: the
		// node stops applying before its store closes.
		defer func() {
			cerr := errors.Join(clog.Close(), node.Close())
			if cerr != nil && err == nil {
				err = cerr
			}
		}()
		logServed = clog
	}
	srv, err := server.New(logServed, cfg.fanout.apply(cfg.limits.apply(server.Options{ // config_fanout.go, config_limits.go
		MaxEventBytes:  cfg.MaxEventBytes,
		MaxBatchEvents: cfg.MaxBatchEvents,
		Logger:         log,
		Metrics:        metrics,
		TLS:            sec.tls,
		Auth:           sec.auth,
	})))
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", cfg.Listen, unwrapOpError(err))
	}
	var mlis net.Listener
	if metrics != nil {
		if mlis, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			_ = lis.Close()
			return fmt.Errorf("--metrics-listen %s: %w", cfg.MetricsListen, unwrapOpError(err))
		}
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		abs = cfg.DataDir
	}
	attrs := []any{"engine", cfg.Engine, "data_dir", abs, "listen", lis.Addr().String(),
		"sync", cfg.Sync, "max_event_bytes", srv.Options().MaxEventBytes, "max_batch_events", srv.Options().MaxBatchEvents,
		"min_free_bytes", minFree}
	var ms *metricsServer
	if mlis != nil {
		attrs = append(attrs, "metrics", sec.metricsURL(mlis.Addr()))
		ms = startMetrics(sec.metricsListener(mlis), metrics, log)
	}
	attrs = append(attrs, sec.logAttrs()...)
	if cfg.cluster.enabled() {
		attrs = append(attrs, "node_id", cfg.cluster.NodeID, "raft_listen", cfg.cluster.RaftListen)
	}
	log.Info("goethe serving", attrs...)
	if cfg.cluster.enabled() && !cfg.Sync {
		log.Warn("--sync=false has no effect in cluster mode: every Raft log entry is fsynced (raft-wal) before it counts toward a commit")
	}
	var maddr net.Addr
	if mlis != nil {
		maddr = mlis.Addr()
	}
	cfg.security.warnExposed(log, lis.Addr(), maddr)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	if ready != nil {
		ready(lis.Addr())
	}
	select {
	case err := <-served:
		// Accepting failed: nothing else ends Serve before Stop.
		ms.stop(context.Background())
		_ = srv.Stop(context.Background())
		return fmt.Errorf("serve: %w", err)
	case err := <-ms.failed():
		_ = srv.Stop(context.Background())
		<-served
		return fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	log.Info("goethe stopping: finishing calls in flight", "timeout", stopTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if node != nil {
		// Before the server stops: the writes in flight here, and those
		// the followers forward, go to the new leader instead of failing.
		hctx, hcancel := context.WithTimeout(sctx, handOverTimeout)
		if herr := node.HandOver(hctx); herr != nil {
			log.Warn("leadership not handed over before stopping: the others elect a leader after their election timeout", "error", herr)
		}
		hcancel()
	}
	err = srv.Stop(sctx)
	if serr := <-served; serr != nil && err == nil {
		err = serr
	}
	// The metrics stop last, so that the graceful stop can be watched.
	ms.stop(sctx)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	log.Info("goethe stopped")
	return nil
}

// handOverTimeout bounds the leadership handover of a stopping cluster
// member: a few heartbeats normally, an election timeout at worst.
const handOverTimeout = 3 * time.Second

// unwrapOpError shortens "listen tcp 127.0.0.1:7420: bind: address already
// in use" to "bind: address already in use": the caller names the address.
func unwrapOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}
