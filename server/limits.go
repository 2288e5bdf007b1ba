package server

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// keepaliveEnforcement is the gRPC server option of the pings the server
// tolerates from clients: no closer than KeepaliveMinTime, and allowed
// without an open call (a client that keeps an idle connection warm is no
// abuse).
func keepaliveEnforcement(o *Options) grpc.ServerOption {
	return grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
		MinTime:             o.KeepaliveMinTime,
		PermitWithoutStream: true,
	})
}

// keepaliveParams is the gRPC server option of the server's own pings of a
// silent connection, and of closing idle ones.
func keepaliveParams(o *Options) grpc.ServerOption {
	return grpc.KeepaliveParams(keepalive.ServerParameters{
		MaxConnectionIdle: o.MaxConnectionIdle,
		Time:              o.KeepaliveTime,
		Timeout:           o.KeepaliveTimeout,
	})
}

// admitUnary is the unary interceptor of admission. It answers a request
// the codec refused (see the admission mark) without calling the handler,
// and gives back the in-flight budget an admitted Produce took once its
// handler has returned (the append has completed then, or the call was
// cancelled). It must run before any interceptor that may refuse a call,
// or a refused Produce would keep its budget.
func (s *Server) admitUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	mk := readMark(req)
	if mk.err != nil {
		return nil, toStatus(mk.err)
	}
	defer s.budget.release(mk.held)
	if !isServiceMethod(info.FullMethod) {
		return handler(ctx, req)
	}
	s.calls.add(1)
	defer s.calls.add(-1)
	return handler(ctx, req)
}

// isServiceMethod reports whether method is one of the Goethe service's,
// whose calls Stop waits for.
func isServiceMethod(method string) bool {
	return strings.HasPrefix(method, "/"+ServiceName+"/")
}

// callTracker counts the Goethe service's calls whose handler is running,
// so that Stop knows when only connections of ended streams are left.
type callTracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n reaches 0; nil while nobody waits
}

func (c *callTracker) add(d int) {
	c.mu.Lock()
	c.n += d
	if c.n == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
	c.mu.Unlock()
}

// whenIdle returns a channel closed once no call is running.
func (c *callTracker) whenIdle() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	return c.idle
}

// awaitStop waits for a graceful stop whose GracefulStop closes done. A
// ProduceStream answers the requests it has taken during the grace period
// (Options.StopGrace); past it, a Send still waiting for its client gives
// up (graceOver), so a client that does not read holds no handler. A
// stream that Stop has ended may still hold its connection while its
// client does not read its last message (its trailers wait behind data
// that HTTP/2 flow control holds back), and GracefulStop waits for every
// connection. So after the grace period, once no call of the service is
// running, awaitStop closes the connections (grpc.Server.Stop): nothing
// acknowledged is cut, and the stop is still graceful. If ctx ends before
// the calls do, it closes them all the same and reports false: calls were
// cut.
func (s *Server) awaitStop(ctx context.Context, done <-chan struct{}) (graceful bool) {
	grace := time.NewTimer(s.opts.StopGrace)
	defer grace.Stop()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		close(s.graceOver)
		s.grpc.Stop()
		<-done
		return false
	case <-grace.C:
		close(s.graceOver) // Sends still waiting for their clients give up
	}
	select {
	case <-done:
		return true
	case <-s.calls.whenIdle():
		s.opts.Logger.Info("closing the connections of clients that do not read, past the stop grace period", "grace", s.opts.StopGrace)
		s.grpc.Stop()
		<-done
		return true
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return false
	}
}

// limitListener accepts at most n connections open at once: Accept waits
// for a connection to close before taking another, so the ones beyond
// wait in the kernel's listen backlog. (golang.org/x/net/netutil's
// LimitListener, without the dependency.)
type limitListener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for room, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

// Close closes the listener and wakes an Accept waiting for room.
func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.done) })
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and gives its room back, once.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
