package cluster_test

import (
	"context"
	"testing"
	"time"
)

// BenchmarkReadIndex measures Node.ReadIndex on the leader of a 3-node
// cluster on loopback, in this process: one op is one confirmation of the
// leader's commit index with a quorum (raft's VerifyLeader, a round of
// heartbeats, no log write), the cost a linearizable GetTopic adds on the
// leader (a follower adds a gRPC round trip to the leader).
func BenchmarkReadIndex(b *testing.B) {
	c := newCluster(b, "leveldb", 3, nil)
	l := c.node(c.waitLeader(10 * time.Second))
	ctx := context.Background()
	if _, err := l.ReadIndex(ctx); err != nil { // the term's barrier
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.ReadIndex(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
