package server

import (
	"errors"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/store"
)

// WriteState is an ability a Log may have beside Log: the state of its
// write path, for health. *store.Store has it (see its WriteErr and
// WriteErrChanged for the contract): WriteErr is nil while writes are
// taken, an error wrapping store.ErrNoSpace while they are refused for a
// full disk (the log resumes by itself once space is freed), one wrapping
// store.ErrFailed once writes fail until a restart; WriteErrChanged's
// channel is closed at the next change.
type WriteState interface {
	WriteErr() error
	WriteErrChanged() <-chan struct{}
}

var _ WriteState = (*store.Store)(nil)

// Health, as the standard grpc.health.v1 service reports it:
//
//   - ServiceName ("goethe.v1.Goethe") is SERVING while the server serves
//     and the Log takes writes, NOT_SERVING while its write path is down
//     (a full disk; or a failed write, until a restart) and again SERVING
//     once writes resume, without a restart. A load balancer that routes
//     producers checks it.
//   - "" (the server as a whole) stays SERVING while the write path is
//     down: reads, consumes and cursor reads still work, and a restart
//     would free no space, so a liveness check must not restart the
//     process over it.
//   - In a cluster (cluster.Log), ServiceName is NOT_SERVING while the
//     node knows no leader, and SERVING again once it knows one.
//   - Stop makes both NOT_SERVING for good.
//
// watchWrites keeps ServiceName in step with the Log's WriteState, and logs
// each change with the Log's error whole (paths and all: the statuses that
// clients get carry none). It returns when Stop begins; it does nothing
// for a Log without WriteState.
func (s *Server) watchWrites() {
	ws, ok := s.log.(WriteState)
	if !ok {
		return
	}
	// The first state is set before New returns, so that no health check
	// ever sees SERVING for a log whose writes are already down.
	changed := ws.WriteErrChanged()
	last := ws.WriteErr()
	s.setWriteHealth(nil, last)
	go func() {
		for {
			select {
			case <-changed:
			case <-s.base.Done():
				return
			}
			changed = ws.WriteErrChanged()
			err := ws.WriteErr()
			s.setWriteHealth(last, err)
			last = err
		}
	}()
}

// setWriteHealth reports ServiceName's health for the write state err, and
// logs a change from was. After Stop the health server ignores it.
func (s *Server) setWriteHealth(was, err error) {
	s.opts.Metrics.observeWritesUp(err == nil)
	log := s.opts.Logger
	switch {
	case err == nil:
		s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
		switch {
		case errors.Is(was, cluster.ErrNotLeader):
			log.Info("cluster leader known: writes are taken, and health of " + ServiceName + " is SERVING")
		case was != nil:
			log.Info("writes resumed: health of " + ServiceName + " is SERVING again")
		}
	case errors.Is(err, cluster.ErrNotLeader):
		s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
		if errors.Is(was, cluster.ErrNotLeader) {
			return // said already; a cluster's wake-ups may repeat a state
		}
		log.Warn("no cluster leader known: writes are refused (UNAVAILABLE, NOT_LEADER) and health of "+ServiceName+
			" is NOT_SERVING until one is elected; reads go on", "error", err)
	case errors.Is(err, store.ErrNoSpace):
		s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
		log.Error("disk full: writes are refused (RESOURCE_EXHAUSTED, DISK_FULL) and health of "+ServiceName+
			" is NOT_SERVING until space is freed; reads go on", "error", err)
	default:
		s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
		log.Error("writes failed: every write fails until the server restarts; health of "+ServiceName+
			" is NOT_SERVING; reads go on", "error", err)
	}
}
