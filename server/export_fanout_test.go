package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// HoldFanout takes every token of s's fan-out gate (Options.FanoutSenders
// of them), so that followers woken by a commit wait for a turn, until the
// returned release is called (once). Tests only.
func HoldFanout(t *testing.T, s *Server) (release func()) {
	toks := make([]*fanoutToken, s.opts.FanoutSenders)
	for i := range toks {
		tok, err := s.fanout.acquire(context.Background())
		require.NoError(t, err)
		toks[i] = tok
	}
	return func() {
		for _, tok := range toks {
			tok.release()
		}
	}
}

// FanoutWaiting is how many Consume streams of s wait for a turn to send.
func FanoutWaiting(s *Server) int { return s.fanout.waiting() }
