package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// Bearer tokens and per-topic permissions.
//
// A client sends its token in the request metadata "authorization" as
// "Bearer <token>". The server keeps only the SHA-256 digest of each token
// (HashToken), with the permissions granted to it:
//
//   - read: Consume, GetTopic, GetCursor and CommitCursor on a topic (a
//     consumer commits its own position, as Kafka's group commit needs Read);
//     ListTopics lists only the topics the token may read.
//   - write: Produce, and each request of a ProduceStream, on a topic.
//   - admin: everything on a topic: read and write, and the administrative
//     calls SetTopicConfig, TrimTopic and DeleteTopic; admin over "*" also covers
//     any call that names no topic, and calls this server does not know yet.
//
// Each permission is given over topic name patterns: a name, matched
// exactly, or a prefix followed by one "*" ("orders.*" matches every topic
// whose name begins with "orders."; "*" alone matches every topic). This is
// Kafka's LITERAL and PREFIXED resource patterns; a '*' anywhere but at the
// end is refused when the file is loaded, so that no pattern means other
// than it reads. A topic name may contain any character but control
// characters, '/' and '.' included, which is why path.Match (whose '*'
// stops at '/') is not used.
//
// The gRPC health service stays open, without a token, so that load
// balancers and orchestrators can probe. Server reflection stays open too:
// it serves the service's schema, which is published in spec/, and no data.
//
// Lookups are by the token's digest: the server hashes the presented
// token and looks the digest up in a map. The time of the lookup depends
// only on the digest, and learning how much of a guessed token's digest
// matches a stored digest does not help to find a token whose digest
// matches (SHA-256 is preimage resistant), so this is as safe as a
// constant-time comparison of tokens (crypto/subtle), and does not cost one
// comparison per configured token. Tokens should be long random strings
// (e.g. 32 random bytes, hex): a digest offers no protection to a token
// that can be guessed.

// Errors of authentication and authorisation; toStatus maps them.
var (
	// errUnauthenticated: the call carries no bearer token, a malformed
	// one, or one the server does not know.
	errUnauthenticated = errors.New("unauthenticated")
	// errPermissionDenied: the token is known but lacks the permission the
	// call needs on its topic.
	errPermissionDenied = errors.New("permission denied")
)

// ErrAuthFile is wrapped by every error of ParseAuthFile and LoadAuthFile:
// the auth file is malformed; the message says where.
var ErrAuthFile = errors.New("server: invalid auth file")

// Permission is one of the permissions a token holds over topic patterns.
type Permission uint8

// The permissions. Admin implies Read and Write.
const (
	PermissionRead Permission = iota + 1
	PermissionWrite
	PermissionAdmin
)

// String is the permission's name in the auth file: read, write or admin.
func (p Permission) String() string {
	switch p {
	case PermissionRead:
		return "read"
	case PermissionWrite:
		return "write"
	case PermissionAdmin:
		return "admin"
	}
	return fmt.Sprintf("Permission(%d)", uint8(p))
}

// HashToken returns the SHA-256 digest of token in lowercase hex: the form
// in which the auth file stores it. The same as
// `printf %s "$TOKEN" | sha256sum` prints.
func HashToken(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

// AuthFile is the content of an auth file, which is JSON:
//
//	{
//	  "tokens": [
//	    {"name": "orders-service", "sha256": "<64 hex digits>",
//	     "read": ["orders.*"], "write": ["orders.*"]},
//	    {"name": "dashboards", "sha256": "…", "read": ["*"]},
//	    {"name": "ops", "sha256": "…", "admin": ["*"]}
//	  ]
//	}
//
// JSON because topic names may hold spaces, commas and '#', which a
// line-based format would have to escape, and because the standard
// library reads it strictly: an unknown key (a misspelt "wirte") is an
// error, not a silently missing permission.
type AuthFile struct {
	Tokens []TokenEntry `json:"tokens"`
}

// TokenEntry is one token of an auth file.
type TokenEntry struct {
	// Name names the token's holder in logs and errors; unique in a file.
	Name string `json:"name"`
	// SHA256 is HashToken of the token: 64 hex digits.
	SHA256 string `json:"sha256"`
	// Read, Write and Admin are the topic patterns of each permission.
	Read  []string `json:"read,omitempty"`
	Write []string `json:"write,omitempty"`
	Admin []string `json:"admin,omitempty"`
}

// Tokens is a validated set of tokens and their grants, made by
// ParseAuthFile, LoadAuthFile or NewTokens. It is immutable and safe for
// concurrent use.
type Tokens struct {
	byHash map[[sha256.Size]byte]*grant
}

// grant is what one token may do.
type grant struct {
	name               string
	read, write, admin patterns
	readRanges         []topicRange // what ListTopics visits: readableRanges
}

// patterns is a set of topic patterns: exact names and prefixes.
type patterns struct {
	all      bool // "*"
	exact    map[string]struct{}
	prefixes []string
}

func (p *patterns) add(pat string) error {
	switch i := strings.IndexByte(pat, '*'); {
	case pat == "":
		return errors.New("empty topic pattern")
	case pat == "*":
		p.all = true
	case i >= 0 && i != len(pat)-1:
		return fmt.Errorf("topic pattern %q: '*' may only end a pattern", pat)
	case i == len(pat)-1:
		p.prefixes = append(p.prefixes, pat[:i])
	default:
		if p.exact == nil {
			p.exact = make(map[string]struct{})
		}
		p.exact[pat] = struct{}{}
	}
	return nil
}

func (p *patterns) match(topic string) bool {
	if p.all {
		return true
	}
	if _, ok := p.exact[topic]; ok {
		return true
	}
	for _, pre := range p.prefixes {
		if strings.HasPrefix(topic, pre) {
			return true
		}
	}
	return false
}

// allows reports whether the grant holds perm on topic. Admin implies the
// others.
func (g *grant) allows(perm Permission, topic string) bool {
	if g.admin.match(topic) {
		return true
	}
	switch perm {
	case PermissionRead:
		return g.read.match(topic)
	case PermissionWrite:
		return g.write.match(topic)
	}
	return false
}

// readsAll reports whether the grant may read every topic.
func (g *grant) readsAll() bool { return g.admin.all || g.read.all }

// NewTokens validates entries and returns them as Tokens. Names and
// digests must be unique, digests 64 hex digits, patterns well formed.
func NewTokens(entries []TokenEntry) (*Tokens, error) {
	t := &Tokens{byHash: make(map[[sha256.Size]byte]*grant, len(entries))}
	names := make(map[string]bool, len(entries))
	for i, e := range entries {
		where := fmt.Sprintf("token %d (%q)", i+1, e.Name)
		if e.Name == "" {
			return nil, fmt.Errorf("%w: token %d: name is missing", ErrAuthFile, i+1)
		}
		if names[e.Name] {
			return nil, fmt.Errorf("%w: %s: name used twice", ErrAuthFile, where)
		}
		names[e.Name] = true
		b, err := hex.DecodeString(e.SHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%w: %s: sha256 must be 64 hex digits (goethe hash-token makes it)", ErrAuthFile, where)
		}
		key := [sha256.Size]byte(b)
		if _, dup := t.byHash[key]; dup {
			return nil, fmt.Errorf("%w: %s: same sha256 as another token", ErrAuthFile, where)
		}
		g := &grant{name: e.Name}
		for _, set := range []struct {
			pats []string
			into *patterns
			perm Permission
		}{{e.Read, &g.read, PermissionRead}, {e.Write, &g.write, PermissionWrite}, {e.Admin, &g.admin, PermissionAdmin}} {
			for _, p := range set.pats {
				if err := set.into.add(p); err != nil {
					return nil, fmt.Errorf("%w: %s: %s: %v", ErrAuthFile, where, set.perm, err)
				}
			}
		}
		g.readRanges = readableRanges(g)
		t.byHash[key] = g
	}
	return t, nil
}

// ParseAuthFile reads an auth file (see AuthFile) from r. Unknown keys and
// trailing data are errors.
func ParseAuthFile(r io.Reader) (*Tokens, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f AuthFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuthFile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrAuthFile)
	}
	return NewTokens(f.Tokens)
}

// LoadAuthFile reads the auth file at path.
func LoadAuthFile(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseAuthFile(f)
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

// Auth holds the Tokens a server checks calls against, and lets them be
// replaced while it serves (e.g. when the auth file is reloaded). A unary
// call is checked against the Tokens current when it starts. A stream is
// checked when it opens and then follows every Replace:
//
//   - each request a stream receives (a Consume's request, every request
//     of a ProduceStream) is checked against the Tokens current when it is
//     received;
//   - Replace itself re-checks every open stream against the new Tokens,
//     before it returns, and ends each one that they no longer allow:
//     UNAUTHENTICATED when its token is gone; PERMISSION_DENIED (with the
//     topic and permission as ErrorInfo metadata) when a Consume's token
//     may no longer read its topic. A following Consume idle at the end of
//     its topic is ended by Replace too, not at its next event: nothing
//     polls. A ProduceStream whose token stays but loses a topic goes on,
//     and each later request to that topic fails alone with
//     PERMISSION_DENIED, as a request the token could never write does
//     (the spec's "a request that fails, fails alone").
//
// Once Replace has returned, an ended Consume starts no Send (one that had
// begun may complete), and a ProduceStream takes no request its new tokens
// do not allow; an ended ProduceStream still answers the requests it had
// handed to the log before it ends. Safe for concurrent use.
type Auth struct {
	tokens atomic.Pointer[Tokens]

	mu      sync.Mutex
	streams map[*streamAuth]struct{} // open streams, re-checked by Replace
}

// NewAuth returns an Auth of t, which must not be nil.
func NewAuth(t *Tokens) *Auth {
	a := &Auth{streams: make(map[*streamAuth]struct{})}
	a.tokens.Store(t)
	return a
}

// Replace makes t, which must not be nil, the tokens of calls from now on,
// and ends the open streams that t no longer allows (see Auth). It returns
// how many it ended.
func (a *Auth) Replace(t *Tokens) (ended int) {
	a.tokens.Store(t)
	a.mu.Lock()
	defer a.mu.Unlock()
	for sa := range a.streams {
		if sa.recheck(t) != nil && sa.ended.CompareAndSwap(false, true) {
			ended++ // once, however many Replaces it takes to leave
		}
	}
	return ended
}

// watch registers sa, so that Replace re-checks it, until unwatch.
func (a *Auth) watch(sa *streamAuth) {
	a.mu.Lock()
	a.streams[sa] = struct{}{}
	a.mu.Unlock()
}

func (a *Auth) unwatch(sa *streamAuth) {
	a.mu.Lock()
	delete(a.streams, sa)
	a.mu.Unlock()
}

// grantOf returns the grant of the token whose digest is d in the tokens
// current now, or errUnauthenticated if they no longer hold it.
func (a *Auth) grantOf(d [sha256.Size]byte) (*grant, error) {
	g, ok := a.tokens.Load().byHash[d]
	if !ok {
		return nil, errTokenRemoved
	}
	return g, nil
}

// errTokenRemoved: a stream's token was known when the stream opened and
// is not any more (a reload of the auth file removed it).
var errTokenRemoved = fmt.Errorf("%w: the token is no longer known (the auth file was reloaded)", errUnauthenticated)

// streamAuth is one open stream as Auth sees it: its token's digest, its
// method, its request once received (a Consume's, which names its topic; a
// ProduceStream's requests are checked one by one), and how to end it.
type streamAuth struct {
	digest [sha256.Size]byte
	method string
	end    context.CancelCauseFunc // cancels the stream's context with the reason
	ended  atomic.Bool             // counted by a Replace

	mu  sync.Mutex
	req any // nil until received
}

// recheck checks the stream against t and, if t does not allow it, ends it
// with the reason (the cause of its context) and returns that reason.
func (sa *streamAuth) recheck(t *Tokens) error {
	err := sa.verdict(t)
	if err != nil {
		sa.end(err)
	}
	return err
}

// verdict is nil if t allows the stream, else why not.
func (sa *streamAuth) verdict(t *Tokens) error {
	g, ok := t.byHash[sa.digest]
	if !ok {
		return errTokenRemoved
	}
	sa.mu.Lock()
	req := sa.req
	sa.mu.Unlock()
	if _, known := methodRules[sa.method]; !known {
		return g.check(sa.method, nil) // admin over "*"
	}
	if req == nil || sa.method == goethev1.Goethe_ProduceStream_FullMethodName {
		return nil // checked request by request
	}
	return g.check(sa.method, req)
}

// setRequest records the stream's request, for the re-checks of Replace.
func (sa *streamAuth) setRequest(req any) {
	sa.mu.Lock()
	sa.req = req
	sa.mu.Unlock()
}

// revoked reports whether err, a stream context's cause, is a reason
// Replace ended the stream for.
func revoked(err error) bool {
	return errors.Is(err, errUnauthenticated) || errors.Is(err, errPermissionDenied)
}

// authHeader is the request metadata key of the bearer token.
const authHeader = "authorization"

// authenticate returns the grant of the call's bearer token, and its
// digest.
func (a *Auth) authenticate(ctx context.Context) (*grant, [sha256.Size]byte, error) {
	var d [sha256.Size]byte
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(authHeader)
	switch len(vals) {
	case 0:
		return nil, d, fmt.Errorf("%w: the call carries no bearer token (metadata %q)", errUnauthenticated, authHeader)
	case 1:
	default:
		return nil, d, fmt.Errorf("%w: the call carries %d %q values, one is allowed", errUnauthenticated, len(vals), authHeader)
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return nil, d, fmt.Errorf("%w: %q must be \"Bearer <token>\"", errUnauthenticated, authHeader)
	}
	d = sha256.Sum256([]byte(token))
	g, ok := a.tokens.Load().byHash[d]
	if !ok {
		return nil, d, fmt.Errorf("%w: unknown bearer token", errUnauthenticated)
	}
	return g, d, nil
}

// methodRule says what a Goethe method needs: perm on the topic that
// topic finds in its request. ListTopics has none: it filters its answer.
type methodRule struct {
	perm  Permission
	topic func(req any) (string, bool)
}

func topicOf(req any) (string, bool) {
	r, ok := req.(interface{ GetTopic() string })
	if !ok {
		return "", false
	}
	return r.GetTopic(), true
}

func produceStreamTopic(req any) (string, bool) {
	r, ok := req.(*goethev1.ProduceStreamRequest)
	if !ok {
		return "", false
	}
	return r.GetProduce().GetTopic(), true
}

// methodRules maps every method of goethe.v1.Goethe to its rule (the
// table test in auth_test.go checks that none is missing). A method not
// here needs admin over "*".
var methodRules = map[string]methodRule{
	goethev1.Goethe_Produce_FullMethodName:       {PermissionWrite, topicOf},
	goethev1.Goethe_ProduceStream_FullMethodName: {PermissionWrite, produceStreamTopic},
	goethev1.Goethe_Consume_FullMethodName:       {PermissionRead, topicOf},
	goethev1.Goethe_CommitCursor_FullMethodName:  {PermissionRead, topicOf},
	goethev1.Goethe_GetCursor_FullMethodName:     {PermissionRead, topicOf},
	goethev1.Goethe_GetTopic_FullMethodName:      {PermissionRead, topicOf},
	goethev1.Goethe_ListTopics_FullMethodName:    {},
	// Retention, trims and deletes change what every reader sees.
	goethev1.Goethe_SetTopicConfig_FullMethodName: {PermissionAdmin, topicOf},
	goethev1.Goethe_TrimTopic_FullMethodName:      {PermissionAdmin, topicOf},
	goethev1.Goethe_DeleteTopic_FullMethodName:    {PermissionAdmin, topicOf},
	// Any known token: the members' addresses are no topic's data.
	goethev1.Goethe_GetClusterStatus_FullMethodName: {},
}

// guarded reports whether a method needs a token: every method of the
// Goethe service; not health checks nor reflection.
func guarded(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/"+ServiceName+"/")
}

// check returns nil if g may make the call req of method, or the error
// saying why not.
func (g *grant) check(fullMethod string, req any) error {
	rule, known := methodRules[fullMethod]
	if !known {
		if g.admin.all {
			return nil
		}
		return fmt.Errorf("%w: %s needs admin over \"*\"", errPermissionDenied, fullMethod)
	}
	if rule.topic == nil {
		return nil
	}
	topic, ok := rule.topic(req)
	if !ok {
		return fmt.Errorf("%w: %s: unexpected request %T", errPermissionDenied, fullMethod, req)
	}
	if !g.allows(rule.perm, topic) {
		return &deniedError{perm: rule.perm, topic: topic}
	}
	return nil
}

// deniedError is errPermissionDenied for a topic: its status carries the
// topic and the permission as ErrorInfo metadata.
type deniedError struct {
	perm  Permission
	topic string
}

func (e *deniedError) Error() string {
	return fmt.Sprintf("%v: %s on topic %q", errPermissionDenied, e.perm, e.topic)
}

func (e *deniedError) Unwrap() error { return errPermissionDenied }

// authStatus is toStatus(err), with the metadata of a *deniedError
// ("topic", "permission") added to its ErrorInfo. nil stays nil.
func authStatus(err error) error {
	st := toStatus(err)
	de := (*deniedError)(nil)
	if !errors.As(err, &de) {
		return st
	}
	p := status.Convert(st).Proto()
	p.Details = nil
	d, derr := status.FromProto(p).WithDetails(&errdetails.ErrorInfo{
		Reason: goethev1.ReasonPermissionDenied, Domain: goethev1.ErrorDomain,
		Metadata: map[string]string{"topic": de.topic, "permission": de.perm.String()},
	})
	if derr != nil {
		return st
	}
	return d.Err()
}

// authGuard is the server's Auth at work: its interceptors. A request the
// codec admitted holds bytes of the in-flight budget (admission.go); a
// unary call gives them back in admitUnary, outside the guard, and a
// ProduceStream request the guard refuses gives them back here, before
// the session sees it marked denied.
type authGuard struct {
	auth   *Auth
	budget *budget
	log    Log // for ListTopics of a token that may read some topics only
}

// unaryInterceptor authenticates and authorises every unary call of the
// Goethe service before its handler runs, so that a refused call learns
// nothing of the topic (not even whether it exists).
func (ag *authGuard) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !guarded(info.FullMethod) {
		return handler(ctx, req)
	}
	g, _, err := ag.auth.authenticate(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	if r, ok := req.(*goethev1.ListTopicsRequest); ok && info.FullMethod == goethev1.Goethe_ListTopics_FullMethodName {
		return ag.listReadable(ctx, g, r, handler)
	}
	if err := g.check(info.FullMethod, req); err != nil {
		return nil, authStatus(err)
	}
	return handler(ctx, req)
}

// listReadable answers ListTopics with the topics g may read, a page of
// up to the page size asked for at a time. It visits only the names g may
// read (readRanges: a lookup per exact name, a seek per prefix), never the
// catalog around them, so a token that reads a few of many topics lists
// them at the cost of those few; and its page token is the last name it
// returned, never the name of a topic g may not read. A full page always
// has a next page token, which may lead to an empty last page.
func (ag *authGuard) listReadable(ctx context.Context, g *grant, req *goethev1.ListTopicsRequest, handler grpc.UnaryHandler) (any, error) {
	if g.readsAll() {
		return handler(ctx, req)
	}
	after := req.GetPageToken()
	if after != "" {
		if err := store.ValidateName("topic", after); err != nil {
			return nil, toStatus(fmt.Errorf("%w: page_token is not a topic name: %v", errBadRequest, err))
		}
	}
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = DefaultListPageSize
	case size > MaxListPageSize:
		size = MaxListPageSize
	}
	infos, err := listRanges(ag.log, g.readRanges, after, size)
	if err != nil {
		return nil, toStatus(err)
	}
	res := &goethev1.ListTopicsResponse{Topics: make([]*goethev1.Topic, len(infos))}
	for i := range infos {
		res.Topics[i] = topicProto(&infos[i])
	}
	if len(infos) == size {
		res.NextPageToken = infos[len(infos)-1].Name
	}
	return res, nil
}

// topicRange is a set of topic names a token may read: one name, or every
// name that begins with prefix.
type topicRange struct {
	name   string
	prefix bool
}

// readableRanges returns the ranges of the read and admin patterns,
// sorted by name and disjoint: a name or prefix that a shorter prefix
// covers is dropped. Names with a common prefix sort together, right after
// the prefix itself, so one pass finds the covered ones.
func readableRanges(g *grant) []topicRange {
	var rs []topicRange
	for _, p := range []*patterns{&g.read, &g.admin} {
		for name := range p.exact {
			rs = append(rs, topicRange{name: name})
		}
		for _, pre := range p.prefixes {
			rs = append(rs, topicRange{name: pre, prefix: true})
		}
	}
	slices.SortFunc(rs, func(a, b topicRange) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		switch {
		case a.prefix == b.prefix:
			return 0
		case a.prefix:
			return -1
		}
		return 1
	})
	out := rs[:0]
	cover := "" // the last prefix kept; "" covers nothing (no pattern is empty)
	for _, r := range rs {
		if cover != "" && strings.HasPrefix(r.name, cover) {
			continue
		}
		out = append(out, r)
		if r.prefix {
			cover = r.name
		}
	}
	return out
}

// listRanges returns up to n topics of the ranges whose names sort after
// after, in byte order.
func listRanges(log Log, ranges []topicRange, after string, n int) ([]store.TopicInfo, error) {
	var out []store.TopicInfo
	// info appends the topic named name, if it exists.
	info := func(name string) error {
		ti, err := log.Info(name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		out = append(out, ti)
		return nil
	}
	for _, r := range ranges {
		if len(out) == n {
			break
		}
		if !r.prefix {
			if r.name > after {
				if err := info(r.name); err != nil {
					return nil, err
				}
			}
			continue
		}
		from := after
		switch {
		case strings.HasPrefix(after, r.name):
			// after is in the range: go on from it.
		case after > r.name:
			continue // the whole range sorts before after
		default:
			// The range begins after after: its first name may be the
			// prefix itself, which Topics(prefix) would skip.
			if err := info(r.name); err != nil {
				return nil, err
			}
			from = r.name
		}
		for len(out) < n {
			page, next, err := log.Topics(from, n-len(out))
			if err != nil {
				return nil, err
			}
			inRange := 0
			for _, ti := range page {
				if !strings.HasPrefix(ti.Name, r.name) {
					break
				}
				inRange++
			}
			out = append(out, page[:inRange]...)
			if inRange < len(page) || next == "" {
				break
			}
			from = next
		}
	}
	return out, nil
}

// streamInterceptor authenticates every streaming call of the Goethe
// service when it opens, and authorises each request it receives: a
// Consume before it starts, each request of a ProduceStream before it is
// started, against the tokens current when the request is received. A
// refused ProduceStream request fails alone, as every request of a
// ProduceStream does (spec: "A request that fails, fails alone"): the
// session answers it PERMISSION_DENIED, with the topic and the permission
// as ErrorInfo metadata as a unary Produce would have, and the stream goes
// on, so that one caller's misconfigured topic does not fail the other
// callers whose requests a client merges into the same stream. The stream
// is registered with the Auth while it is open, so that a Replace that
// revokes it ends it (see Auth): its context is cancelled with the reason,
// and the stream ends with that reason's status, whatever its handler
// returned.
func (ag *authGuard) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !guarded(info.FullMethod) {
		return handler(srv, ss)
	}
	_, d, err := ag.auth.authenticate(ss.Context())
	if err != nil {
		return toStatus(err)
	}
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	sa := &streamAuth{digest: d, method: info.FullMethod, end: cancel}
	// Registered before the check against the current tokens, so that a
	// Replace either came before the check or re-checks the stream.
	ag.auth.watch(sa)
	defer ag.auth.unwatch(sa)
	if err := sa.verdict(ag.auth.tokens.Load()); err != nil {
		return authStatus(err)
	}
	err = handler(srv, &authStream{ServerStream: ss, ctx: ctx, sa: sa, auth: ag.auth, budget: ag.budget})
	if cause := context.Cause(ctx); revoked(cause) {
		return authStatus(cause)
	}
	return err
}

// authStream checks each request a stream receives, and ends with the
// stream's registration (its context is cancelled when a Replace revokes
// it).
type authStream struct {
	grpc.ServerStream
	ctx    context.Context
	sa     *streamAuth
	auth   *Auth
	budget *budget
}

// Context is the stream's context, cancelled (cause: the reason) when a
// Replace of the tokens revokes the stream.
func (s *authStream) Context() context.Context { return s.ctx }

// RecvMsg receives m and fails with UNAUTHENTICATED if the stream's token
// is no longer known, or PERMISSION_DENIED if it may not make that request
// (checked against the tokens current now). A ProduceStream request the
// codec already refused (over a limit or the budget; its content is not
// decoded) is left to the session, which answers it and goes on; so is one
// the token may not write: RecvMsg gives back the budget it holds, empties
// it but for its request_id and marks it denied (markDenied), and the
// session answers it PERMISSION_DENIED alone.
func (s *authStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	method := s.sa.method
	if _, known := methodRules[method]; !known {
		return nil // checked when the stream opened, and by Replace: admin over "*"
	}
	_, stream := m.(*goethev1.ProduceStreamRequest)
	mk := readMark(m)
	if stream && mk.err != nil {
		return nil
	}
	if !stream {
		// The topic is recorded before the check, so that a Replace
		// either came before the check or re-checks it.
		s.sa.setRequest(m)
	}
	g, err := s.auth.grantOf(s.sa.digest)
	if err == nil {
		err = g.check(method, m)
	}
	if err != nil {
		if !stream {
			return authStatus(err)
		}
		s.budget.release(mk.held)
		de := (*deniedError)(nil)
		if !errors.As(err, &de) {
			return authStatus(err)
		}
		r := m.(*goethev1.ProduceStreamRequest)
		id := r.GetRequestId()
		proto.Reset(r) // the session must not append it, nor hold its events
		r.RequestId = id
		setMark(r, markDenied, int64(de.perm), de.topic)
	}
	return nil
}
