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

	"github.com/goethe-log/goethe/cluster"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

func TestToStatus(t *testing.T) {
	conflict := &store.ConflictError{Topic: "t", Expected: 3, Actual: 5}
	failed := fmt.Errorf("%w: %w", store.ErrFailed, fmt.Errorf("store: write batch: %w", errors.New("disk full")))
	cases := []struct {
		err      error
		code     codes.Code
		reason   string // "": no ErrorInfo
		msg      string
		metadata map[string]string
	}{
		{fmt.Errorf("%w: a produce needs at least one event", errBadRequest), codes.InvalidArgument, goethev1.ReasonInvalidArgument,
			"invalid argument: a produce needs at least one event", nil},
		{fmt.Errorf("%w: event 2 is 9 bytes, the limit is 8", errLimitExceeded), codes.InvalidArgument, goethev1.ReasonLimitExceeded,
			"limit exceeded: event 2 is 9 bytes, the limit is 8", nil},
		{store.ValidateName("topic", ""), codes.InvalidArgument, goethev1.ReasonInvalidName, "invalid name: topic name is empty", nil},
		{fmt.Errorf("%w: no events", store.ErrInvalid), codes.InvalidArgument, goethev1.ReasonInvalidArgument, "invalid request: no events", nil},
		{topicNotFound(fmt.Errorf("%w: topic %q", store.ErrNotFound, "x"), "x"), codes.NotFound, goethev1.ReasonTopicNotFound,
			`topic "x" not found`, map[string]string{"topic": "x"}},
		{&notFoundError{topic: "x", consumer: "c", err: fmt.Errorf("%w: no cursor", store.ErrNotFound)}, codes.NotFound, goethev1.ReasonCursorNotFound,
			`consumer "c" has no cursor in topic "x"`, map[string]string{"topic": "x", "consumer": "c"}},
		{topicNotFound(fmt.Errorf("%w: topic %q (id 3)", store.ErrTopicDeleted, "x"), "x"), codes.NotFound, goethev1.ReasonTopicDeleted,
			`topic "x" was deleted`, map[string]string{"topic": "x"}},
		// A NOT_FOUND that no handler named is still a topic's, said as
		// the store said it.
		{fmt.Errorf("%w: topic %q", store.ErrNotFound, "x"), codes.NotFound, goethev1.ReasonTopicNotFound, `not found: topic "x"`, nil},
		{conflict, codes.FailedPrecondition, goethev1.ReasonExpectedLastSeqMismatch, `topic "t": expected last seq 3, actual 5`,
			map[string]string{"topic": "t", "expected_last_seq": "3", "actual_last_seq": "5"}},
		{fmt.Errorf("wrapped: %w", conflict), codes.FailedPrecondition, goethev1.ReasonExpectedLastSeqMismatch, `topic "t": expected last seq 3, actual 5`,
			map[string]string{"topic": "t", "expected_last_seq": "3", "actual_last_seq": "5"}},
		{store.ErrTopicLimit, codes.ResourceExhausted, goethev1.ReasonTopicLimit, "topic id space exhausted", nil},
		{errStopping, codes.Unavailable, goethev1.ReasonServerStopping, "server is stopping", nil},
		{fmt.Errorf("%w: scan events", store.ErrClosed), codes.Unavailable, goethev1.ReasonStoreClosed, "store closed: scan events", nil},
		{failed, codes.Unavailable, goethev1.ReasonStoreFailed, "write failed, store needs restart: store: write batch: disk full", nil},
		{&cluster.NotLeaderError{}, codes.Unavailable, goethev1.ReasonNotLeader, "cluster: not the leader, and no leader is known", nil},
		{&cluster.NotLeaderError{LeaderID: "n2", LeaderAddr: "127.0.0.1:7522", LeaderClientAddr: "127.0.0.1:7422"}, codes.Unavailable,
			goethev1.ReasonNotLeader, "cluster: not the leader; the leader is n2 at 127.0.0.1:7522",
			map[string]string{"leader_id": "n2", "leader_address": "127.0.0.1:7422"}},
		{fmt.Errorf("%w: %w", cluster.ErrUnavailable, errors.New("timed out enqueuing operation")), codes.Unavailable, goethev1.ReasonLeaderBusy,
			"cluster: leader busy, write not proposed: timed out enqueuing operation", nil},
		// An outcome unknown because the caller's context ended is still
		// OUTCOME_UNKNOWN, not CANCELED.
		{fmt.Errorf("%w: %w", cluster.ErrOutcomeUnknown, context.Canceled), codes.Unavailable, goethev1.ReasonOutcomeUnknown,
			"cluster: outcome unknown: context canceled", nil},
		{errNotClustered, codes.FailedPrecondition, goethev1.ReasonNotClustered, "not a cluster member: this server runs single-node", nil},
		{&cluster.MemberNotFoundError{ID: "n9"}, codes.NotFound, goethev1.ReasonMemberNotFound, `cluster: no member "n9"`,
			map[string]string{"member_id": "n9"}},
		{context.Canceled, codes.Canceled, "", "context canceled", nil},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "", "context deadline exceeded", nil},
		{errors.New("something else"), codes.Internal, goethev1.ReasonInternal, "something else", nil},
		{fmt.Errorf("%w: event 0102", store.ErrCorrupted), codes.DataLoss, goethev1.ReasonDataLoss, "corrupted record: event 0102", nil},
		{store.ErrFormat, codes.Internal, goethev1.ReasonInternal, "store: unsupported data format", nil},
	}
	for _, c := range cases {
		st, ok := status.FromError(toStatus(c.err))
		require.True(t, ok, "%v", c.err)
		require.Equal(t, c.code, st.Code(), "%v", c.err)
		require.Equal(t, c.msg, st.Message(), "%v", c.err)
		if c.reason == "" {
			require.Empty(t, st.Details(), "%v", c.err)
			continue
		}
		require.Len(t, st.Details(), 1, "%v", c.err)
		info, ok := st.Details()[0].(*errdetails.ErrorInfo)
		require.True(t, ok, "%v", c.err)
		require.Equal(t, goethev1.ErrorDomain, info.Domain)
		require.Equal(t, c.reason, info.Reason, "%v", c.err)
		require.Equal(t, c.metadata, info.Metadata, "%v", c.err)
	}

	// Status errors (gRPC's own) pass through; nil stays nil.
	as := status.Error(codes.Aborted, "as is")
	require.Equal(t, as, toStatus(as))
	require.NoError(t, toStatus(nil))
}

// Every store sentinel has an entry in the table, every entry but the
// context errors' has a reason, and no entry is shadowed by an earlier one.
func TestCodeTable(t *testing.T) {
	mapped := map[error]bool{}
	for i, e := range codeTable {
		mapped[e.err] = true
		if e.code != codes.Canceled && e.code != codes.DeadlineExceeded {
			require.NotEmpty(t, e.reason, "%v", e.err)
		}
		require.Same(t, &codeTable[i], lookupCode(e.err), "%v is matched by its own entry", e.err)
	}
	for _, e := range []error{store.ErrNotFound, store.ErrConflict, store.ErrInvalidName, store.ErrInvalid,
		store.ErrClosed, store.ErrFailed, store.ErrTopicLimit, store.ErrCorrupted, store.ErrNoSpace} {
		require.True(t, mapped[e], "%v has no code", e)
	}
	require.Same(t, &internalEntry, lookupCode(errors.New("other")))
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
