package server_test

import (
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

func u64(v uint64) *uint64 { return &v }

// TestSetTopicConfigRPC: settings are set, merged and cleared, GetTopic and
// ListTopics report them with the effective ones (server defaults filled
// in) and the topic's bytes; bad settings are INVALID_ARGUMENT.
func TestSetTopicConfigRPC(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := &testServer{t: t, engine: engine, dir: t.TempDir(),
			storeOpts: &store.Options{Retention: store.TopicConfig{MaxAge: time.Hour}}}
		ts.start()
		t.Cleanup(ts.stop)
		ctx := ctxT(t)
		res, err := ts.raw.SetTopicConfig(ctx, &goethev1.SetTopicConfigRequest{Topic: "c",
			Config: &goethev1.TopicConfig{MaxEvents: u64(10), DedupeWindow: durationpb.New(time.Minute)}})
		require.NoError(t, err)
		require.Equal(t, uint64(10), res.Topic.GetConfig().GetMaxEvents())
		require.Nil(t, res.Topic.GetConfig().MaxBytes)
		require.Equal(t, time.Hour, res.Topic.GetEffectiveConfig().GetMaxAge().AsDuration())
		require.Equal(t, uint64(0), res.Topic.GetEffectiveConfig().GetMaxBytes())
		require.NotNil(t, res.Topic.GetEffectiveConfig().MaxBytes, "every effective field is present")
		require.Zero(t, res.Topic.GetCount())

		ts.produce("c", "abc", "de")
		res, err = ts.raw.SetTopicConfig(ctx, &goethev1.SetTopicConfigRequest{Topic: "c",
			Config: &goethev1.TopicConfig{MaxAge: durationpb.New(2 * time.Hour)}, ClearFields: []string{"max_events"}})
		require.NoError(t, err)
		require.Nil(t, res.Topic.GetConfig().MaxEvents)
		require.Equal(t, 2*time.Hour, res.Topic.GetConfig().GetMaxAge().AsDuration())
		require.Equal(t, time.Minute, res.Topic.GetConfig().GetDedupeWindow().AsDuration())

		got, err := ts.raw.GetTopic(ctx, &goethev1.GetTopicRequest{Topic: "c"})
		require.NoError(t, err)
		info, err := ts.st.Info("c")
		require.NoError(t, err)
		require.Equal(t, info.Bytes, got.Topic.GetBytes())
		require.NotZero(t, got.Topic.GetBytes())
		require.Equal(t, 2*time.Hour, got.Topic.GetEffectiveConfig().GetMaxAge().AsDuration())
		list, err := ts.raw.ListTopics(ctx, &goethev1.ListTopicsRequest{})
		require.NoError(t, err)
		require.Len(t, list.Topics, 1)
		require.Equal(t, info.Bytes, list.Topics[0].GetBytes())
		require.Equal(t, 2*time.Hour, list.Topics[0].GetConfig().GetMaxAge().AsDuration())

		for _, bad := range []*goethev1.SetTopicConfigRequest{
			{Topic: "c", Config: &goethev1.TopicConfig{MaxAge: durationpb.New(-time.Second)}},
			{Topic: "c", Config: &goethev1.TopicConfig{DedupeWindow: &durationpb.Duration{Seconds: 1, Nanos: -1}}},
			{Topic: "c", ClearFields: []string{"max_size"}},
			{Topic: "c", Config: &goethev1.TopicConfig{MaxBytes: u64(1)}, ClearFields: []string{"max_bytes"}},
		} {
			_, err := ts.raw.SetTopicConfig(ctx, bad)
			requireReason(t, err, codes.InvalidArgument, goethev1.ReasonInvalidArgument)
		}
		_, err = ts.raw.SetTopicConfig(ctx, &goethev1.SetTopicConfigRequest{Topic: ""})
		requireReason(t, err, codes.InvalidArgument, goethev1.ReasonInvalidName)
	})
}

// TestTrimTopicRPC: trims by seq, id and time remove the prefix at once;
// GetCursor's lag right after counts only the events left; no position is
// INVALID_ARGUMENT and a missing topic NOT_FOUND.
func TestTrimTopicRPC(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		ctx := ctxT(t)
		var ids []uint64
		for i := range 10 {
			ids = append(ids, ts.produce("t", strconv.Itoa(i))[0].FirstID)
		}
		_, err := ts.raw.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: "t", Consumer: "low", Id: ids[1]})
		require.NoError(t, err)
		_, err = ts.raw.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: "t", Consumer: "mid", Id: ids[5]})
		require.NoError(t, err)

		res, err := ts.raw.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: "t", Before: &goethev1.TrimTopicRequest_BeforeSeq{BeforeSeq: 4}})
		require.NoError(t, err)
		require.Equal(t, uint64(3), res.Removed)
		require.Equal(t, uint64(4), res.Topic.GetFirstSeq())
		require.Equal(t, ids[3], res.Topic.GetFirstId())
		require.Equal(t, uint64(7), res.Topic.GetCount())

		cur, err := ts.raw.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: "t", Consumer: "low"})
		require.NoError(t, err)
		require.Equal(t, uint64(7), cur.Lag, "a cursor below the first event lags by the count")
		cur, err = ts.raw.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: "t", Consumer: "mid"})
		require.NoError(t, err)
		require.Equal(t, uint64(4), cur.Lag)

		res, err = ts.raw.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: "t", Before: &goethev1.TrimTopicRequest_BeforeId{BeforeId: ids[5]}})
		require.NoError(t, err)
		require.Equal(t, uint64(2), res.Removed)
		res, err = ts.raw.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: "t",
			Before: &goethev1.TrimTopicRequest_BeforeTime{BeforeTime: timestamppb.New(time.Unix(0, int64(ids[7])))}})
		require.NoError(t, err)
		require.Equal(t, uint64(2), res.Removed)
		res, err = ts.raw.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: "t", Before: &goethev1.TrimTopicRequest_BeforeSeq{BeforeSeq: 0}})
		require.NoError(t, err)
		require.Zero(t, res.Removed)
		cur, err = ts.raw.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: "t", Consumer: "mid"})
		require.NoError(t, err)
		require.Equal(t, uint64(3), cur.Lag)

		// Everything: an empty topic that keeps its last seq.
		res, err = ts.raw.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: "t", Before: &goethev1.TrimTopicRequest_BeforeSeq{BeforeSeq: 100}})
		require.NoError(t, err)
		require.Equal(t, uint64(3), res.Removed)
		require.Equal(t, uint64(11), res.Topic.GetFirstSeq())
		require.Zero(t, res.Topic.GetFirstId())
		require.Equal(t, uint64(10), res.Topic.GetLastSeq())
		require.Zero(t, res.Topic.GetCount())
		require.Zero(t, res.Topic.GetBytes())
		cur, err = ts.raw.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: "t", Consumer: "mid"})
		require.NoError(t, err)
		require.Zero(t, cur.Lag)

		_, err = ts.raw.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: "t"})
		requireReason(t, err, codes.InvalidArgument, goethev1.ReasonInvalidArgument)
		_, err = ts.raw.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: "t", Before: &goethev1.TrimTopicRequest_BeforeTime{BeforeTime: &timestamppb.Timestamp{Nanos: -1}}})
		requireReason(t, err, codes.InvalidArgument, goethev1.ReasonInvalidArgument)
		_, err = ts.raw.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: "missing", Before: &goethev1.TrimTopicRequest_BeforeSeq{BeforeSeq: 3}})
		info := requireReason(t, err, codes.NotFound, goethev1.ReasonTopicNotFound)
		require.Equal(t, "missing", info.Metadata["topic"])
	})
}

// consumeAll reads a Consume stream to its end and returns its responses.
func consumeAll(t *testing.T, ts *testServer, req *goethev1.ConsumeRequest) []*goethev1.ConsumeResponse {
	t.Helper()
	s, err := ts.raw.Consume(ctxT(t), req)
	require.NoError(t, err)
	var out []*goethev1.ConsumeResponse
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, r)
	}
}

// TestConsumeSkipped: a stream whose start is below the first event is told
// how many events it missed where it can know: from the beginning, at a
// seq, after a seq, at a cursor stored with its seq; a start by id reports
// none (documented).
func TestConsumeSkipped(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		ctx := ctxT(t)
		var ids []uint64
		for i := range 10 {
			ids = append(ids, ts.produce("s", strconv.Itoa(i))[0].FirstID)
		}
		_, err := ts.raw.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: "s", Consumer: "c", Id: ids[1]})
		require.NoError(t, err)
		_, err = ts.raw.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: "s", Before: &goethev1.TrimTopicRequest_BeforeSeq{BeforeSeq: 5}})
		require.NoError(t, err)

		cases := []struct {
			name    string
			start   any
			skipped uint64
		}{
			{"beginning", &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_BEGINNING}, 4},
			{"at seq", &goethev1.ConsumeRequest_AtSeq{AtSeq: 2}, 3},
			{"after seq", &goethev1.ConsumeRequest_AfterSeq{AfterSeq: 2}, 2},
			{"at seq kept", &goethev1.ConsumeRequest_AtSeq{AtSeq: 6}, 0},
			{"cursor", &goethev1.ConsumeRequest_Cursor{Cursor: &goethev1.CursorStart{Consumer: "c"}}, 2},
			{"at id", &goethev1.ConsumeRequest_AtId{AtId: ids[0]}, 0},
		}
		for _, c := range cases {
			req := &goethev1.ConsumeRequest{Topic: "s"}
			switch s := c.start.(type) {
			case *goethev1.ConsumeRequest_Position:
				req.Start = s
			case *goethev1.ConsumeRequest_AtSeq:
				req.Start = s
			case *goethev1.ConsumeRequest_AfterSeq:
				req.Start = s
			case *goethev1.ConsumeRequest_Cursor:
				req.Start = s
			case *goethev1.ConsumeRequest_AtId:
				req.Start = s
			}
			resps := consumeAll(t, ts, req)
			require.NotEmpty(t, resps, c.name)
			require.Equal(t, c.skipped, resps[0].Skipped, c.name)
			for _, r := range resps[1:] {
				require.Zero(t, r.Skipped, c.name)
			}
		}
	})
}

// TestConsumeSkippedMidStream: a stream held back by its client while a
// trim removes events it has not read yet reports the gap: each response's
// first seq is the last one delivered + 1 + skipped, and the events
// delivered and skipped add up to the topic.
func TestConsumeSkippedMidStream(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{ConsumePageEvents: 1})
		ctx := ctxT(t)
		const total = 60
		big := make([]byte, 200<<10)
		for range total {
			_, err := ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "m", Events: []*goethev1.EventData{{Payload: big}}})
			require.NoError(t, err)
		}
		s, err := ts.raw.Consume(ctx, &goethev1.ConsumeRequest{Topic: "m"})
		require.NoError(t, err)
		first, err := s.Recv() // the stream is open; the server is held by flow control
		require.NoError(t, err)
		require.Equal(t, uint64(1), first.Events[0].Seq)
		_, err = ts.raw.TrimTopic(ctx, &goethev1.TrimTopicRequest{Topic: "m", Before: &goethev1.TrimTopicRequest_BeforeSeq{BeforeSeq: total - 5}})
		require.NoError(t, err)
		last, delivered, skipped := first.Events[0].Seq, uint64(1), uint64(0)
		for {
			r, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			require.Len(t, r.Events, 1)
			require.Equal(t, last+1+r.Skipped, r.Events[0].Seq)
			last = r.Events[0].Seq
			delivered++
			skipped += r.Skipped
		}
		require.Equal(t, uint64(total), last)
		require.Equal(t, uint64(total), delivered+skipped)
		require.NotZero(t, skipped, "flow control held the stream back before the trim")
	})
}

// TestDeleteTopicRPC: a delete ends the streams following the topic with
// NOT_FOUND (TOPIC_DELETED), frees the name for a new topic with seqs from
// 1, whose events the old streams never get; the cursors go with it; a
// missing topic is NOT_FOUND (TOPIC_NOT_FOUND).
func TestDeleteTopicRPC(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		ctx := ctxT(t)
		_, err := ts.raw.DeleteTopic(ctx, &goethev1.DeleteTopicRequest{Topic: "d"})
		requireReason(t, err, codes.NotFound, goethev1.ReasonTopicNotFound)
		ts.produce("d", "a", "b")
		_, err = ts.raw.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: "d", Consumer: "c", Id: 1})
		require.NoError(t, err)

		s, err := ts.raw.Consume(ctx, &goethev1.ConsumeRequest{Topic: "d", Follow: true})
		require.NoError(t, err)
		r, err := s.Recv()
		require.NoError(t, err)
		require.Len(t, r.Events, 2)

		_, err = ts.raw.DeleteTopic(ctx, &goethev1.DeleteTopicRequest{Topic: "d"})
		require.NoError(t, err)
		ts.produce("d", "new")
		_, err = s.Recv()
		info := requireReason(t, err, codes.NotFound, goethev1.ReasonTopicDeleted)
		require.Equal(t, "d", info.Metadata["topic"])

		got, err := ts.raw.GetTopic(ctx, &goethev1.GetTopicRequest{Topic: "d"})
		require.NoError(t, err)
		require.Equal(t, uint64(1), got.Topic.GetFirstSeq())
		require.Equal(t, uint64(1), got.Topic.GetLastSeq())
		_, err = ts.raw.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: "d", Consumer: "c"})
		requireReason(t, err, codes.NotFound, goethev1.ReasonCursorNotFound)

		// A follower waiting at the end of a topic deleted under it.
		ts.produce("w", "x")
		s, err = ts.raw.Consume(ctx, &goethev1.ConsumeRequest{Topic: "w", Follow: true})
		require.NoError(t, err)
		_, err = s.Recv()
		require.NoError(t, err)
		_, err = ts.raw.DeleteTopic(ctx, &goethev1.DeleteTopicRequest{Topic: "w"})
		require.NoError(t, err)
		_, err = s.Recv()
		requireReason(t, err, codes.NotFound, goethev1.ReasonTopicDeleted)
	})
}
