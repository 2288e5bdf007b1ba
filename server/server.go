// Package server serves a Log (a *store.Store, or any log with its
// contract) over gRPC as the goethe.v1.Goethe service (spec/goethe/v1),
// with grpc-go's standard health service and server reflection registered
// beside it. The server does not own the Log: whoever opened it closes it
// once Stop has returned.
//
// # Guarantees
//
//   - Every error a handler returns is a gRPC status made by one mapping
//     (toStatus, over codeTable), matched by errors.Is and errors.As, never
//     by message text. Each carries a google.rpc.ErrorInfo in
//     goethev1.ErrorDomain whose reason (a goethev1.Reason* constant) names
//     the condition: INVALID_ARGUMENT names the broken rule or limit,
//     NOT_FOUND the missing topic or cursor (metadata "topic", "consumer"),
//     FAILED_PRECONDITION carries the topic's actual last seq,
//     RESOURCE_EXHAUSTED when the topic ids are used up or the disk is
//     full (DISK_FULL: writes resume by themselves once space is freed,
//     and health says when, see watchWrites), UNAVAILABLE while
//     the server stops or the log is closed or failed (STORE_FAILED: a
//     failed write fails its whole group with one status, and every write
//     after it), INTERNAL for the rest (logged). CANCELED and
//     DEADLINE_EXCEEDED, for a call whose client gave up, carry none, as
//     gRPC's own; neither does the RESOURCE_EXHAUSTED of gRPC's message
//     size limit, which gRPC answers before a handler runs. No status
//     message carries a path of the server's data folder (see
//     redactPaths); the server logs such errors whole.
//   - With Options.Auth, every call of the Goethe service is checked
//     before its handler runs (see Auth): UNAUTHENTICATED without a bearer
//     token the server knows, PERMISSION_DENIED without the permission the
//     call needs on its topic, so that a refused call learns nothing of the
//     topic; health checks and reflection stay open. With Options.TLS the
//     server speaks only TLS (mutual TLS when the config asks for client
//     certificates).
//   - A request that fails validation changes nothing.
//   - A Consume stream holds at most one page of events (Options.
//     ConsumePageEvents, and the store's page bounds) for its reader and
//     sends page by page, so a slow reader is held back by gRPC's flow
//     control rather than buffered. A following stream waits with
//     store.Wait: nothing polls.
//   - No goroutine is started or parked per request: a unary Produce waits
//     in Log.Append on its handler's goroutine; a ProduceStream hands each
//     request to Log.AppendAsync from its receive loop, in the order
//     received, and answers in one message every request that one commit
//     completed when the client asks for batched answers (see
//     ProduceStream).
//   - Stop is graceful: it stops accepting, ends streams, and lets
//     in-flight Produces finish and acknowledge; it leaves the Log open. A
//     client that does not read holds it for Options.StopGrace at most.
//   - Memory is bounded before requests are materialised: the codec
//     checks a Produce's event count and sizes on its encoded bytes, and
//     takes its encoded size from a server-wide budget of in-flight
//     produce bytes (Options.MaxInflightBytes; RESOURCE_EXHAUSTED,
//     MEMORY_BUDGET past it) until its append completes; while that
//     budget is exhausted, new Produce and ProduceStream calls are refused
//     before any of their bytes is read (the door, admission.go, which
//     states the bound exactly); calls per
//     connection, connections, handshakes and keepalive are capped; a
//     Consume stream whose client has not read for
//     Options.SlowConsumerTimeout ends with RESOURCE_EXHAUSTED
//     (SLOW_CONSUMER). See admission.go and limits.go.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// ServiceName is the full name of the Goethe service, as health checks and
// reflection know it.
const ServiceName = "goethe.v1.Goethe"

// Server is a gRPC server of one Log. Create it with New, run it with
// Serve, end it with Stop. Its methods are safe for concurrent use.
type Server struct {
	log    Log
	opts   Options
	grpc   *grpc.Server
	health *health.Server

	// base is cancelled by Stop: streams derive their context from it, so
	// that following Consume streams and health watches end and
	// GracefulStop can complete.
	base   context.Context
	cancel context.CancelCauseFunc

	stopOnce sync.Once
	stopErr  error

	storeFailed sync.Once // logs the first STORE_FAILED

	budget budget // in-flight produce bytes (admission.go)
	// doorRefusal is the status of a produce call refused at the door.
	doorRefusal error
	calls       callTracker // running calls of the service, for Stop (limits.go)
	// graceOver is closed when Stop's grace period ends (awaitStop).
	graceOver chan struct{}
	// fanout bounds the Consume streams sending a tail delivery at once
	// (fanout_gate.go).
	fanout *fanoutGate
	// rounds are the topics' groups of followers at their end
	// (consume_rounds.go); nil when Options.FanoutSolo.
	rounds *tailGroups
	// loops counts the Consume streams' loop goroutines: Stop waits for
	// them, so that none reads the log after it returns (a loop may
	// outlive its handler while it leads a round).
	loops sync.WaitGroup
}

// New returns a Server of log with the given options (zero fields take
// their defaults). The caller keeps log: it must stay open until Stop has
// returned, and the caller closes it then; the Server never does. New
// fails only for inconsistent options.
func New(log Log, opts Options) (*Server, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	base, cancel := context.WithCancelCause(context.Background())
	s := &Server{log: log, opts: opts, base: base, cancel: cancel, health: health.NewServer()}
	s.budget.limit = opts.MaxInflightBytes
	s.doorRefusal = doorRefusalStatus(opts.MaxInflightBytes)
	s.graceOver = make(chan struct{})
	s.fanout = newFanoutGate(opts.FanoutSenders, opts.FanoutSendLease)
	if !opts.FanoutSolo {
		s.rounds = newTailGroups(log, opts.ConsumePageEvents, opts.FanoutSendLease, max(opts.FanoutLinger, 0), opts.Metrics)
	}
	// Metrics, when on, are the outermost interceptors: they time and count
	// every call as its client sees it.
	streamInterceptors := []grpc.StreamServerInterceptor{s.streamInterceptor}
	var unaryInterceptors []grpc.UnaryServerInterceptor
	if m := opts.Metrics; m != nil {
		m.bind(log)
		streamInterceptors = append([]grpc.StreamServerInterceptor{m.streamInterceptor}, streamInterceptors...)
		unaryInterceptors = append(unaryInterceptors, m.unaryInterceptor)
	}
	var transport grpc.ServerOption = grpc.EmptyServerOption{} // plaintext
	if opts.TLS != nil {
		transport = grpc.Creds(credentials.NewTLS(opts.TLS))
	}
	// Admission runs first inside metrics, before any interceptor that
	// may refuse a call: it gives back the memory budget a request took
	// when it was decoded (see admitUnary).
	unaryInterceptors = slices.Insert(unaryInterceptors, min(1, len(unaryInterceptors)), s.admitUnary)
	// Auth runs before any handler work, inside metrics and admission:
	// refused calls are counted by their code, and give back the budget
	// their request took.
	if a := opts.Auth; a != nil {
		g := &authGuard{auth: a, budget: &s.budget, log: log}
		streamInterceptors = slices.Insert(streamInterceptors, len(streamInterceptors)-1, g.streamInterceptor)
		unaryInterceptors = append(unaryInterceptors, g.unaryInterceptor)
	}
	s.grpc = grpc.NewServer(
		transport,
		grpc.MaxRecvMsgSize(opts.MaxRequestBytes),
		grpc.ChainStreamInterceptor(streamInterceptors...),
		grpc.ChainUnaryInterceptor(unaryInterceptors...),
		// Stop waits for handlers even when it has to cut connections, so
		// that once it returns no handler uses the Log, which its owner
		// may then close.
		grpc.WaitForHandlers(true),
		grpc.InitialWindowSize(windowSize),
		grpc.InitialConnWindowSize(windowSize),
		grpc.WriteBufferSize(ioBufferSize),
		grpc.ReadBufferSize(ioBufferSize),
		// Pooled encode buffers sized to the message (see wire.Codec), and
		// admission before a request is materialised (see serverCodec).
		grpc.ForceServerCodecV2(&serverCodec{budget: &s.budget, maxEvents: opts.MaxBatchEvents, maxEventBytes: opts.MaxEventBytes}),
		// Produce calls refused before a byte of them is read while the
		// budget is exhausted (see the door in admission.go).
		grpc.InTapHandle(s.door),
		grpc.MaxConcurrentStreams(opts.MaxConcurrentStreams),
		grpc.ConnectionTimeout(opts.HandshakeTimeout),
		keepaliveEnforcement(&opts),
		keepaliveParams(&opts),
		// Handlers run on long-lived goroutines whose stacks have already
		// grown, instead of a new goroutine per call (more goroutines are
		// started when all are busy, e.g. with following streams).
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
	)
	goethev1.RegisterGoetheServer(s.grpc, &service{s: s, log: log})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	if opts.Metrics != nil {
		opts.Metrics.initMethods(s.grpc)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	s.watchWrites() // health.go: NOT_SERVING while the Log's writes are down
	return s, nil
}

// Transport tuning, measured on loopback with Consume batches of 1000
// events. A fixed HTTP/2 window of 4 MiB per stream and per connection
// lets a stream keep a few batches in flight (the default starts at 64 KiB
// and grows with bandwidth estimates); it is also the most a slow reader
// can have queued in the transport. 256 KiB socket buffers take a batch in
// one write.
const (
	windowSize   = 4 << 20
	ioBufferSize = 256 << 10
)

// Options returns the options in force, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// Serve accepts connections on lis until Stop. It returns nil after Stop,
// or the error that made accepting fail. lis is closed when Serve returns.
func (s *Server) Serve(lis net.Listener) error {
	err := s.grpc.Serve(newLimitListener(lis, s.opts.MaxConnections))
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop stops the server gracefully: health checks report NOT_SERVING, the
// listeners close, every Consume stream and health watch ends (Consume with
// UNAVAILABLE), and in-flight Produce and cursor calls run to completion
// and are acknowledged (a ProduceStream answers every request it has taken,
// then ends with UNAVAILABLE). If ctx ends first, the remaining calls are
// cancelled (their clients see an error, and a Produce so cut may or may
// not have been stored) and Stop reports ctx's error. Either way, when Stop
// returns no handler uses the Log any more and no append of the server is
// waiting in it: the Log's owner may close it. Stop does not close it. A
// Consume stream whose client has stopped reading ends at once all the
// same (its pending Send is abandoned, see consumeSender), but its last
// messages hold its connection: after Options.StopGrace, once no call of
// the service is running, Stop closes such connections, and the stop
// still counts as graceful (nil). Stop is idempotent; later calls return
// the first one's result.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.health.Shutdown()
		s.cancel(errStopping)
		done := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(done)
		}()
		var errs []error
		if !s.awaitStop(ctx, done) {
			errs = append(errs, fmt.Errorf("server: graceful stop cut short: %w", ctx.Err()))
		}
		// Every stream has ended, so every loop ends at once, a leader
		// of a round once its Send to an ended stream returns.
		s.loops.Wait()
		s.stopErr = errors.Join(errs...)
		s.opts.Logger.Info("server stopped", "graceful", len(errs) == 0)
	})
	return s.stopErr
}

// streamInterceptor gives every streaming call a context that also ends
// when Stop begins, with errStopping as its cause.
func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	stop := context.AfterFunc(s.base, func() { cancel(errStopping) })
	defer stop()
	if isServiceMethod(info.FullMethod) {
		s.calls.add(1)
		defer s.calls.add(-1)
	}
	return handler(srv, &stoppableStream{ServerStream: ss, ctx: ctx})
}

type stoppableStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context is the call's context, which also ends when Stop begins.
func (s *stoppableStream) Context() context.Context { return s.ctx }

// RecvMsg receives a message and fails the call with the status of the
// codec's refusal if it refused it (see the admission mark). A
// ProduceStreamRequest is left to the ProduceStream session, which answers
// a refused request and goes on.
func (s *stoppableStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if _, ok := m.(*goethev1.ProduceStreamRequest); ok {
		return nil
	}
	if mk := readMark(m); mk.err != nil {
		return toStatus(mk.err)
	}
	return nil
}
