package server_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// Small limits, so that the boundaries are cheap to reach.
var limits = server.Options{MaxEventBytes: 1000, MaxBatchEvents: 100, MaxRequestBytes: 1}

func events(n, payload int) []*goethev1.EventData {
	out := make([]*goethev1.EventData, n)
	for i := range out {
		out[i] = &goethev1.EventData{Payload: make([]byte, payload)}
	}
	return out
}

// sizedProduce returns a Produce request to topic "t" whose encoding is
// exactly size bytes, made of valid events under limits.
func sizedProduce(t *testing.T, size int) *goethev1.ProduceRequest {
	req := &goethev1.ProduceRequest{Topic: "t"}
	for proto.Size(req)+1100 < size {
		req.Events = append(req.Events, &goethev1.EventData{Payload: make([]byte, 900)})
	}
	last := &goethev1.EventData{}
	req.Events = append(req.Events, last)
	for n := 0; n <= 1000; n++ {
		last.Payload = make([]byte, n)
		if proto.Size(req) == size {
			return req
		}
	}
	t.Fatalf("no request of %d bytes", size)
	return nil
}

// Every bad input gets its status code, naming the broken rule, and
// leaves the stored data as it was. Inputs at a limit pass.
func TestBadInputs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, limits)
		maxReq := ts.srv.Options().MaxRequestBytes
		require.Equal(t, server.MinRequestBytes(1000), maxReq, "raised to fit the largest event")
		ts.produce("t", "e1", "e2")
		raw := ts.raw
		ctx := ctxT(t)
		exp := uint64(2)
		hdr := func(n int) map[string]string { return map[string]string{"k": strings.Repeat("v", n-1)} }

		bad := []struct {
			name   string
			code   codes.Code
			reason string // of the ErrorInfo; "": none (gRPC's own status)
			msg    string // a part of the message naming the rule
			call   func() error
		}{
			{"produce: empty topic name", codes.InvalidArgument, goethev1.ReasonInvalidName, "topic name is empty", func() error {
				_, err := raw.Produce(ctx, &goethev1.ProduceRequest{Events: events(1, 1)})
				return err
			}},
			{"produce: topic name of 256 bytes", codes.InvalidArgument, goethev1.ReasonInvalidName, "the limit is 255", func() error {
				_, err := raw.Produce(ctx, &goethev1.ProduceRequest{Topic: strings.Repeat("t", 256), Events: events(1, 1)})
				return err
			}},
			{"produce: control character in topic", codes.InvalidArgument, goethev1.ReasonInvalidName, "control character", func() error {
				_, err := raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "t\n", Events: events(1, 1)})
				return err
			}},
			{"produce: no events", codes.InvalidArgument, goethev1.ReasonInvalidArgument, "at least one event", func() error {
				_, err := raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "t"})
				return err
			}},
			{"produce: one event too many", codes.InvalidArgument, goethev1.ReasonLimitExceeded, "101 events, the limit is 100", func() error {
				_, err := raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "t", Events: events(101, 1)})
				return err
			}},
			{"produce: payload one byte too large", codes.InvalidArgument, goethev1.ReasonLimitExceeded, "event 1 is 1001 bytes", func() error {
				evs := events(2, 1)
				evs[1].Payload = make([]byte, 1001)
				_, err := raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "t", Events: evs})
				return err
			}},
			{"produce: payload and headers one byte too large", codes.InvalidArgument, goethev1.ReasonLimitExceeded, "the limit is 1000", func() error {
				evs := events(1, 500)
				evs[0].Headers = hdr(501)
				_, err := raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "t", Events: evs})
				return err
			}},
			{"produce: request one byte over the message limit", codes.ResourceExhausted, "", "larger than max", func() error {
				_, err := raw.Produce(ctx, sizedProduce(t, maxReq+1))
				return err
			}},
			{"produce: wrong expected seq", codes.FailedPrecondition, goethev1.ReasonExpectedLastSeqMismatch, "actual 2", func() error {
				wrong := uint64(1)
				_, err := raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "t", Events: events(1, 1), ExpectedLastSeq: &wrong})
				return err
			}},
			{"consume: missing topic without follow", codes.NotFound, goethev1.ReasonTopicNotFound, `topic "nope"`, func() error {
				return consumeErr(ctx, ts, &goethev1.ConsumeRequest{Topic: "nope"})
			}},
			{"consume: bad topic name", codes.InvalidArgument, goethev1.ReasonInvalidName, "topic name is empty", func() error {
				return consumeErr(ctx, ts, &goethev1.ConsumeRequest{Follow: true})
			}},
			{"consume: bad consumer name", codes.InvalidArgument, goethev1.ReasonInvalidName, "consumer name", func() error {
				return consumeErr(ctx, ts, &goethev1.ConsumeRequest{Topic: "t", Start: &goethev1.ConsumeRequest_Cursor{Cursor: &goethev1.CursorStart{Consumer: "c\x01"}}})
			}},
			{"consume: invalid time", codes.InvalidArgument, goethev1.ReasonInvalidArgument, "at_time", func() error {
				return consumeErr(ctx, ts, &goethev1.ConsumeRequest{Topic: "t", Start: &goethev1.ConsumeRequest_AtTime{AtTime: &timestamppb.Timestamp{Nanos: -1}}})
			}},
			{"consume: unknown position", codes.InvalidArgument, goethev1.ReasonInvalidArgument, "unknown start position 9", func() error {
				return consumeErr(ctx, ts, &goethev1.ConsumeRequest{Topic: "t", Start: &goethev1.ConsumeRequest_Position{Position: 9}})
			}},
			{"consume: unknown fallback", codes.InvalidArgument, goethev1.ReasonInvalidArgument, "unknown cursor fallback 9", func() error {
				return consumeErr(ctx, ts, &goethev1.ConsumeRequest{Topic: "t", Start: &goethev1.ConsumeRequest_Cursor{Cursor: &goethev1.CursorStart{Consumer: "c", Fallback: 9}}})
			}},
			{"commit cursor: missing topic", codes.NotFound, goethev1.ReasonTopicNotFound, `topic "nope"`, func() error {
				_, err := raw.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: "nope", Consumer: "c", Id: 1})
				return err
			}},
			{"commit cursor: empty consumer", codes.InvalidArgument, goethev1.ReasonInvalidName, "consumer name is empty", func() error {
				_, err := raw.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: "t", Id: 1})
				return err
			}},
			{"commit cursor: consumer of 256 bytes", codes.InvalidArgument, goethev1.ReasonInvalidName, "consumer name is 256 bytes", func() error {
				_, err := raw.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: "t", Consumer: strings.Repeat("c", 256), Id: 1})
				return err
			}},
			{"get cursor: none stored", codes.NotFound, goethev1.ReasonCursorNotFound, "no cursor", func() error {
				_, err := raw.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: "t", Consumer: "c"})
				return err
			}},
			{"get cursor: missing topic", codes.NotFound, goethev1.ReasonTopicNotFound, `topic "nope"`, func() error {
				_, err := raw.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: "nope", Consumer: "c"})
				return err
			}},
			{"get cursor: bad topic", codes.InvalidArgument, goethev1.ReasonInvalidName, "topic name", func() error {
				_, err := raw.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: "\x00", Consumer: "c"})
				return err
			}},
			{"get topic: missing", codes.NotFound, goethev1.ReasonTopicNotFound, `topic "nope"`, func() error {
				_, err := raw.GetTopic(ctx, &goethev1.GetTopicRequest{Topic: "nope"})
				return err
			}},
			{"get topic: bad name", codes.InvalidArgument, goethev1.ReasonInvalidName, "topic name is empty", func() error {
				_, err := raw.GetTopic(ctx, &goethev1.GetTopicRequest{})
				return err
			}},
			{"list topics: bad page token", codes.InvalidArgument, goethev1.ReasonInvalidArgument, "page_token", func() error {
				_, err := raw.ListTopics(ctx, &goethev1.ListTopicsRequest{PageToken: "\x7f"})
				return err
			}},
		}
		for _, c := range bad {
			err := c.call()
			requireCode(t, err, c.code, c.name)
			require.Contains(t, err.Error(), c.msg, c.name)
			if c.reason == "" {
				require.Empty(t, status.Convert(err).Details(), c.name)
			} else {
				info := requireReason(t, err, c.code, c.reason)
				switch c.reason {
				case goethev1.ReasonTopicNotFound:
					require.Equal(t, map[string]string{"topic": "nope"}, info.Metadata, c.name)
				case goethev1.ReasonCursorNotFound:
					require.Equal(t, map[string]string{"topic": "t", "consumer": "c"}, info.Metadata, c.name)
				}
			}
			requireIntact(t, ts)
		}

		// At each limit, the request passes.
		good := []struct {
			name string
			req  *goethev1.ProduceRequest
		}{
			{"right expected seq", &goethev1.ProduceRequest{Topic: "t", Events: events(1, 1), ExpectedLastSeq: &exp}},
			{"topic name of 255 bytes", &goethev1.ProduceRequest{Topic: strings.Repeat("t", 255), Events: events(1, 1)}},
			{"exactly max events", &goethev1.ProduceRequest{Topic: "u", Events: events(100, 1)}},
			{"payload of exactly max bytes", &goethev1.ProduceRequest{Topic: "u", Events: events(1, 1000)}},
			{"payload and headers of exactly max bytes", &goethev1.ProduceRequest{Topic: "u", Events: []*goethev1.EventData{{Payload: make([]byte, 500), Headers: hdr(500)}}}},
			{"request of exactly the message limit", sizedProduce(t, maxReq)},
			{"empty payload", &goethev1.ProduceRequest{Topic: "u", Events: events(1, 0)}},
		}
		for _, c := range good {
			res, err := raw.Produce(ctx, c.req)
			require.NoError(t, err, c.name)
			require.Equal(t, uint32(len(c.req.Events)), res.Count, c.name)
		}
		info, err := ts.c.Topic(ctx, "t")
		require.NoError(t, err)
		require.Equal(t, uint64(3+len(sizedProduce(t, maxReq).Events)), info.Count)
	})
}

// requireIntact requires topic "t" to hold exactly e1 and e2 and no other
// topic to exist.
func requireIntact(t *testing.T, ts *testServer) {
	t.Helper()
	res, err := ts.raw.ListTopics(ctxT(t), &goethev1.ListTopicsRequest{})
	require.NoError(t, err)
	require.Len(t, res.Topics, 1)
	require.Equal(t, uint64(2), res.Topics[0].Count)
	require.Equal(t, []string{"e1", "e2"}, payloads(ts.readAll("t", client.ConsumeOptions{})))
}

func consumeErr(ctx context.Context, ts *testServer, req *goethev1.ConsumeRequest) error {
	stream, err := ts.raw.Consume(ctx, req)
	if err != nil {
		return err
	}
	for {
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
