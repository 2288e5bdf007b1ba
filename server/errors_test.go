package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/store"
)

func TestToStatus(t *testing.T) {
	conflict := &store.ConflictError{Topic: "t", Expected: 3, Actual: 5}
	cases := []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{fmt.Errorf("%w: event 2 is too large", errBadRequest), codes.InvalidArgument, "invalid argument: event 2 is too large"},
		{store.ValidateName("topic", ""), codes.InvalidArgument, "invalid name: topic name is empty"},
		{fmt.Errorf("%w: no events", store.ErrInvalid), codes.InvalidArgument, "invalid request: no events"},
		{fmt.Errorf("%w: topic %q", store.ErrNotFound, "x"), codes.NotFound, `not found: topic "x"`},
		{conflict, codes.FailedPrecondition, `topic "t": expected last seq 3, actual 5`},
		{fmt.Errorf("wrapped: %w", conflict), codes.FailedPrecondition, `wrapped: store: topic "t": expected last seq 3, actual 5`},
		{store.ErrTopicLimit, codes.ResourceExhausted, "topic id space exhausted"},
		{errStopping, codes.Unavailable, "server is stopping"},
		{fmt.Errorf("%w: scan events", store.ErrClosed), codes.Unavailable, "closed: scan events"},
		{fmt.Errorf("%w: disk full", store.ErrFailed), codes.Unavailable, "write failed, store needs restart: disk full"},
		{context.Canceled, codes.Canceled, "context canceled"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "context deadline exceeded"},
		{errors.New("something else"), codes.Internal, "something else"},
		{store.ErrFormat, codes.Internal, "unsupported data format"},
		{status.Error(codes.Aborted, "as is"), codes.Aborted, "as is"},
	}
	for _, c := range cases {
		err := toStatus(c.err)
		st, ok := status.FromError(err)
		require.True(t, ok, "%v", c.err)
		require.Equal(t, c.code, st.Code(), "%v", c.err)
		require.Equal(t, c.msg, st.Message(), "%v", c.err)
	}
	require.NoError(t, toStatus(nil))
}

func TestConflictDetail(t *testing.T) {
	st := status.Convert(toStatus(&store.ConflictError{Topic: "t", Expected: 3, Actual: 5}))
	require.Len(t, st.Details(), 1)
	info, ok := st.Details()[0].(*errdetails.ErrorInfo)
	require.True(t, ok)
	require.Equal(t, ConflictReason, info.Reason)
	require.Equal(t, ErrorDomain, info.Domain)
	require.Equal(t, map[string]string{"topic": "t", "expected_last_seq": "3", "actual_last_seq": "5"}, info.Metadata)
}

// Every store sentinel has an entry in the table.
func TestCodeTableCoversStoreErrors(t *testing.T) {
	mapped := map[error]bool{}
	for _, e := range codeTable {
		mapped[e.err] = true
	}
	for _, e := range []error{store.ErrNotFound, store.ErrConflict, store.ErrInvalidName, store.ErrInvalid,
		store.ErrClosed, store.ErrFailed, store.ErrTopicLimit} {
		require.True(t, mapped[e], "%v has no code", e)
	}
}

func TestOptionsFill(t *testing.T) {
	var o Options
	require.NoError(t, o.fill())
	d := DefaultOptions()
	require.Equal(t, d.MaxEventBytes, o.MaxEventBytes)
	require.Equal(t, 1<<20, o.MaxEventBytes)
	require.Equal(t, 10_000, o.MaxBatchEvents)
	require.Equal(t, 64<<20, o.MaxRequestBytes)
	require.Equal(t, d.ConsumePageEvents, o.ConsumePageEvents)
	require.NotNil(t, o.Logger)

	// The message limit follows the event limit up.
	o = Options{MaxEventBytes: 32 << 20}
	require.NoError(t, o.fill())
	require.Equal(t, MinRequestBytes(32<<20), o.MaxRequestBytes)
	require.Equal(t, 4*(32<<20)+RequestOverheadBytes, o.MaxRequestBytes)

	// At the largest allowed event, the message limit still fits gRPC's.
	o = Options{MaxEventBytes: maxEventBytesLimit}
	require.NoError(t, o.fill())
	require.LessOrEqual(t, o.MaxRequestBytes, 1<<31-1)
	o = Options{MaxEventBytes: maxEventBytesLimit + 1}
	require.ErrorContains(t, o.fill(), "MaxEventBytes")

	for _, bad := range []Options{{MaxEventBytes: -1}, {MaxBatchEvents: -1}, {MaxRequestBytes: -1}, {ConsumePageEvents: -1}} {
		require.Error(t, bad.fill(), "%+v", bad)
	}
}
