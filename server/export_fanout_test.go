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

// FanoutMembers is how many followers of topic are in its fan-out group
// (consume_rounds.go) on s; 0 when it has none.
func FanoutMembers(s *Server, topic string) int {
	s.rounds.mu.Lock()
	g := s.rounds.groups[topic]
	s.rounds.mu.Unlock()
	if g == nil {
		return 0
	}
	return g.size()
}

// FanoutGroups is how many fan-out groups s holds.
func FanoutGroups(s *Server) int {
	s.rounds.mu.Lock()
	defer s.rounds.mu.Unlock()
	return len(s.rounds.groups)
}
