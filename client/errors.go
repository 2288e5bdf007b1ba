package client

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
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
	// ErrTooLarge (RESOURCE_EXHAUSTED): a request exceeded a limit or a
	// resource of the server; Error.Reason says which. LIMIT_EXCEEDED (a
	// limit, such as the message size) and MEMORY_BUDGET (the server's
	// in-flight bytes; retry later) stored nothing. DISK_FULL: the server's
	// volume is full or below its free-space reserve; most such requests
	// stored nothing, but the one whose engine write met the full disk may
	// or may not be stored, as after a crash. SLOW_CONSUMER ends a Consume
	// stream whose client stopped reading.
	ErrTooLarge = errors.New("goethe: resource exhausted")
	// ErrUnavailable (UNAVAILABLE): the server cannot be reached, is
	// stopping, or its store cannot write; retry later. A Produce that
	// failed so may or may not have been stored.
	ErrUnavailable = errors.New("goethe: unavailable")
	// ErrUnauthenticated (UNAUTHENTICATED): the server wants a bearer token
	// (WithToken) and the call carried none, or one it does not know; or
	// the client would not send its token in plaintext to an address that
	// is not loopback.
	ErrUnauthenticated = errors.New("goethe: unauthenticated")
	// ErrPermissionDenied (PERMISSION_DENIED): the token lacks the
	// permission the call needs on its topic. Nothing was changed.
	ErrPermissionDenied = errors.New("goethe: permission denied")
)

var codeSentinels = map[codes.Code]error{
	codes.InvalidArgument:    ErrInvalidArgument,
	codes.NotFound:           ErrNotFound,
	codes.FailedPrecondition: ErrConflict,
	codes.ResourceExhausted:  ErrTooLarge,
	codes.Unavailable:        ErrUnavailable,
	codes.Unauthenticated:    ErrUnauthenticated,
	codes.PermissionDenied:   ErrPermissionDenied,
}

// Error is a failed call's error: the server's gRPC status and, when the
// status carries one, its google.rpc.ErrorInfo in goethev1.ErrorDomain,
// which names the condition (Reason) and its particulars (Metadata).
// Errors the client makes itself (a request it refuses to send) carry a
// reason too, the one the server would have given.
type Error struct {
	st   *status.Status
	info *errdetails.ErrorInfo // nil: no detail in goethev1.ErrorDomain
}

// newError is an error of the client's own making with code and reason.
func newError(code codes.Code, reason string, format string, args ...any) *Error {
	info := &errdetails.ErrorInfo{Domain: goethev1.ErrorDomain, Reason: reason}
	st := status.Newf(code, format, args...)
	if d, err := st.WithDetails(info); err == nil {
		st = d
	}
	return &Error{st: st, info: info}
}

// Error returns "goethe: CODE: message".
func (e *Error) Error() string { return "goethe: " + e.st.Code().String() + ": " + e.st.Message() }

// Code is the call's gRPC status code.
func (e *Error) Code() codes.Code { return e.st.Code() }

// Message is the server's message, which names the broken rule or the
// missing thing. It is for people: branch on Code and Reason instead.
func (e *Error) Message() string { return e.st.Message() }

// Reason is the reason of the status's google.rpc.ErrorInfo detail in
// goethev1.ErrorDomain (one of the goethev1.Reason* constants, or a newer
// one), or "" when it has none: a server that predates reasons, or a
// status made by gRPC itself (a connection that failed, a cancelled call).
// A reason refines the code; a caller that does not know a reason acts on
// the code.
func (e *Error) Reason() string { return e.info.GetReason() }

// Metadata is the ErrorInfo's metadata (see the goethev1.Reason*
// constants for the keys of each reason), or nil. The map is shared: read
// it, do not modify it.
func (e *Error) Metadata() map[string]string { return e.info.GetMetadata() }

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

// IsReason reports whether err, or an error it wraps, is an *Error with
// the given reason (a goethev1.Reason* constant). It is false for nil and
// for errors without a reason.
func IsReason(err error, reason string) bool {
	var e *Error
	return errors.As(err, &e) && e.info != nil && e.info.GetReason() == reason
}

// ConflictError is the error of a conditional Produce whose expected last
// seq did not hold (FAILED_PRECONDITION, reason
// goethev1.ReasonExpectedLastSeqMismatch). errors.Is(err, ErrConflict) is
// true for it, and errors.As finds its *Error.
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
	return fromStatus(st)
}

// fromStatus is the error of a failed status: an *Error, or a
// *ConflictError for an expectation that did not hold.
func fromStatus(st *status.Status) error {
	e := &Error{st: st}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == goethev1.ErrorDomain {
			e.info = info
			break
		}
	}
	if st.Code() == codes.FailedPrecondition && e.Reason() == goethev1.ReasonExpectedLastSeqMismatch {
		if n, err := strconv.ParseUint(e.Metadata()["actual_last_seq"], 10, 64); err == nil {
			return &ConflictError{err: e, ActualLastSeq: n}
		}
	}
	return e
}
