package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// errInterrupted ends a command that a signal (Ctrl-C) cut short while it
// had work in flight.
var errInterrupted = errors.New("interrupted")

// explain turns a failed call's error into a message a person can act on.
// It decides by the status code and the reason of the status's
// google.rpc.ErrorInfo (goethev1.Reason*), never by the message's text:
// what a reason names (a topic, a consumer, both seqs of a conflict) is
// said from the ErrorInfo's metadata; otherwise the server's message is
// shown as it is. nil stays nil.
func explain(err error, server string) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		switch {
		case errors.Is(err, context.Canceled):
			return errInterrupted
		case errors.Is(err, context.DeadlineExceeded):
			return errors.New("timed out")
		}
		return err
	}
	msg := st.Message()
	reason, md := errorInfo(st)
	switch reason {
	case goethev1.ReasonExpectedLastSeqMismatch:
		if md["topic"] != "" && md["expected_last_seq"] != "" && md["actual_last_seq"] != "" {
			return fmt.Errorf("topic %q: expected last seq %s, actual %s; nothing was stored", md["topic"], md["expected_last_seq"], md["actual_last_seq"])
		}
		return fmt.Errorf("%s; nothing was stored", msg)
	case goethev1.ReasonTopicNotFound:
		if md["topic"] != "" {
			return fmt.Errorf("topic %q not found", md["topic"])
		}
	case goethev1.ReasonCursorNotFound:
		if md["topic"] != "" {
			return fmt.Errorf("no cursor for consumer %q on topic %q", md["consumer"], md["topic"])
		}
	case goethev1.ReasonServerStopping:
		return fmt.Errorf("the server at %s is stopping", server)
	case goethev1.ReasonStoreClosed:
		return fmt.Errorf("the server at %s has closed its store (it is stopping)", server)
	case goethev1.ReasonStoreFailed:
		return fmt.Errorf("the server at %s failed a write and takes no more until it is restarted: %s", server, msg)
	case goethev1.ReasonNotLeader:
		if md["leader_address"] != "" {
			return fmt.Errorf("the server at %s cannot forward the write to its cluster's leader %s (at %s); nothing was stored: retry there or later",
				server, md["leader_id"], md["leader_address"])
		}
		return fmt.Errorf("the server at %s knows no cluster leader (an election may be under way); nothing was stored: retry later", server)
	case goethev1.ReasonLeaderBusy:
		return fmt.Errorf("the cluster's leader is too busy to take the write; nothing was stored: retry later")
	case goethev1.ReasonOutcomeUnknown:
		return fmt.Errorf("the cluster's leader was lost before the write was known committed: it may or may not be stored (%s)", msg)
	case goethev1.ReasonTopicLimit:
		return fmt.Errorf("the server at %s cannot create another topic: %s", server, msg)
	case goethev1.ReasonDataLoss:
		return fmt.Errorf("the server at %s met damaged data (see its log): %s", server, msg)
	}
	switch st.Code() {
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition:
		return errors.New(msg) // the message names what is wrong
	case codes.ResourceExhausted:
		return fmt.Errorf("request too large for the server: %s", msg)
	case codes.Unauthenticated:
		if reason == "" { // the client's own refusal: the message says what to do
			return errors.New(strings.TrimPrefix(msg, "goethe: "))
		}
		return fmt.Errorf("the server at %s wants a valid token (--token or $%s): %s", server, tokenEnv, msg)
	case codes.PermissionDenied:
		return fmt.Errorf("the token may not do this: %s", msg)
	case codes.Unavailable:
		if cause, ok := dialFailure(msg); ok {
			if hint, ok := tlsHint(msg, cause); ok {
				return fmt.Errorf("cannot reach a goethe server at %s: %s", server, hint)
			}
			return fmt.Errorf("cannot reach a goethe server at %s: %s (start one with goethe, or name it with --server or $%s)", server, cause, serverEnv)
		}
		return fmt.Errorf("the server at %s is unavailable: %s", server, msg)
	case codes.Canceled:
		return errInterrupted
	case codes.DeadlineExceeded:
		return fmt.Errorf("timed out: %s", msg)
	}
	return fmt.Errorf("server error (%s): %s", st.Code(), msg)
}

// errorInfo returns the reason and metadata of st's google.rpc.ErrorInfo
// in goethev1.ErrorDomain, or "" and nil: statuses that gRPC makes itself
// (a connection that failed, a cancelled call) and those of a server that
// predates reasons have none.
func errorInfo(st *status.Status) (string, map[string]string) {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == goethev1.ErrorDomain {
			return info.GetReason(), info.GetMetadata()
		}
	}
	return "", nil
}

// dialFailure extracts the cause from gRPC's message for a connection that
// could not be made, such as
//
//	connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7420: connect: connection refused"
//
// This status is gRPC's own (UNAVAILABLE, without an ErrorInfo): its
// message is the only place that tells a connection that could not be made
// from a server that answered UNAVAILABLE, so it is read as text.
func dialFailure(msg string) (string, bool) {
	if !strings.Contains(msg, "dial") && !strings.Contains(msg, "connection error") && !strings.Contains(msg, "resolver") {
		return "", false
	}
	msg = strings.TrimRight(msg, `"`)
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg, true
}
