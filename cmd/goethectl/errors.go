package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/client"
)

// errInterrupted ends a command that a signal (Ctrl-C) cut short while it
// had work in flight.
var errInterrupted = errors.New("interrupted")

// explain turns a failed call's error into a message a person can act on:
// the server's own words where they are clear, the server's address where
// it could not be reached. nil stays nil.
func explain(err error, server string) error {
	if err == nil {
		return nil
	}
	if ce := (*client.ConflictError)(nil); errors.As(err, &ce) {
		msg := serverMessage(ce) // topic "x": expected last seq 2, actual 3
		if !strings.Contains(msg, fmt.Sprintf("actual %d", ce.ActualLastSeq)) {
			msg += fmt.Sprintf(" (actual last seq %d)", ce.ActualLastSeq)
		}
		return fmt.Errorf("%s; nothing was stored", msg)
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
	switch st.Code() {
	case codes.NotFound:
		msg = strings.TrimPrefix(msg, "not found: ")
		if strings.HasPrefix(msg, "topic ") {
			return fmt.Errorf("%s not found", msg) // topic "x" not found
		}
		return errors.New(msg)
	case codes.InvalidArgument:
		return errors.New(msg)
	case codes.ResourceExhausted:
		return fmt.Errorf("request too large for the server: %s", msg)
	case codes.Unavailable:
		if strings.Contains(msg, "stopping") {
			return fmt.Errorf("the server at %s is stopping", server)
		}
		if cause, ok := dialFailure(msg); ok {
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

// serverMessage is the message of a status error without the client's
// prefix.
func serverMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// dialFailure extracts the cause from gRPC's message for a connection that
// could not be made, such as
//
//	connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7420: connect: connection refused"
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
