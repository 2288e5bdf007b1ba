package server_test

import (
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/enginetest"
	"github.com/goethe-log/goethe/engine/faultengine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// diskProbe is the store's probe interval in the full-disk tests: short,
// so that the write path resumes soon after space is freed.
const diskProbe = 5 * time.Millisecond

// startDiskServer serves engine eng in dir, wrapped in a faultengine when
// wrap is set, with a store that probes every diskProbe and, when reopen is
// set, resumes by reopening its engine once the volume has room (as
// cmd/goethe runs it). The
// server's log goes to logs.
func startDiskServer(t *testing.T, eng, dir string, wrap, reopen bool, logs *testutil.SyncBuffer) *testServer {
	t.Helper()
	sopts := store.DefaultOptions()
	sopts.ProbeInterval = diskProbe
	if reopen {
		sopts.Reopen = func() (engine.Engine, error) { return engines.Open(eng, dir) }
		sopts.FreeBytes = statfsFree(dir)
	}
	ts := &testServer{t: t, engine: eng, dir: dir, withFaults: wrap, storeOpts: &sopts,
		opts: server.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))}}
	ts.start()
	t.Cleanup(func() {
		if ts.srv != nil {
			if ts.fault != nil {
				ts.fault.Disarm()
			}
			ts.stop()
		}
	})
	return ts
}

// statfsFree measures the free space of dir's volume, as cmd/goethe does.
func statfsFree(dir string) func() (uint64, error) {
	return func() (uint64, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, err
		}
		return st.Bavail * uint64(st.Bsize), nil
	}
}

// messages collects every status message a test received, to check at the
// end that none names a path of the data folder.
type messages []string

func (m *messages) add(err error) {
	if err != nil {
		m.addStatus(status.Convert(err))
	}
}

func (m *messages) addStatus(st *status.Status) { *m = append(*m, st.Message()) }

// requireNoServerPath fails if a path of the data folder dir appears in a
// message; the server's log must have the engine's error, whole.
func (m messages) requireNoServerPath(t *testing.T, dir string, logs string) {
	t.Helper()
	require.NotEmpty(t, m)
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	for _, msg := range m {
		require.NotContains(t, msg, dir, "a status message carries the data folder's path")
		require.NotContains(t, msg, abs, "a status message carries the data folder's path")
	}
	require.Contains(t, logs, "no space left on device", "the server logs the engine's error whole")
}

func healthOf(t *testing.T, ts *testServer, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	res, err := healthpb.NewHealthClient(ts.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{Service: service})
	require.NoError(t, err)
	return res.Status
}

// requireDiskFull requires err to be RESOURCE_EXHAUSTED, DISK_FULL.
func requireDiskFull(t *testing.T, err error) {
	t.Helper()
	requireReason(t, err, codes.ResourceExhausted, goethev1.ReasonDiskFull)
	require.Contains(t, status.Convert(err).Message(), "disk is full")
}

// fullDiskRound is what every full-disk test checks, over gRPC on
// loopback: with acked events stored, fill makes the disk full; Produces
// (unary, then streamed) end in RESOURCE_EXHAUSTED with reason DISK_FULL,
// whose message names no server path; cursor commits fail the same way;
// Consume and GetTopic go on; health of goethe.v1.Goethe turns
// NOT_SERVING while "" stays SERVING. After free, writes resume without a
// restart, health is SERVING again, and every acknowledged event is there,
// seqs dense.
func fullDiskRound(t *testing.T, ts *testServer, logs *testutil.SyncBuffer, payload int, fill, free func()) {
	ctx := ctxT(t)
	var msgs messages
	for i := range 3 {
		ts.produce("t", fmt.Sprintf("before-%d", i))
	}
	acked := payloads(ts.readAll("t", client.ConsumeOptions{}))
	r, err := ts.c.Produce(ctx, "t", []client.EventData{{Payload: []byte("cursor")}})
	require.NoError(t, err)
	acked = append(acked, "cursor")
	require.NoError(t, ts.c.CommitCursor(ctx, "t", "c", r.ID(0)))
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, healthOf(t, ts, server.ServiceName))
	// A follower at the end stays through the full disk.
	sub, err := ts.c.Subscribe(ctx, "t", client.ConsumeOptions{From: client.AfterID(r.ID(0)), Follow: true})
	require.NoError(t, err)
	defer sub.Close()

	fill()
	// Produce until the disk refuses: on a real volume the engines may
	// have room left in their files for a few writes.
	var failed error
	big := strings.Repeat("x", payload)
	for i := 0; i < 4096 && failed == nil; i++ {
		p := fmt.Sprintf("fill-%d-%s", i, big)
		_, failed = ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "t", Events: []*goethev1.EventData{{Payload: []byte(p)}}})
		if failed == nil {
			acked = append(acked, p)
		}
	}
	msgs.add(failed)
	requireDiskFull(t, failed)
	unknown := 1 // the failed Produce: its outcome is unknown

	// Later writes fail the same way, without a restart in between.
	_, err = ts.raw.Produce(ctx, &goethev1.ProduceRequest{Topic: "t", Events: []*goethev1.EventData{{Payload: []byte("refused")}}})
	msgs.add(err)
	requireDiskFull(t, err)
	_, err = ts.raw.CommitCursor(ctx, &goethev1.CommitCursorRequest{Topic: "t", Consumer: "c", Id: r.ID(0)})
	msgs.add(err)
	requireDiskFull(t, err)
	stream := ts.openRaw(ctx)
	require.NoError(t, stream.Send(streamReq(1, "t", "streamed")))
	resp, err := stream.Recv()
	require.NoError(t, err)
	st := status.FromProto(resp.GetError())
	msgs.addStatus(st)
	requireDiskFull(t, st.Err())
	require.NoError(t, stream.CloseSend())

	// Reads go on.
	got := payloads(ts.readAll("t", client.ConsumeOptions{}))
	require.GreaterOrEqual(t, len(got), len(acked))
	require.Equal(t, acked, got[:len(acked)], "every acknowledged event is readable")
	info, err := ts.raw.GetTopic(ctx, &goethev1.GetTopicRequest{Topic: "t"})
	msgs.add(err)
	require.NoError(t, err)
	require.GreaterOrEqual(t, info.GetTopic().GetLastSeq(), uint64(len(acked)))
	cur, err := ts.c.GetCursor(ctx, "t", "c")
	require.NoError(t, err)
	require.Equal(t, r.ID(0), cur.ID)
	require.Eventually(t, func() bool {
		return healthOf(t, ts, server.ServiceName) == healthpb.HealthCheckResponse_NOT_SERVING
	}, 10*time.Second, time.Millisecond, "health of the service says writes are down")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, healthOf(t, ts, ""), "the server as a whole still serves reads")

	free()
	require.Eventually(t, func() bool {
		return healthOf(t, ts, server.ServiceName) == healthpb.HealthCheckResponse_SERVING
	}, 30*time.Second, time.Millisecond, "writes resume once space is freed, without a restart")
	after, err := ts.c.Produce(ctx, "t", []client.EventData{{Payload: []byte("after")}})
	require.NoError(t, err)
	require.NoError(t, ts.c.CommitCursor(ctx, "t", "c", after.ID(0)))

	evs := ts.readAll("t", client.ConsumeOptions{})
	for i, e := range evs {
		require.Equal(t, uint64(i+1), e.Seq, "seqs stay dense")
		if i > 0 {
			require.Greater(t, e.ID, evs[i-1].ID)
		}
	}
	got = payloads(evs)
	require.Equal(t, acked, got[:len(acked)])
	require.LessOrEqual(t, len(got), len(acked)+unknown+1, "no event stored twice, none that was refused")
	require.Equal(t, "after", got[len(got)-1])
	require.Equal(t, after.FirstSeq, uint64(len(got)))
	// The follower saw every event after its start, "after" last.
	var followed []string
	for len(followed) == 0 || followed[len(followed)-1] != "after" {
		followed = append(followed, string(next(t, sub).Payload))
	}
	start := -1 // the index of this round's "cursor" event, the last one
	for i, p := range got {
		if p == "cursor" {
			start = i
		}
	}
	require.Equal(t, got[start+1:], followed)

	msgs.requireNoServerPath(t, ts.dir, logs.String())
}

// TestDiskFullFaults: a full disk as the fault engine makes it, before the
// write reaches the engine and after, on every engine, with the engine's
// error carrying a path of the data folder as a real one does.
func TestDiskFullFaults(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng string) {
		for _, mode := range []faultengine.Mode{faultengine.BeforeApply, faultengine.AfterApply} {
			t.Run("mode="+mode.String(), func(t *testing.T) {
				var logs testutil.SyncBuffer
				ts := startDiskServer(t, eng, t.TempDir(), true, false, &logs)
				cause := fmt.Errorf("%w: %w", engine.ErrNoSpace,
					&fs.PathError{Op: "write", Path: filepath.Join(ts.dir, "000001.log"), Err: syscall.ENOSPC})
				fullDiskRound(t, ts, &logs, 16,
					func() { ts.fault.FailWritesWith(mode, cause) },
					func() { ts.fault.Disarm() })
				require.Contains(t, logs.String(), ts.dir, "the server logs the full error, paths and all")
			})
		}
	})
}

// TestDiskFullTmpfs: the same on a real full volume, a small tmpfs
// (skipped where one cannot be mounted), twice in a row on one server.
func TestDiskFullTmpfs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng string) {
		dir := enginetest.SmallTmpfs(t, enginetest.FullDiskTmpfsSize)
		var logs testutil.SyncBuffer
		ts := startDiskServer(t, eng, filepath.Join(dir, "data"), false, true, &logs)
		for range 2 {
			var release func()
			fullDiskRound(t, ts, &logs, 4<<10,
				func() { release = enginetest.FillDisk(t, dir) },
				func() { release() })
		}
		// The log is whole after a restart too.
		n := len(ts.readAll("t", client.ConsumeOptions{}))
		ts.stop()
		ts2 := startDiskServer(t, eng, filepath.Join(dir, "data"), false, true, &logs)
		require.Len(t, ts2.readAll("t", client.ConsumeOptions{}), n)
	})
}
