package goethev1

// ErrorDomain is the domain of the google.rpc.ErrorInfo detail that every
// error status of a Goethe server carries.
const ErrorDomain = "goethe.v1"

// Reasons of the google.rpc.ErrorInfo detail of a Goethe error status. A
// client branches on the status code and the reason, never on the message,
// which is for people and may change. New reasons may be added; a client
// treats one it does not know by its code.
const (
	// ReasonInvalidArgument (INVALID_ARGUMENT): the request breaks a rule
	// of the API; the message says which. Nothing was changed.
	ReasonInvalidArgument = "INVALID_ARGUMENT"
	// ReasonInvalidName (INVALID_ARGUMENT): a topic or consumer name breaks
	// a naming rule; the message says which.
	ReasonInvalidName = "INVALID_NAME"
	// ReasonLimitExceeded (INVALID_ARGUMENT): an event or a batch is over a
	// limit of the server; the message names the limit.
	ReasonLimitExceeded = "LIMIT_EXCEEDED"
	// ReasonTopicNotFound (NOT_FOUND): the topic does not exist. Metadata
	// "topic".
	ReasonTopicNotFound = "TOPIC_NOT_FOUND"
	// ReasonCursorNotFound (NOT_FOUND): the consumer has no cursor in the
	// topic. Metadata "topic", "consumer".
	ReasonCursorNotFound = "CURSOR_NOT_FOUND"
	// ReasonExpectedLastSeqMismatch (FAILED_PRECONDITION): a conditional
	// Produce's expected_last_seq did not hold; nothing was stored.
	// Metadata "topic", "expected_last_seq" and "actual_last_seq" (decimal).
	ReasonExpectedLastSeqMismatch = "EXPECTED_LAST_SEQ_MISMATCH"
	// ReasonTopicLimit (RESOURCE_EXHAUSTED): every topic id is in use.
	ReasonTopicLimit = "TOPIC_LIMIT"
	// ReasonMemoryBudget (RESOURCE_EXHAUSTED): the server holds as many
	// bytes of produce requests in flight as its budget allows
	// (--max-inflight-bytes); the request was not read and nothing was
	// stored. Retry later, with backoff.
	ReasonMemoryBudget = "MEMORY_BUDGET"
	// ReasonSlowConsumer (RESOURCE_EXHAUSTED): a stream's client did not
	// read for the server's --slow-consumer-timeout, and the server ended
	// the stream. A Consume client consumes again from the last event
	// received; a ProduceStream client's requests without an answer may or
	// may not be stored.
	ReasonSlowConsumer = "SLOW_CONSUMER"
	// ReasonDiskFull (RESOURCE_EXHAUSTED): the server's data volume is
	// full, or below the free space the server keeps in reserve
	// (--min-free-bytes); the write was refused, or failed with an unknown
	// outcome (its events may be stored: retry with expected_last_seq to
	// avoid a duplicate). Reads and consumes go on, and the health of
	// goethe.v1.Goethe is NOT_SERVING until writes resume, which the server
	// does by itself once space is freed. Retry later, with backoff.
	ReasonDiskFull = "DISK_FULL"
	// ReasonServerStopping (UNAVAILABLE): the server is stopping; retry
	// against a running one.
	ReasonServerStopping = "SERVER_STOPPING"
	// ReasonStoreClosed (UNAVAILABLE): the store is closed.
	ReasonStoreClosed = "STORE_CLOSED"
	// ReasonStoreFailed (UNAVAILABLE): an engine write failed; the request
	// that met it, and every write after it until the server restarts, fail
	// with this reason. A Produce that failed so may or may not be stored.
	ReasonStoreFailed = "STORE_FAILED"
	// ReasonNotLeader (UNAVAILABLE): a cluster node knows no leader it can
	// forward the write to (an election is under way, or the leader's
	// client address is not configured). Nothing was written: retry later,
	// or at the leader. Metadata "leader_id" and "leader_address" (the
	// leader's gRPC client address) when known.
	ReasonNotLeader = "NOT_LEADER"
	// ReasonLeaderBusy (UNAVAILABLE): the cluster's leader could not queue
	// the write in time. Nothing was written: retry later, with backoff.
	ReasonLeaderBusy = "LEADER_BUSY"
	// ReasonOutcomeUnknown (UNAVAILABLE): a cluster write was proposed,
	// but its leader lost leadership, stopped or became unreachable before
	// its commit was known. It may or may not be stored (on every node): a
	// blind retry may store it twice; read the topic, or retry with
	// expected_last_seq.
	ReasonOutcomeUnknown = "OUTCOME_UNKNOWN"
	// ReasonDataLoss (DATA_LOSS): a stored record is damaged; the read
	// that met it fails, and the server logs it.
	ReasonDataLoss = "DATA_LOSS"
	// ReasonUnauthenticated (UNAUTHENTICATED): the server checks bearer
	// tokens and the call carries none, a malformed one ("authorization:
	// Bearer <token>" is expected), or one it does not know.
	ReasonUnauthenticated = "UNAUTHENTICATED"
	// ReasonPermissionDenied (PERMISSION_DENIED): the call's token lacks
	// the permission (read, write or admin) the call needs on its topic;
	// the message names both. Nothing was changed. Metadata "topic" and
	// "permission" (read, write or admin), when the call names a topic.
	ReasonPermissionDenied = "PERMISSION_DENIED"
	// ReasonTopicDeleted (NOT_FOUND): the topic a Consume stream followed
	// was deleted while it followed it. Metadata "topic" names it.
	ReasonTopicDeleted = "TOPIC_DELETED"
	// ReasonNotClustered (FAILED_PRECONDITION): a cluster call (membership
	// change) reached a single-node server.
	ReasonNotClustered = "NOT_CLUSTERED"
	// ReasonMemberNotFound (NOT_FOUND): the cluster has no member with the
	// id given. Metadata "member_id" names it.
	ReasonMemberNotFound = "MEMBER_NOT_FOUND"
	// ReasonInternal (INTERNAL): a fault of the server; the message says
	// what, and the server logs it.
	ReasonInternal = "INTERNAL"
)

// Metadata keys of a ProduceStream and a Consume stream.
const (
	// HeaderMaxRequestBytes (ProduceStream response header): the server's
	// max request message size, decimal bytes.
	HeaderMaxRequestBytes = "goethe-max-request-bytes"
	// HeaderMaxEventBytes (ProduceStream response header): the largest
	// event the server takes, payload plus header keys and values, decimal.
	HeaderMaxEventBytes = "goethe-max-event-bytes"
	// HeaderMaxBatchEvents (ProduceStream response header): the most events
	// one Produce may carry, decimal.
	HeaderMaxBatchEvents = "goethe-max-batch-events"
	// HeaderBatchedAnswers (ProduceStream request header): "1" asks the
	// server to answer every request completed by one commit in one
	// ProduceStreamResponse (its more field).
	HeaderBatchedAnswers = "goethe-batched-answers"
	// HeaderStartPosition (Consume response header): the position (decimal
	// event id) the stream starts from.
	HeaderStartPosition = "goethe-start-position"
)
