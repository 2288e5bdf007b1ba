// Copyright (c) HashiCorp, Inc.
// SPDX-License-Identifier: MPL-2.0

// This file is not part of upstream hashicorp/raft: it is Goethe's change
// (see GOETHE.md).

package raft

// StagingLogStore is an optional interface of a LogStore: a leader whose
// LogStore implements it writes new entries to its own log in parallel with
// replicating them, as the Raft thesis (§10.2.1) allows and etcd does,
// instead of before replicating them.
//
// In dispatchLogs the leader calls StageLogs(logs), then sends the entries
// to the followers (whose replicators read them with GetLog), and only then
// calls StoreLogs(logs) with the same slice; it counts itself toward the
// commit of those entries only once StoreLogs returned without error. A
// commit therefore still needs a majority of durable copies: either the
// followers' alone, or theirs and the leader's.
//
// StageLogs must make every entry of logs readable through GetLog until the
// next StoreLogs call returns, and that StoreLogs must drop them from
// memory whether it succeeds or fails (the leader stages at most one batch,
// MaxAppendEntries entries, at a time). LastIndex and FirstIndex need not
// see staged entries. Only the leader's goroutine calls StageLogs and
// StoreLogs; GetLog is called concurrently by the replicators.
type StagingLogStore interface {
	LogStore
	StageLogs(logs []*Log)
}
