package client

import (
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// Following the cluster's leader. A cluster member that cannot take a
// write, nor forward it to the leader (it does not know the leader's
// client address, or cannot reach it), answers UNAVAILABLE with reason
// NOT_LEADER and, when it knows it, the leader's client address in the
// metadata "leader_address". Nothing was stored then, so Client.Produce
// retries the call once, at once, against that address, on a connection it
// dials with the options of Dial (kept for later redirects, closed by
// Close). It never retries any other error: OUTCOME_UNKNOWN in particular
// means the write may be stored, and a retry could store it twice. A Client
// made by New has no dial options, and does not follow the hint: the
// NOT_LEADER error is returned, with the address in Error.Metadata.

// leaderRedirect dials, and keeps, the connections to leaders that servers
// named in NOT_LEADER answers.
type leaderRedirect struct {
	dial func(addr string) (*grpc.ClientConn, error)

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// leaderHint returns the leader's client address of a NOT_LEADER error, or
// "" for any other error.
func leaderHint(err error) string {
	var e *Error
	if !errors.As(err, &e) || e.Code() != codes.Unavailable || e.Reason() != goethev1.ReasonNotLeader {
		return ""
	}
	return e.Metadata()["leader_address"]
}

// conn returns the connection to addr, dialled on first use.
func (r *leaderRedirect) conn(addr string) (*grpc.ClientConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, status.Error(codes.Canceled, "goethe: client closed")
	}
	if c := r.conns[addr]; c != nil {
		return c, nil
	}
	c, err := r.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("goethe: dial the leader at %s: %w", addr, err)
	}
	if r.conns == nil {
		r.conns = map[string]*grpc.ClientConn{}
	}
	r.conns[addr] = c
	return c, nil
}

// close closes the leaders' connections.
func (r *leaderRedirect) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var errs []error
	for _, c := range r.conns {
		errs = append(errs, c.Close())
	}
	r.conns = nil
	return errors.Join(errs...)
}
