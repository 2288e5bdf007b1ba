package client

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// Only NOT_LEADER with an address is followed: never OUTCOME_UNKNOWN (the
// write may be stored), even if it named an address.
func TestLeaderHint(t *testing.T) {
	withInfo := func(code codes.Code, reason string, md map[string]string) error {
		st, err := status.New(code, "x").WithDetails(&errdetails.ErrorInfo{Domain: goethev1.ErrorDomain, Reason: reason, Metadata: md})
		require.NoError(t, err)
		return wrapError(st.Err())
	}
	addr := map[string]string{"leader_id": "n2", "leader_address": "127.0.0.1:7421"}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"not leader", withInfo(codes.Unavailable, goethev1.ReasonNotLeader, addr), "127.0.0.1:7421"},
		{"not leader, no address", withInfo(codes.Unavailable, goethev1.ReasonNotLeader, map[string]string{"leader_id": "n2"}), ""},
		{"outcome unknown", withInfo(codes.Unavailable, goethev1.ReasonOutcomeUnknown, addr), ""},
		{"leader busy", withInfo(codes.Unavailable, goethev1.ReasonLeaderBusy, addr), ""},
		{"no reason", wrapError(status.Error(codes.Unavailable, "x")), ""},
		{"nil", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, leaderHint(tc.err)) })
	}
}
