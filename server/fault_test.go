package server_test

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/faultengine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// A failed engine write fails every request of its group, unary Produces
// and ProduceStream requests alike, with one status: UNAVAILABLE, reason
// STORE_FAILED, the same message. Nothing of the group becomes visible;
// every later write fails with the same status without reaching the
// engine; reads go on. In both fault modes: a write refused outright, and
// one that reached the engine yet reported failure.
func TestFailedWrite(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		for _, mode := range []faultengine.Mode{faultengine.BeforeApply, faultengine.AfterApply} {
			t.Run("mode="+mode.String(), func(t *testing.T) { testFailedWrite(t, engine, mode) })
		}
	})
}

func testFailedWrite(t *testing.T, eng string, mode faultengine.Mode) {
	ts := startFaultServer(t, eng, server.Options{})
	ctx := ctxT(t)
	stored := ts.produce("t", "a", "b")
	_, err := ts.raw.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: "t", Consumer: "c", Id: stored[0].ID(0)})
	require.NoError(t, err)

	// From here the store writes twice: the lead's write, which passes,
	// then the group's, which fails. No later write reaches the engine.
	var decided atomic.Int32
	ts.fault.FailWritesIf(mode, func(*engine.Batch) bool { return decided.Add(1) > 1 })
	release := ts.fault.BlockWrites()
	defer release()
	writesBefore := ts.fault.Stats().Writes
	lead := make(chan error, 1)
	go func() {
		_, err := ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "lead", Events: events(1, 1)})
		lead <- err
	}()
	require.Eventually(t, func() bool { return ts.fault.Waiting() == 1 }, 10*time.Second, time.Millisecond,
		"the lead's write is held: what follows queues for the next group")

	// The group: unary Produces and stream requests, to a topic that exists
	// and to one that does not yet.
	topic := func(i int) string { return []string{"t", "new"}[i%2] }
	const unary, streamed = 8, 50
	unaryErrs := make(chan error, unary)
	for i := range unary {
		go func() {
			_, err := ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: topic(i), Events: events(1, 1)})
			unaryErrs <- err
		}()
	}
	stream := ts.openBatched(ctx)
	for i := range streamed {
		require.NoError(t, stream.Send(streamReq(uint64(i+1), topic(i), "s")))
	}
	// A request without a produce is answered at once, after the requests
	// before it are queued in the store: they are in the group.
	require.NoError(t, stream.Send(&goethev1.ProduceStreamRequest{RequestId: 1000}))
	marker := recvAnswers(t, stream, 1)
	require.Equal(t, uint64(1000), marker[0].RequestId)
	require.Equal(t, codes.InvalidArgument, status.FromProto(marker[0].GetError()).Code())
	release()
	require.NoError(t, <-lead)

	answers := recvAnswers(t, stream, streamed)
	failure := status.FromProto(answers[0].GetError())
	requireStoreFailed(t, failure)
	for i, a := range answers {
		require.Equal(t, uint64(i+1), a.RequestId, "answers in the order of the requests")
		requireSameStatus(t, failure, status.FromProto(a.GetError()))
	}
	for range unary {
		requireSameStatus(t, failure, status.Convert(<-unaryErrs))
	}
	fs := ts.fault.Stats()
	require.Equal(t, int64(1), fs.Injected, "one failed write")
	require.Equal(t, writesBefore+2, fs.Writes, "the lead's and the group's")
	require.GreaterOrEqual(t, ts.st.Stats().MaxRequests, uint64(streamed), "the stream's requests were one group")

	// Nothing of the group is visible.
	require.Equal(t, []string{"a", "b"}, payloads(ts.readAll("t", client.ConsumeOptions{})))
	_, err = ts.raw.GetTopic(ctx, &goethev1.GetTopicRequest{Topic: "new"})
	requireReason(t, err, codes.NotFound, goethev1.ReasonTopicNotFound)
	list, err := ts.raw.ListTopics(ctx, &goethev1.ListTopicsRequest{})
	require.NoError(t, err)
	require.Len(t, list.Topics, 2)
	require.Equal(t, "lead", list.Topics[0].Name)
	require.Equal(t, "t", list.Topics[1].Name)
	require.Equal(t, uint64(2), list.Topics[1].Count)

	// Later writes fail the same way, and reach no engine.
	_, err = ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "t", Events: events(1, 1)})
	requireSameStatus(t, failure, status.Convert(err))
	_, err = ts.raw.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: "t", Consumer: "c", Id: stored[1].ID(0)})
	requireSameStatus(t, failure, status.Convert(err))
	require.NoError(t, stream.Send(streamReq(2000, "t", "later")))
	later := recvAnswers(t, stream, 1)
	require.Equal(t, uint64(2000), later[0].RequestId)
	requireSameStatus(t, failure, status.FromProto(later[0].GetError()))
	require.Equal(t, writesBefore+2, ts.fault.Stats().Writes)

	// Reads go on, and the stream ends OK when the client half-closes.
	cur, err := ts.raw.GetCursor(ctx, &goethev1.GetCursorRequest{Topic: "t", Consumer: "c"})
	require.NoError(t, err)
	require.Equal(t, stored[0].ID(0), cur.Id)
	require.Equal(t, uint64(1), cur.Lag)
	require.NoError(t, stream.CloseSend())
	requireStreamEndsOK(t, stream)
}

// requireStoreFailed requires st to be the status of a failed store write.
func requireStoreFailed(t *testing.T, st *status.Status) {
	t.Helper()
	require.Equal(t, codes.Unavailable, st.Code(), "%v", st)
	require.Equal(t, goethev1.ReasonStoreFailed, errorInfo(t, st).Reason)
}

// An event damaged on disk fails the Consume that meets it with DATA_LOSS,
// reason DATA_LOSS, and a log line; the events before it are delivered
// unchanged, and the damaged one is never delivered changed.
func TestDamagedEventIsDataLoss(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng string) {
		var logs testutil.SyncBuffer
		ts := startServer(t, eng, server.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		ts.produce("t", "first", "second", "third")
		ts.stop()

		e, err := engines.Open(eng, ts.dir)
		require.NoError(t, err)
		testutil.FlipEventByte(t, e, 3, 1)
		require.NoError(t, e.Close())
		ts.start()

		stream, err := ts.raw.Consume(ctxT(t), &goethev1.ConsumeRequest{Topic: "t"})
		require.NoError(t, err)
		var got []string
		for {
			resp, err := stream.Recv()
			if err != nil {
				requireReason(t, err, codes.DataLoss, goethev1.ReasonDataLoss)
				break
			}
			for _, ev := range resp.Events {
				got = append(got, string(ev.Payload))
			}
		}
		require.NotContains(t, got, "secone")
		require.Subset(t, []string{"first"}, got)
		require.Contains(t, logs.String(), "damaged record")
	})
}
