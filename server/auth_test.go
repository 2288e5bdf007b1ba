package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// The tokens of the auth tests, and what each may do.
const (
	tokReader = "reader-token-0123456789abcdef" // read orders*
	tokWriter = "writer-token-0123456789abcdef" // write orders*
	tokAdmin  = "admin-token-0123456789abcdef"  // admin *
	tokOther  = "other-token-0123456789abcdef"  // read and write "other" only
)

func testTokens(t *testing.T) *server.Tokens {
	t.Helper()
	toks, err := server.NewTokens([]server.TokenEntry{
		{Name: "reader", SHA256: server.HashToken(tokReader), Read: []string{"orders*"}},
		{Name: "writer", SHA256: server.HashToken(tokWriter), Write: []string{"orders*"}},
		{Name: "admin", SHA256: server.HashToken(tokAdmin), Admin: []string{"*"}},
		{Name: "other", SHA256: server.HashToken(tokOther), Read: []string{"other"}, Write: []string{"other"}},
	})
	require.NoError(t, err)
	return toks
}

// startSecureServer serves a fresh leveldb store with opts on 127.0.0.1
// (TLS when opts.TLS is set) and returns its address and the server. Auth
// does not depend on the engine, so one engine is enough.
func startSecureServer(t *testing.T, opts server.Options) (string, *server.Server) {
	t.Helper()
	e, err := engines.Open("leveldb", t.TempDir())
	require.NoError(t, err)
	st, err := store.Open(e, store.DefaultOptions())
	require.NoError(t, err)
	srv, err := server.New(st, opts)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, srv.Stop(ctx))
		require.NoError(t, <-served)
		require.NoError(t, st.Close())
	})
	return lis.Addr().String(), srv
}

// budgetOptions is a server whose in-flight budget takes one request of
// bigRequest and not two: a refused request that kept its bytes
// would make the next one fail with MEMORY_BUDGET.
func budgetOptions(auth *server.Auth) server.Options {
	const maxEvent = 64 << 10
	return server.Options{Auth: auth, MaxEventBytes: maxEvent,
		MaxRequestBytes: server.MinRequestBytes(maxEvent), MaxInflightBytes: int64(server.MinRequestBytes(maxEvent))}
}

// bigRequest is a Produce of more than half of budgetOptions' budget
// (4 × 64 KiB + 64 KiB): three events of 60 KiB.
func bigRequest(topic string) *goethev1.ProduceRequest {
	req := &goethev1.ProduceRequest{Topic: topic}
	for range 3 {
		req.Events = append(req.Events, &goethev1.EventData{Payload: make([]byte, 60<<10)})
	}
	return req
}

// requireBudgetFree requires a bigRequest to be taken:
// no refused request holds the budget.
func requireBudgetFree(t *testing.T, api goethev1.GoetheClient) {
	t.Helper()
	_, err := api.Produce(withAuth(ctxT(t), bearer(tokAdmin)), bigRequest("orders"))
	require.NoError(t, err)
}

// rawConn is a plain gRPC connection (no token of its own) to addr.
func rawConn(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// withAuth returns ctx carrying the authorization header value (none when
// empty).
func withAuth(ctx context.Context, value string) context.Context {
	if value == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", value)
}

func bearer(tok string) string { return "Bearer " + tok }

// rpcCall makes one call of a method of the Goethe service on topic and
// returns its error (nil: OK).
type rpcCall func(ctx context.Context, api goethev1.GoetheClient, topic string) error

func oneEvent(topic string) *goethev1.ProduceRequest {
	return &goethev1.ProduceRequest{Topic: topic, Events: []*goethev1.EventData{{Payload: []byte("x")}}}
}

// authRPCs is every method of the Goethe service, the permission it needs
// on its topic (0: none; ListTopics filters instead), and a call of it.
var authRPCs = []struct {
	method string
	perm   server.Permission
	call   rpcCall
}{
	{goethev1.Goethe_Produce_FullMethodName, server.PermissionWrite, func(ctx context.Context, api goethev1.GoetheClient, topic string) error {
		_, err := api.Produce(ctx, oneEvent(topic))
		return err
	}},
	{goethev1.Goethe_ProduceStream_FullMethodName, server.PermissionWrite, func(ctx context.Context, api goethev1.GoetheClient, topic string) error {
		s, err := api.ProduceStream(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&goethev1.ProduceStreamRequest{RequestId: 1, Produce: oneEvent(topic)}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		res, err := s.Recv()
		if err != nil {
			return err
		}
		if e := res.GetError(); e != nil {
			return status.ErrorProto(e) // the request failed alone
		}
		_, err = s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}},
	{goethev1.Goethe_Consume_FullMethodName, server.PermissionRead, func(ctx context.Context, api goethev1.GoetheClient, topic string) error {
		s, err := api.Consume(ctx, &goethev1.ConsumeRequest{Topic: topic,
			Start: &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_BEGINNING}})
		if err != nil {
			return err
		}
		for {
			if _, err := s.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}},
	{goethev1.Goethe_CommitCursor_FullMethodName, server.PermissionRead, func(ctx context.Context, api goethev1.GoetheClient, topic string) error {
		_, err := api.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: topic, Consumer: "c", Id: 1})
		return err
	}},
	{goethev1.Goethe_GetCursor_FullMethodName, server.PermissionRead, func(ctx context.Context, api goethev1.GoetheClient, topic string) error {
		_, err := api.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: topic, Consumer: "seeded"})
		return err
	}},
	{goethev1.Goethe_GetTopic_FullMethodName, server.PermissionRead, func(ctx context.Context, api goethev1.GoetheClient, topic string) error {
		_, err := api.GetTopic(ctx, &goethev1.GetTopicRequest{Topic: topic})
		return err
	}},
	{goethev1.Goethe_ListTopics_FullMethodName, 0, func(ctx context.Context, api goethev1.GoetheClient, _ string) error {
		_, err := api.ListTopics(ctx, &goethev1.ListTopicsRequest{})
		return err
	}},
	{goethev1.Goethe_SetTopicConfig_FullMethodName, server.PermissionAdmin, func(ctx context.Context, api goethev1.GoetheClient, topic string) error {
		_, err := api.SetTopicConfig(ctx, &goethev1.SetTopicConfigRequest{Topic: topic})
		return err
	}},
	{goethev1.Goethe_TrimTopic_FullMethodName, server.PermissionAdmin, func(ctx context.Context, api goethev1.GoetheClient, topic string) error {
		_, err := api.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: topic, Before: &goethev1.TrimTopicRequest_BeforeSeq{BeforeSeq: 1}})
		return err
	}},
	// Last but for the rows that need no topic: it deletes the topic the
	// others use (see TestAuthEveryRPC).
	{goethev1.Goethe_DeleteTopic_FullMethodName, server.PermissionAdmin, func(ctx context.Context, api goethev1.GoetheClient, topic string) error {
		_, err := api.DeleteTopic(ctx, &goethev1.DeleteTopicRequest{Topic: topic})
		return err
	}},
	{goethev1.Goethe_GetClusterStatus_FullMethodName, 0, func(ctx context.Context, api goethev1.GoetheClient, _ string) error {
		res, err := api.GetClusterStatus(ctx, &goethev1.GetClusterStatusRequest{})
		if err == nil && res.GetClustered() {
			return errors.New("a single node says it is clustered")
		}
		return err
	}},
}

// TestAuthTableCoversEveryRPC keeps authRPCs complete: a new method of the
// service must get a row, and so a decision about its permission.
func TestAuthTableCoversEveryRPC(t *testing.T) {
	var want []string
	for _, m := range goethev1.Goethe_ServiceDesc.Methods {
		want = append(want, "/"+goethev1.Goethe_ServiceDesc.ServiceName+"/"+m.MethodName)
	}
	for _, s := range goethev1.Goethe_ServiceDesc.Streams {
		want = append(want, "/"+goethev1.Goethe_ServiceDesc.ServiceName+"/"+s.StreamName)
	}
	var got []string
	for _, r := range authRPCs {
		got = append(got, r.method)
	}
	for _, r := range adminAllRPCs {
		got = append(got, r.method)
	}
	require.ElementsMatch(t, want, got)
}

// adminAllRPCs are the methods that need admin over "*" (the cluster's
// membership changes): calls with a valid request.
var adminAllRPCs = []struct {
	method string
	call   func(ctx context.Context, api goethev1.GoetheClient) error
}{
	{goethev1.Goethe_AddClusterMember_FullMethodName, func(ctx context.Context, api goethev1.GoetheClient) error {
		_, err := api.AddClusterMember(ctx, &goethev1.AddClusterMemberRequest{
			Member: &goethev1.ClusterMember{Id: "n4", RaftAddress: "127.0.0.1:7524", ClientAddress: "127.0.0.1:7424"}})
		return err
	}},
	{goethev1.Goethe_RemoveClusterMember_FullMethodName, func(ctx context.Context, api goethev1.GoetheClient) error {
		_, err := api.RemoveClusterMember(ctx, &goethev1.RemoveClusterMemberRequest{Id: "n3"})
		return err
	}},
}

// The membership changes need admin over "*": other tokens, admin of some
// topics included, are refused before the handler; an admin reaches it (a
// single node answers NOT_CLUSTERED).
func TestAuthMembershipNeedsAdminAll(t *testing.T) {
	toks, err := server.NewTokens([]server.TokenEntry{
		{Name: "admin", SHA256: server.HashToken(tokAdmin), Admin: []string{"*"}},
		{Name: "some", SHA256: server.HashToken(tokOther), Admin: []string{"orders"}, Read: []string{"*"}, Write: []string{"*"}},
	})
	require.NoError(t, err)
	addr, _ := startSecureServer(t, server.Options{Auth: server.NewAuth(toks)})
	api := goethev1.NewGoetheClient(rawConn(t, addr, nil))
	ctx := ctxT(t)
	for _, rpc := range adminAllRPCs {
		requireReason(t, rpc.call(ctx, api), codes.Unauthenticated, goethev1.ReasonUnauthenticated)
		requireReason(t, rpc.call(withAuth(ctx, bearer(tokOther)), api), codes.PermissionDenied, goethev1.ReasonPermissionDenied)
		requireReason(t, rpc.call(withAuth(ctx, bearer(tokAdmin)), api), codes.FailedPrecondition, goethev1.ReasonNotClustered)
	}
}

// TestAuthEveryRPC calls every RPC over a real server with each kind of
// credential: none, malformed, unknown (UNAUTHENTICATED); a known token
// without the permission on the topic (PERMISSION_DENIED); one with it
// (OK). A refused call changes nothing and says nothing of the topic.
func TestAuthEveryRPC(t *testing.T) {
	addr, _ := startSecureServer(t, server.Options{Auth: server.NewAuth(testTokens(t))})
	api := goethev1.NewGoetheClient(rawConn(t, addr, nil))
	ctx := ctxT(t)
	admin := withAuth(ctx, bearer(tokAdmin))
	_, err := api.Produce(admin, oneEvent("orders"))
	require.NoError(t, err)
	_, err = api.CommitCursor(admin, &goethev1.CommitCursorRequest{Topic: "orders", Consumer: "seeded", Id: 1})
	require.NoError(t, err)

	unauthenticated := []struct{ name, header string }{
		{"no token", ""},
		{"unknown token", bearer("not-a-known-token")},
		{"no scheme", tokAdmin},
		{"basic scheme", "Basic " + tokAdmin},
		{"empty bearer", "Bearer "},
	}
	for _, rpc := range authRPCs {
		name := rpc.method[strings.LastIndexByte(rpc.method, '/')+1:]
		if rpc.method == goethev1.Goethe_DeleteTopic_FullMethodName {
			// Nothing that was refused was stored: the admin's event plus
			// one Produce and one ProduceStream request each of writer and
			// admin.
			res, err := api.GetTopic(admin, &goethev1.GetTopicRequest{Topic: "orders"})
			require.NoError(t, err)
			require.EqualValues(t, 5, res.Topic.LastSeq)
		}
		t.Run(name, func(t *testing.T) {
			for _, u := range unauthenticated {
				err := rpc.call(withAuth(ctx, u.header), api, "orders")
				requireReason(t, err, codes.Unauthenticated, goethev1.ReasonUnauthenticated)
			}
			allowed := map[server.Permission][]string{
				server.PermissionRead:  {tokReader, tokAdmin},
				server.PermissionWrite: {tokWriter, tokAdmin},
				server.PermissionAdmin: {tokAdmin},
				0:                      {tokReader, tokWriter, tokAdmin, tokOther},
			}[rpc.perm]
			for _, tok := range []string{tokReader, tokWriter, tokAdmin, tokOther} {
				err := rpc.call(withAuth(ctx, bearer(tok)), api, "orders")
				if contains(allowed, tok) {
					require.NoError(t, err, "token %s", tok)
					continue
				}
				info := requireReason(t, err, codes.PermissionDenied, goethev1.ReasonPermissionDenied)
				require.Equal(t, map[string]string{"topic": "orders", "permission": rpc.perm.String()}, info.Metadata)
				require.Contains(t, err.Error(), rpc.perm.String()+` on topic "orders"`)
			}
			if rpc.perm != 0 {
				// Refused before the handler: a missing topic is no
				// NOT_FOUND for a token that may not read it.
				err := rpc.call(withAuth(ctx, bearer(tokOther)), api, "orders-missing-"+name)
				requireReason(t, err, codes.PermissionDenied, goethev1.ReasonPermissionDenied)
			}
		})
	}
	// The admin deleted it.
	_, err = api.GetTopic(admin, &goethev1.GetTopicRequest{Topic: "orders"})
	requireReason(t, err, codes.NotFound, goethev1.ReasonTopicNotFound)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestAuthPatterns checks the pattern forms through GetTopic: an exact
// name, a prefix, and "*".
func TestAuthPatterns(t *testing.T) {
	toks, err := server.NewTokens([]server.TokenEntry{
		{Name: "exact", SHA256: server.HashToken("t-exact"), Read: []string{"a/b c"}},
		{Name: "prefix", SHA256: server.HashToken("t-prefix"), Read: []string{"logs/"}, Admin: []string{"logs/*"}},
		{Name: "all", SHA256: server.HashToken("t-all"), Read: []string{"*"}},
	})
	require.NoError(t, err)
	addr, _ := startSecureServer(t, server.Options{Auth: server.NewAuth(toks)})
	api := goethev1.NewGoetheClient(rawConn(t, addr, nil))
	ctx := ctxT(t)
	topics := []string{"a/b c", "a/b", "logs/", "logs/x/y", "logs", "z"}
	for _, tp := range topics {
		_, err := api.Produce(withAuth(ctx, bearer("t-prefix")), oneEvent(tp))
		if strings.HasPrefix(tp, "logs/") {
			require.NoError(t, err, tp)
		} else {
			requireReason(t, err, codes.PermissionDenied, goethev1.ReasonPermissionDenied)
		}
	}
	reads := map[string][]string{
		"t-exact":  {"a/b c"},
		"t-prefix": {"logs/", "logs/x/y"},
		"t-all":    topics,
	}
	for tok, may := range reads {
		for _, tp := range topics {
			_, err := api.GetTopic(withAuth(ctx, bearer(tok)), &goethev1.GetTopicRequest{Topic: tp})
			switch {
			case !contains(may, tp):
				requireReason(t, err, codes.PermissionDenied, goethev1.ReasonPermissionDenied)
			case strings.HasPrefix(tp, "logs/"):
				require.NoError(t, err, "%s %s", tok, tp)
			default: // never produced
				requireReason(t, err, codes.NotFound, goethev1.ReasonTopicNotFound)
			}
		}
	}
}

// TestAuthListTopicsFilters: ListTopics lists exactly the topics the token
// may read (read or admin patterns, overlapping or not, names that are
// prefixes of others), in order, in full pages, and no page token names a
// topic it may not read.
func TestAuthListTopicsFilters(t *testing.T) {
	grants := []server.TokenEntry{
		{Name: "admin", Admin: []string{"*"}},
		{Name: "some", Read: []string{"b*", "d3"}},
		{Name: "overlap", Read: []string{"a*", "ab", "abc*", "b1"}, Admin: []string{"ab*", "c"}},
		{Name: "exact", Read: []string{"abc", "b1", "zz", "a"}, Admin: []string{"e"}},
		{Name: "prefix-is-topic", Read: []string{"c*", "d3*"}},
		{Name: "writer", Write: []string{"*"}},
	}
	for i := range grants {
		grants[i].SHA256 = server.HashToken("t-" + grants[i].Name)
	}
	toks, err := server.NewTokens(grants)
	require.NoError(t, err)
	addr, _ := startSecureServer(t, server.Options{Auth: server.NewAuth(toks)})
	api := goethev1.NewGoetheClient(rawConn(t, addr, nil))
	ctx := ctxT(t)
	all := []string{"a", "a0", "a1", "ab", "abc", "abcd", "b", "b0", "b1", "b2", "b3", "c", "c/x", "c0", "d3", "d30", "d4", "e", "é"}
	for _, name := range all {
		_, err := api.Produce(withAuth(ctx, bearer("t-admin")), oneEvent(name))
		require.NoError(t, err)
	}
	matches := func(pats []string, name string) bool {
		for _, p := range pats {
			if p == "*" || p == name || strings.HasSuffix(p, "*") && strings.HasPrefix(name, p[:len(p)-1]) {
				return true
			}
		}
		return false
	}
	list := func(tok string, size uint32) (names, tokens []string) {
		page := ""
		for {
			res, err := api.ListTopics(withAuth(ctx, bearer(tok)), &goethev1.ListTopicsRequest{PageSize: size, PageToken: page})
			require.NoError(t, err)
			require.LessOrEqual(t, len(res.Topics), int(size))
			for _, tp := range res.Topics {
				names = append(names, tp.Name)
			}
			if res.NextPageToken == "" {
				return names, tokens
			}
			require.Len(t, res.Topics, int(size), "a page before the last is full")
			tokens = append(tokens, res.NextPageToken)
			page = res.NextPageToken
		}
	}
	for _, g := range grants {
		var want []string
		for _, name := range all {
			if matches(g.Read, name) || matches(g.Admin, name) {
				want = append(want, name)
			}
		}
		for _, size := range []uint32{1, 2, 3, 5, 100} {
			names, tokens := list("t-"+g.Name, size)
			require.Equal(t, want, names, "token %s, page size %d", g.Name, size)
			for _, tk := range tokens {
				require.Contains(t, want, tk, "a page token names only readable topics")
			}
		}
	}
	_, err = api.ListTopics(withAuth(ctx, bearer("t-some")), &goethev1.ListTopicsRequest{PageToken: "bad\x00name"})
	requireReason(t, err, codes.InvalidArgument, goethev1.ReasonInvalidArgument)
}

// TestAuthProduceStreamPerRequest: a ProduceStream is checked request by
// request, and a refused request fails alone, as the spec says of every
// request of a stream: requests to an allowed, a forbidden and an allowed
// topic are answered OK, PERMISSION_DENIED (with the topic and permission
// as metadata, as a unary Produce says it) and OK; the stream stays open
// and ends OK after a half-close; the forbidden request stored nothing and
// gave its budget back (its request holds more than half of it).
func TestAuthProduceStreamPerRequest(t *testing.T) {
	addr, _ := startSecureServer(t, budgetOptions(server.NewAuth(testTokens(t))))
	api := goethev1.NewGoetheClient(rawConn(t, addr, nil))
	ctx := ctxT(t)
	s, err := api.ProduceStream(withAuth(ctx, bearer(tokWriter)))
	require.NoError(t, err)
	answer := func(id uint64) *goethev1.ProduceStreamResponse {
		t.Helper()
		res, err := s.Recv()
		require.NoError(t, err, "the stream stays open")
		require.Equal(t, id, res.GetRequestId())
		return res
	}
	require.NoError(t, s.Send(&goethev1.ProduceStreamRequest{RequestId: 1, Produce: oneEvent("orders")}))
	require.NotNil(t, answer(1).GetResult())
	require.NoError(t, s.Send(&goethev1.ProduceStreamRequest{RequestId: 2, Produce: bigRequest("secrets")}))
	failed := answer(2).GetError()
	require.NotNil(t, failed, "request 2 is refused")
	err = status.ErrorProto(failed)
	info := requireReason(t, err, codes.PermissionDenied, goethev1.ReasonPermissionDenied)
	require.Equal(t, map[string]string{"topic": "secrets", "permission": "write"}, info.GetMetadata())
	require.Contains(t, err.Error(), `"secrets"`)
	// The refused request's bytes are free again: this one needs more
	// than half of the budget.
	require.NoError(t, s.Send(&goethev1.ProduceStreamRequest{RequestId: 3, Produce: bigRequest("orders")}))
	res := answer(3).GetResult()
	require.NotNil(t, res, "request 3 is taken")
	require.EqualValues(t, 2, res.GetFirstSeq())
	require.NoError(t, s.CloseSend())
	_, err = s.Recv()
	require.ErrorIs(t, err, io.EOF, "the stream ends OK")

	_, err = api.GetTopic(withAuth(ctx, bearer(tokAdmin)), &goethev1.GetTopicRequest{Topic: "secrets"})
	requireReason(t, err, codes.NotFound, goethev1.ReasonTopicNotFound)
	requireBudgetFree(t, api)
	// A refused unary Produce gives its bytes back too.
	_, err = api.Produce(withAuth(ctx, bearer(tokReader)), bigRequest("orders"))
	requireReason(t, err, codes.PermissionDenied, goethev1.ReasonPermissionDenied)
	requireBudgetFree(t, api)
}

// TestAuthProducerForbiddenTopic: the Go client's Producer, whose Sends
// share one ProduceStream, sees only the Send to a topic its token may not
// write fail (ErrPermissionDenied, with the topic); the Sends before and
// after it, pending at the same time, succeed, and the Producer goes on.
func TestAuthProducerForbiddenTopic(t *testing.T) {
	addr, _ := startSecureServer(t, server.Options{Auth: server.NewAuth(testTokens(t))})
	c, err := client.Dial(addr, client.WithToken(tokWriter))
	require.NoError(t, err)
	defer c.Close()
	ctx := ctxT(t)
	p, err := c.NewProducer(ctx)
	require.NoError(t, err)
	defer p.Close()
	ev := []client.EventData{{Payload: []byte("x")}}
	var futures []*client.Future
	for _, topic := range []string{"orders", "secrets", "orders.eu"} {
		f, err := p.Send(ctx, topic, ev)
		require.NoError(t, err)
		futures = append(futures, f)
	}
	_, err = futures[0].Wait(ctx)
	require.NoError(t, err)
	_, err = futures[1].Wait(ctx)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, map[string]string{"topic": "secrets", "permission": "write"}, ce.Metadata())
	_, err = futures[2].Wait(ctx)
	require.NoError(t, err)
	res, err := p.Produce(ctx, "orders", ev)
	require.NoError(t, err, "the Producer goes on")
	require.EqualValues(t, 2, res.FirstSeq)
}

// TestAuthHealthAndReflectionOpen: health checks and reflection need no
// token.
func TestAuthHealthAndReflectionOpen(t *testing.T) {
	addr, _ := startSecureServer(t, server.Options{Auth: server.NewAuth(testTokens(t))})
	conn := rawConn(t, addr, nil)
	ctx := ctxT(t)
	res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: server.ServiceName})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, res.Status)

	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, rs.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	rr, err := rs.Recv()
	require.NoError(t, err)
	require.NotNil(t, rr.GetListServicesResponse())
	require.NoError(t, rs.CloseSend())
}

// TestAuthReplace: calls after Auth.Replace are checked against the new
// tokens.
func TestAuthReplace(t *testing.T) {
	auth := server.NewAuth(testTokens(t))
	addr, _ := startSecureServer(t, server.Options{Auth: auth})
	api := goethev1.NewGoetheClient(rawConn(t, addr, nil))
	ctx := ctxT(t)
	_, err := api.ListTopics(withAuth(ctx, bearer(tokReader)), &goethev1.ListTopicsRequest{})
	require.NoError(t, err)
	toks, err := server.NewTokens([]server.TokenEntry{{Name: "new", SHA256: server.HashToken("new-token"), Read: []string{"*"}}})
	require.NoError(t, err)
	auth.Replace(toks)
	_, err = api.ListTopics(withAuth(ctx, bearer(tokReader)), &goethev1.ListTopicsRequest{})
	requireReason(t, err, codes.Unauthenticated, goethev1.ReasonUnauthenticated)
	_, err = api.ListTopics(withAuth(ctx, bearer("new-token")), &goethev1.ListTopicsRequest{})
	require.NoError(t, err)
}

func TestParseAuthFile(t *testing.T) {
	h := server.HashToken("x")
	good := `{"tokens": [{"name": "a", "sha256": "` + h + `", "read": ["orders.*", "a b,c"], "write": ["x"], "admin": ["*"]}]}`
	toks, err := server.ParseAuthFile(strings.NewReader(good))
	require.NoError(t, err)
	require.Equal(t, 1, toks.Len())
	toks, err = server.ParseAuthFile(strings.NewReader(`{"tokens": [{"name": "a", "sha256": "` + strings.ToUpper(h) + `"}]}`))
	require.NoError(t, err, "upper-case hex")
	require.Equal(t, 1, toks.Len())

	for _, tc := range []struct{ name, file, want string }{
		{"not json", `tokens: []`, "invalid character"},
		{"unknown key", `{"tokens": [{"name": "a", "sha256": "` + h + `", "wirte": ["x"]}]}`, `unknown field "wirte"`},
		{"trailing data", `{"tokens": []} {}`, "data after"},
		{"no name", `{"tokens": [{"sha256": "` + h + `"}]}`, "name is missing"},
		{"same name", `{"tokens": [{"name": "a", "sha256": "` + h + `"}, {"name": "a", "sha256": "` + server.HashToken("y") + `"}]}`, "name used twice"},
		{"same hash", `{"tokens": [{"name": "a", "sha256": "` + h + `"}, {"name": "b", "sha256": "` + h + `"}]}`, "same sha256"},
		{"short hash", `{"tokens": [{"name": "a", "sha256": "` + h[:63] + `"}]}`, "64 hex digits"},
		{"not hex", `{"tokens": [{"name": "a", "sha256": "` + strings.Repeat("g", 64) + `"}]}`, "64 hex digits"},
		{"plain token", `{"tokens": [{"name": "a", "sha256": "x"}]}`, "64 hex digits"},
		{"star inside", `{"tokens": [{"name": "a", "sha256": "` + h + `", "read": ["a*b"]}]}`, "'*' may only end"},
		{"two stars", `{"tokens": [{"name": "a", "sha256": "` + h + `", "write": ["a**"]}]}`, "'*' may only end"},
		{"empty pattern", `{"tokens": [{"name": "a", "sha256": "` + h + `", "admin": [""]}]}`, "empty topic pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := server.ParseAuthFile(strings.NewReader(tc.file))
			require.ErrorIs(t, err, server.ErrAuthFile)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestHashToken(t *testing.T) {
	// printf %s abc | sha256sum
	require.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", server.HashToken("abc"))
}
