package store

import "time"

// CommitObserver is told of every group commit the writer makes, for
// metrics that need one observation per commit (histograms of group sizes
// and write latency) rather than the cumulative counters of Stats.
//
// ObserveCommit is called by the writer goroutine once per engine batch
// write, after the write and before the group's requests are acknowledged,
// with the same figures Stats records: the requests (Appends and cursor
// commits) and events in the group, the batch's key and value bytes, the
// time the engine's write took (its sync included) and the write's error
// (nil on success). Calls never overlap, but the writer waits for each one:
// an implementation must be quick and must not block, nor call back into
// the Store.
type CommitObserver interface {
	ObserveCommit(requests, events, bytes int, write time.Duration, err error)
}
