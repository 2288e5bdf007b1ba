package server

import (
	"context"

	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/store"
)

// Log is what the service needs of the log it serves. *store.Store is one
// (the single-node log); a replicated log that commits through consensus
// and applies with the store's apply step can stand behind the same
// service.
//
// Each method has the contract of the *store.Store method of the same name
// (see package store), of which these are the parts the service relies on:
//
//   - Errors wrap the store's sentinels (store.ErrNotFound,
//     store.ErrConflict as a *store.ConflictError, store.ErrInvalidName,
//     store.ErrInvalid, store.ErrClosed, store.ErrFailed, store.ErrNoSpace,
//     store.ErrTopicLimit), the cluster's (cluster.ErrNotLeader as a
//     *cluster.NotLeaderError, cluster.ErrOutcomeUnknown,
//     cluster.ErrUnavailable, cluster.ErrClosed), or are ctx's error: the
//     service maps them to status codes and reasons by errors.Is and
//     errors.As, never by text. A log that forwards a write to another
//     server may return that server's gRPC status error, which the service
//     passes on unchanged.
//   - AppendAsync calls done exactly once, possibly before it returns,
//     otherwise from the goroutine that committed the append, once its
//     events are durable (unless the log was opened unsafe) and visible to
//     Read. done must not block. events are not modified until done and not
//     retained after. Appends made one after another by one goroutine are
//     committed in that order: a ProduceStream relies on it to keep a
//     client's requests in order.
//   - An append's result lists the events not stored because their
//     DedupeKey was stored within the topic's window
//     (store.AppendResult.Duplicates): the service answers them as
//     ProduceResponse.duplicates. A replicated log decides them from the
//     leader's time, alike on every member.
//   - Append is AppendAsync and a wait for done. Once an append is queued
//     its outcome is reported, whatever ctx does afterwards.
//   - A topic is created by its first append; Read, Info and SetCursor of a
//     topic that does not exist fail with store.ErrNotFound, and so does
//     GetCursor when the topic or the cursor does not exist.
//   - Wait returns nil once topic holds an event at or after from, and
//     nothing polls: appends wake it.
//   - Read pages are the caller's to keep but not to modify: their
//     events, payloads and header maps may be shared with other readers
//     (the store's live tail). Read and Info see every
//     acknowledged append. A Read below the topic's first event (removed by
//     retention or a trim) reads from that event; Page.TopicID names the
//     topic read, so that a reader sees a deleted topic's name taken by a
//     new one.
//   - SetTopicConfig, Trim and DeleteTopic change a topic's config, remove
//     a prefix of its events, and delete it (ErrNotFound when missing), as
//     writes that every replica applies alike. WaitTopic is Wait on the
//     topic with the given id: it ends with store.ErrTopicDeleted once that
//     topic is deleted.
//
// The service never closes a Log: whoever opened it closes it, after
// Server.Stop has returned (cmd/goethe does).
type Log interface {
	Append(ctx context.Context, topic string, events []store.Event, expect store.Expectation) (store.AppendResult, error)
	AppendAsync(topic string, events []store.Event, expect store.Expectation, done func(store.AppendResult, error))
	Read(topic string, from uint64, limit int) (store.Page, error)
	Wait(ctx context.Context, topic string, from uint64) error
	Info(topic string) (store.TopicInfo, error)
	Topics(after string, limit int) (infos []store.TopicInfo, next string, err error)
	SetCursor(ctx context.Context, topic, consumer string, id uint64) error
	GetCursor(topic, consumer string) (store.Cursor, error)
	SetTopicConfig(ctx context.Context, topic string, cfg store.TopicConfig, clear store.ConfigFields) (store.TopicInfo, error)
	Trim(ctx context.Context, topic string, before store.TrimPoint) (removed uint64, err error)
	DeleteTopic(ctx context.Context, topic string) error
	WaitTopic(ctx context.Context, topic string, topicID, from uint64) error
}

// CommitStats is an ability a Log may have beside Log: cumulative counters
// of its group commits. When Options.Metrics are set and the Log has it,
// the goethe_store_* counter families report it (see Metrics).
// *store.Store has it.
type CommitStats interface {
	Stats() store.Stats
}

// ClusterInfo is an ability a Log may have beside Log: the state of the
// cluster it replicates through, which GetClusterStatus answers.
// *cluster.Log has it.
type ClusterInfo interface {
	ClusterStatus() (cluster.Status, []cluster.Member, error)
}

// IndexWaiter is an ability a Log may have beside Log: WaitIndex returns
// once the Log's reads see every write acknowledged with an
// AppendResult.Index up to index, or with ctx's error. A Consume or
// GetTopic with min_raft_index waits with it. *cluster.Log has it.
type IndexWaiter interface {
	WaitIndex(ctx context.Context, index uint64) error
}

// ContextAppender is an ability a Log may have beside Log:
// AppendAsyncContext is AppendAsync for a request of the call whose
// context is ctx, whose metadata the log may read (a replicated log does
// not forward again a write that a follower forwarded to it). ctx does not
// bound the append. A ProduceStream appends with it when the Log has it.
// *cluster.Log has it.
type ContextAppender interface {
	AppendAsyncContext(ctx context.Context, topic string, events []store.Event, expect store.Expectation, done func(store.AppendResult, error))
}

// ReadIndexer is an ability a Log may have beside IndexWaiter: ReadIndex
// returns an index whose WaitIndex makes the Log's reads reflect every
// write acknowledged (on any member) before the call: GetTopic's
// linearizable mode. *cluster.Log has it; a leader asked by a follower
// (cluster.ReadIndexAsked) answers GetClusterStatus with it.
type ReadIndexer interface {
	ReadIndex(ctx context.Context) (uint64, error)
}

var (
	_ ContextAppender = (*cluster.Log)(nil)
	_ ReadIndexer     = (*cluster.Log)(nil)
	_ IndexWaiter     = (*cluster.Log)(nil)
	_ ClusterInfo     = (*cluster.Log)(nil)
	_ Log             = (*store.Store)(nil)
	_ CommitStats     = (*store.Store)(nil)
	_ Log             = (*cluster.Log)(nil)
	_ CommitStats     = (*cluster.Log)(nil)
	_ WriteState      = (*cluster.Log)(nil)
)
