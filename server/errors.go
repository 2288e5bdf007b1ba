package server

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/store"
)

// Errors of the server's own making. Handlers wrap them with the rule that
// was broken; toStatus maps them with the store's.
var (
	// errBadRequest: a request breaks a rule of the API or a limit of this
	// server; the message says which.
	errBadRequest = errors.New("invalid argument")
	// errStopping: the server is stopping; the call should be retried
	// against a running server.
	errStopping = errors.New("server is stopping")
)

// ConflictReason is the google.rpc.ErrorInfo reason of a FAILED_PRECONDITION
// returned for a Produce whose expected last seq did not hold. Its metadata
// holds "topic", "expected_last_seq" and "actual_last_seq" in decimal.
const (
	ConflictReason = "EXPECTED_LAST_SEQ_MISMATCH"
	ErrorDomain    = "goethe.v1"
)

// codeTable is the one mapping from the errors handlers meet to gRPC codes.
// The first entry that errors.Is matches wins; anything else is INTERNAL.
var codeTable = []struct {
	err  error
	code codes.Code
}{
	{errBadRequest, codes.InvalidArgument},
	{store.ErrInvalidName, codes.InvalidArgument},
	{store.ErrInvalid, codes.InvalidArgument},
	{store.ErrNotFound, codes.NotFound},
	{store.ErrConflict, codes.FailedPrecondition},
	{store.ErrTopicLimit, codes.ResourceExhausted},
	{errStopping, codes.Unavailable},
	{store.ErrClosed, codes.Unavailable},
	{store.ErrFailed, codes.Unavailable},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// toStatus turns err into a gRPC status error through codeTable. A
// *store.ConflictError carries a google.rpc.ErrorInfo detail with the
// topic's actual last seq. Errors that already are status errors pass
// through; nil stays nil.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			code = e.code
			break
		}
	}
	st := status.New(code, strings.TrimPrefix(err.Error(), "store: "))
	if ce := (*store.ConflictError)(nil); errors.As(err, &ce) {
		if d, derr := st.WithDetails(&errdetails.ErrorInfo{
			Reason: ConflictReason,
			Domain: ErrorDomain,
			Metadata: map[string]string{
				"topic":             ce.Topic,
				"expected_last_seq": strconv.FormatUint(ce.Expected, 10),
				"actual_last_seq":   strconv.FormatUint(ce.Actual, 10),
			},
		}); derr == nil {
			st = d
		}
	}
	return st.Err()
}
