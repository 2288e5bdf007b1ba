package client

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors, matched with errors.Is against any error this package
// returns for a failed call. Each stands for the gRPC code named.
var (
	// ErrInvalidArgument (INVALID_ARGUMENT): the request broke a rule (a
	// name, an empty or oversized batch); the message says which. Nothing
	// was changed.
	ErrInvalidArgument = errors.New("goethe: invalid argument")
	// ErrNotFound (NOT_FOUND): the topic or cursor does not exist.
	ErrNotFound = errors.New("goethe: not found")
	// ErrConflict (FAILED_PRECONDITION): a conditional Produce's expected
	// last seq did not hold; the error is a *ConflictError. Nothing was
	// stored.
	ErrConflict = errors.New("goethe: expected last seq mismatch")
	// ErrTooLarge (RESOURCE_EXHAUSTED): a request exceeded a server limit,
	// such as its message size. Nothing was stored.
	ErrTooLarge = errors.New("goethe: resource exhausted")
	// ErrUnavailable (UNAVAILABLE): the server cannot be reached, is
	// stopping, or its store cannot write; retry later. A Produce that
	// failed so may or may not have been stored.
	ErrUnavailable = errors.New("goethe: unavailable")
)

var codeSentinels = map[codes.Code]error{
	codes.InvalidArgument:    ErrInvalidArgument,
	codes.NotFound:           ErrNotFound,
	codes.FailedPrecondition: ErrConflict,
	codes.ResourceExhausted:  ErrTooLarge,
	codes.Unavailable:        ErrUnavailable,
}

// Error is a failed call's error: the server's gRPC status.
type Error struct {
	st *status.Status
}

// Error returns "goethe: CODE: message".
func (e *Error) Error() string { return "goethe: " + e.st.Code().String() + ": " + e.st.Message() }

// Code is the call's gRPC status code.
func (e *Error) Code() codes.Code { return e.st.Code() }

// Message is the server's message, which names the broken rule or the
// missing thing.
func (e *Error) Message() string { return e.st.Message() }

// GRPCStatus makes status.FromError and status.Code work on the error.
func (e *Error) GRPCStatus() *status.Status { return e.st }

// Is matches the sentinel of the error's code, and context.Canceled or
// context.DeadlineExceeded for those codes.
func (e *Error) Is(target error) bool {
	switch e.st.Code() {
	case codes.Canceled:
		return target == context.Canceled
	case codes.DeadlineExceeded:
		return target == context.DeadlineExceeded
	}
	s, ok := codeSentinels[e.st.Code()]
	return ok && s == target
}

// ConflictError is the error of a conditional Produce whose expected last
// seq did not hold. errors.Is(err, ErrConflict) is true for it.
type ConflictError struct {
	// ActualLastSeq is the topic's last seq when the Produce was refused.
	ActualLastSeq uint64
	err           *Error
}

// Error returns the server's message, which states both seqs.
func (e *ConflictError) Error() string { return e.err.Error() }

// Unwrap returns the underlying *Error.
func (e *ConflictError) Unwrap() error { return e.err }

// GRPCStatus is the server's status, FAILED_PRECONDITION.
func (e *ConflictError) GRPCStatus() *status.Status { return e.err.st }

// wrapError turns a gRPC error into this package's error types; nil stays
// nil, and errors that are already this package's pass through.
func wrapError(err error) error {
	if err == nil {
		return nil
	}
	var own *Error
	if errors.As(err, &own) {
		return err // already wrapped, maybe in a *ConflictError
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	e := &Error{st: st}
	if st.Code() == codes.FailedPrecondition {
		for _, d := range st.Details() {
			info, ok := d.(*errdetails.ErrorInfo)
			if !ok || info.GetReason() != "EXPECTED_LAST_SEQ_MISMATCH" {
				continue
			}
			if n, err := strconv.ParseUint(info.GetMetadata()["actual_last_seq"], 10, 64); err == nil {
				return &ConflictError{err: e, ActualLastSeq: n}
			}
		}
	}
	return e
}
