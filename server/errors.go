package server

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/cluster"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// Errors of the server's own making. Handlers wrap them with the rule that
// was broken; toStatus maps them with the store's.
var (
	// errBadRequest: a request breaks a rule of the API; the message says
	// which.
	errBadRequest = errors.New("invalid argument")
	// errLimitExceeded: a request is over a limit of this server (events
	// per Produce, bytes per event); the message names the limit.
	errLimitExceeded = errors.New("limit exceeded")
	// errCursorNotFound: the consumer has no cursor in the topic (a
	// *notFoundError with a consumer is one).
	errCursorNotFound = errors.New("cursor not found")
	// errStopping: the server is stopping; the call should be retried
	// against a running server.
	errStopping = errors.New("server is stopping")
)

// codeEntry maps the errors that errors.Is matches to err to a status code
// and an ErrorInfo reason. text is how a status message says err: see
// statusMessage.
type codeEntry struct {
	err    error
	code   codes.Code
	reason string // "" only for the context errors: no ErrorInfo
	text   string
}

// codeTable is the one mapping from the errors handlers meet to gRPC codes
// and goethev1 reasons. The first entry that errors.Is matches wins;
// anything else is internalEntry. CANCELED and DEADLINE_EXCEEDED answer a
// call whose client has given up; they carry no ErrorInfo, like the
// statuses gRPC makes itself for such calls.
var codeTable = []codeEntry{
	{errBadRequest, codes.InvalidArgument, goethev1.ReasonInvalidArgument, ""},
	{errUnauthenticated, codes.Unauthenticated, goethev1.ReasonUnauthenticated, ""},
	{errPermissionDenied, codes.PermissionDenied, goethev1.ReasonPermissionDenied, ""},
	{errLimitExceeded, codes.InvalidArgument, goethev1.ReasonLimitExceeded, ""},
	{store.ErrInvalidName, codes.InvalidArgument, goethev1.ReasonInvalidName, "invalid name"},
	{store.ErrInvalid, codes.InvalidArgument, goethev1.ReasonInvalidArgument, "invalid request"},
	{errCursorNotFound, codes.NotFound, goethev1.ReasonCursorNotFound, ""},
	// Before ErrNotFound, which it wraps: a followed topic was deleted.
	{store.ErrTopicDeleted, codes.NotFound, goethev1.ReasonTopicDeleted, "topic deleted"},
	{store.ErrNotFound, codes.NotFound, goethev1.ReasonTopicNotFound, "not found"},
	{store.ErrConflict, codes.FailedPrecondition, goethev1.ReasonExpectedLastSeqMismatch, "expectation failed"},
	{store.ErrTopicLimit, codes.ResourceExhausted, goethev1.ReasonTopicLimit, "topic id space exhausted"},
	{errMemoryBudget, codes.ResourceExhausted, goethev1.ReasonMemoryBudget, ""},
	{errSlowConsumer, codes.ResourceExhausted, goethev1.ReasonSlowConsumer, ""},
	{store.ErrNoSpace, codes.ResourceExhausted, goethev1.ReasonDiskFull, ""}, // said by diskFullMessage
	{store.ErrCorrupted, codes.DataLoss, goethev1.ReasonDataLoss, "corrupted record"},
	{errStopping, codes.Unavailable, goethev1.ReasonServerStopping, ""},
	// A cluster's (see cluster.Log): before the context entries, as
	// ErrOutcomeUnknown wraps the error of a context that ended.
	{errNotClustered, codes.FailedPrecondition, goethev1.ReasonNotClustered, ""},
	{cluster.ErrMemberNotFound, codes.NotFound, goethev1.ReasonMemberNotFound, ""},
	{cluster.ErrInvalidMember, codes.InvalidArgument, goethev1.ReasonInvalidArgument, ""},
	{cluster.ErrNotLeader, codes.Unavailable, goethev1.ReasonNotLeader, ""},
	{cluster.ErrUnavailable, codes.Unavailable, goethev1.ReasonLeaderBusy, ""},
	{cluster.ErrOutcomeUnknown, codes.Unavailable, goethev1.ReasonOutcomeUnknown, ""},
	{cluster.ErrClosed, codes.Unavailable, goethev1.ReasonServerStopping, ""},
	{store.ErrClosed, codes.Unavailable, goethev1.ReasonStoreClosed, "store closed"},
	{store.ErrFailed, codes.Unavailable, goethev1.ReasonStoreFailed, "write failed, store needs restart"},
	{context.Canceled, codes.Canceled, "", ""},
	{context.DeadlineExceeded, codes.DeadlineExceeded, "", ""},
}

// internalEntry maps every error that no codeTable entry matches: a fault
// of the server or of its data, which the server logs.
var internalEntry = codeEntry{code: codes.Internal, reason: goethev1.ReasonInternal}

// lookupCode returns err's codeTable entry, or internalEntry.
func lookupCode(err error) *codeEntry {
	for i := range codeTable {
		if errors.Is(err, codeTable[i].err) {
			return &codeTable[i]
		}
	}
	return &internalEntry
}

// notFoundError is store.ErrNotFound for a lookup whose names the handler
// knows: the topic, and the consumer when the topic exists and the
// consumer's cursor does not. Its status carries them as ErrorInfo
// metadata, and its message is made of them.
type notFoundError struct {
	topic    string
	consumer string // "": the topic is missing
	err      error  // the log's error, wrapping store.ErrNotFound
}

func (e *notFoundError) Error() string {
	switch {
	case e.consumer != "":
		return fmt.Sprintf("consumer %q has no cursor in topic %q", e.consumer, e.topic)
	case errors.Is(e.err, store.ErrTopicDeleted):
		return fmt.Sprintf("topic %q was deleted", e.topic)
	}
	return fmt.Sprintf("topic %q not found", e.topic)
}

func (e *notFoundError) Unwrap() error { return e.err }

// Is makes a missing cursor errCursorNotFound.
func (e *notFoundError) Is(target error) bool { return target == errCursorNotFound && e.consumer != "" }

// topicNotFound returns err, with the topic named if it is store.ErrNotFound.
func topicNotFound(err error, topic string) error {
	if errors.Is(err, store.ErrNotFound) {
		return &notFoundError{topic: topic, err: err}
	}
	return err
}

// toStatus turns err into a gRPC status error through codeTable: its code,
// a message (statusMessage) and, but for the context errors, a
// google.rpc.ErrorInfo in goethev1.ErrorDomain with the entry's reason and
// metadata (statusMetadata). Errors that already are status errors (those
// of gRPC's own streams) pass through; nil stays nil.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	e := lookupCode(err)
	msg := statusMessage(err)
	if redactedCodes[e.code] {
		msg = redactPaths(msg)
	}
	st := status.New(e.code, msg)
	if e.reason != "" {
		info := &errdetails.ErrorInfo{Reason: e.reason, Domain: goethev1.ErrorDomain, Metadata: statusMetadata(err)}
		if d, derr := st.WithDetails(info); derr == nil {
			st = d
		}
	}
	return st.Err()
}

// statusMessage is the status message of err, for people: clients branch
// on the code and reason. It is made from err's chain, not by cutting a
// prefix off its text:
//
//   - A *store.ConflictError and a *notFoundError are said from their
//     fields.
//   - Otherwise the message is err's text with the text of each codeTable
//     sentinel that err wraps replaced by the entry's own wording (text).
//     fmt.Errorf("%w: …", sentinel) writes the sentinel's text verbatim, so
//     "store: not found: topic \"x\"" says `not found: topic "x"`; the
//     store's sentinels keep their package prefix, which is for Go callers.
//     An error that does not spell its sentinel's text keeps its own.
//   - store.ErrNoSpace is said by diskFullMessage alone: what the client
//     can do, nothing of the engine's error.
//
// toStatus then removes server paths from the messages of the codes in
// redactedCodes (see redactPaths).
func statusMessage(err error) string {
	if errors.Is(err, store.ErrNoSpace) {
		return diskFullMessage
	}
	if ce := (*store.ConflictError)(nil); errors.As(err, &ce) {
		return fmt.Sprintf("topic %q: expected last seq %d, actual %d", ce.Topic, ce.Expected, ce.Actual)
	}
	if nf := (*notFoundError)(nil); errors.As(err, &nf) {
		return nf.Error()
	}
	msg := err.Error()
	for i := range codeTable {
		if e := &codeTable[i]; e.text != "" && errors.Is(err, e.err) {
			msg = strings.Replace(msg, e.err.Error(), e.text, 1)
		}
	}
	return msg
}

// statusMetadata is the ErrorInfo metadata of err: see the goethev1
// Reason* constants for the keys of each reason; nil for the others.
func statusMetadata(err error) map[string]string {
	if ce := (*store.ConflictError)(nil); errors.As(err, &ce) {
		return map[string]string{
			"topic":             ce.Topic,
			"expected_last_seq": strconv.FormatUint(ce.Expected, 10),
			"actual_last_seq":   strconv.FormatUint(ce.Actual, 10),
		}
	}
	if nf := (*notFoundError)(nil); errors.As(err, &nf) {
		if nf.consumer != "" {
			return map[string]string{"topic": nf.topic, "consumer": nf.consumer}
		}
		return map[string]string{"topic": nf.topic}
	}
	if mn := (*cluster.MemberNotFoundError)(nil); errors.As(err, &mn) {
		return map[string]string{"member_id": mn.ID}
	}
	if nl := (*cluster.NotLeaderError)(nil); errors.As(err, &nl) && nl.LeaderID != "" {
		md := map[string]string{"leader_id": nl.LeaderID}
		if nl.LeaderClientAddr != "" {
			md["leader_address"] = nl.LeaderClientAddr
		}
		return md
	}
	return nil
}

// diskFullMessage is the message of every DISK_FULL status. The engine's
// error, which names the server's files, is logged by the server (see
// watchWrites), never sent.
const diskFullMessage = "the server's disk is full (or below its free-space reserve): " +
	"writes are refused until an operator frees space, and resume by themselves then; " +
	"reads and consumes go on; retry later with backoff"

// redactedCodes are the codes whose messages may carry the text of an
// engine or system error, and with it absolute paths of the server's data
// folder: toStatus passes them through redactPaths. The others are made of
// the request and of names the client gave.
var redactedCodes = map[codes.Code]bool{
	codes.Internal:          true,
	codes.DataLoss:          true,
	codes.Unavailable:       true,
	codes.ResourceExhausted: true,
	codes.Unknown:           true,
}

// absPath matches an absolute Unix path where error texts put one: at the
// start, or after a space, quote, '=', ':', '(' or '['. A name quoted by
// %q inside such a message ("topic \"/a/b\"") is matched too: a client
// loses a little of its own topic's name there, never sees a server path.
var absPath = regexp.MustCompile(`(^|[\s"'=:(\[])/[^\s"'()\[\],;]+`)

// redactPaths replaces each absolute path in msg by "…/" and its last
// element ("write …/000001.log: no space left on device"): a client learns
// which file, not where the server keeps its data. The server logs the
// error whole.
func redactPaths(msg string) string {
	return absPath.ReplaceAllStringFunc(msg, func(m string) string {
		lead, p := "", m
		if m[0] != '/' {
			lead, p = m[:1], m[1:]
		}
		base := path.Base(p)
		if base == "/" || base == "." {
			return lead + "…"
		}
		return lead + "…/" + base
	})
}
