package peers

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/loadgen"
)

func TestWorkloadsPipelined(t *testing.T) {
	var ids []string
	var p Workload
	for _, w := range Workloads(time.Second, 1000) {
		ids = append(ids, w.ID)
		if w.ID == "p-100B" {
			p = w
		}
	}
	require.Equal(t, []string{"a16-100B", "a1-100B", "b-100B", "p-100B", "c-100B", "c-1KiB", "d16-1KiB", "d1-1KiB", "e-100B"}, ids)
	c := p.Config
	require.True(t, c.Pipelined)
	require.Equal(t, 1, c.Producers)
	require.Equal(t, 1000, c.Batch)
	require.Equal(t, 100, c.Size)
	require.Equal(t, time.Second, c.Duration)
	require.NoError(t, c.Validate())
	require.Contains(t, p.Title, "(b')")
}

func TestSystemsAndRunsOn(t *testing.T) {
	all := Systems([]string{"leveldb", "pebble"}, []string{"leveldb"}, GoetheAsync)
	var keys []string
	for _, s := range all {
		keys = append(keys, s.Key())
		if s.Peer {
			require.Empty(t, s.Client, s.Key())
		} else {
			require.Equal(t, GoetheAsync, s.Client, s.Key())
			require.Contains(t, s.Title, "async client")
		}
	}
	require.Equal(t, []string{"nats.default", "nats.fsync", "redis.default", "redis.fsync",
		"goethe-leveldb.fsync", "goethe-pebble.fsync", "goethe-leveldb.nosync"}, keys)

	extra := ExtraClient(all[4], GoetheStream)
	require.Equal(t, "goethe-leveldb-stream.fsync", extra.Key())
	require.Equal(t, "Goethe leveldb (--sync=true, stream client)", extra.Title)
	require.True(t, extra.Extra)
	require.Equal(t, "leveldb", extra.Engine)
	require.False(t, all[4].Extra, "ExtraClient changed its argument")

	on := map[string][]string{}
	for _, w := range Workloads(time.Second, 1000) {
		for _, s := range append(all, extra) {
			if RunsOn(w, s) {
				on[s.Key()] = append(on[s.Key()], w.ID)
			}
		}
	}
	require.Equal(t, []string{"a16-100B", "a1-100B", "d16-1KiB", "e-100B"}, on["goethe-leveldb-stream.fsync"])
	require.Len(t, on["goethe-leveldb.fsync"], 9, "Goethe --sync=true runs everything")
	require.NotContains(t, on["redis.fsync"], "c-100B", "read-back runs at the default only")
	require.Contains(t, on["redis.default"], "c-100B")
	require.NotContains(t, on["goethe-leveldb.nosync"], "c-1KiB")
}

func TestGoetheOpenerShapes(t *testing.T) {
	for _, shape := range []string{GoetheAsync, GoetheStream, GoetheUnary, ""} {
		open, err := GoetheOpener("127.0.0.1:1", shape, 0)
		require.NoError(t, err, shape)
		require.NotNil(t, open)
	}
	_, err := GoetheOpener("127.0.0.1:1", "carrier-pigeon", 1)
	require.ErrorContains(t, err, "unknown goethe client shape")
	for shape := range ClientShapes {
		require.Contains(t, []string{GoetheAsync, GoetheStream, GoetheUnary}, shape)
	}
}

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name, stat   string
		user, system time.Duration
		err          string
	}{
		{"plain", "4242 (redis-server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 157 23 0 0 20 0 5 0 100 0 0", 1570 * time.Millisecond, 230 * time.Millisecond, ""},
		{"name with spaces and parentheses", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 2 3 0 0 20 0 1 0 5", 20 * time.Millisecond, 30 * time.Millisecond, ""},
		{"no name", "4242 redis-server S 1", 0, 0, "without a command name"},
		{"short", "1 (x) S 1 2 3", 0, 0, "fields after the command name"},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a 3 0", 0, 0, "utime or stime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, s, err := parseProcStat(tc.stat)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.user, u)
			require.Equal(t, tc.system, s)
		})
	}
}

// TestProcCPU reads this process's own CPU time: it grows while the
// process computes.
func TestProcCPU(t *testing.T) {
	if _, _, err := ProcCPU(os.Getpid()); err == ErrNoProcCPU {
		t.Skip(err)
	}
	u0, s0, err := ProcCPU(os.Getpid())
	require.NoError(t, err)
	deadline := time.Now().Add(10 * time.Second)
	x := uint64(1)
	for {
		for i := range 1_000_000 {
			x = x*6364136223846793005 + uint64(i)
		}
		u, s, err := ProcCPU(os.Getpid())
		require.NoError(t, err)
		if u+s > u0+s0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "CPU time did not grow in 10 s of computing (%d)", x)
	}
	_, _, err = ProcCPU(1 << 30)
	require.Error(t, err)
}

// TestRunnerCPU runs a pipelined produce workload through Runner on Redis
// and checks that the record holds the server's and the client's CPU.
func TestRunnerCPU(t *testing.T) {
	bin := binary(t, "redis-server")
	out := t.TempDir()
	r := &Runner{RedisBin: bin, WorkDir: t.TempDir(), OutDir: out}
	var w Workload
	for _, wl := range Workloads(300*time.Millisecond, 5000) {
		if wl.ID == "p-100B" {
			w = wl
		}
	}
	sys := Systems(nil, nil, GoetheStream)[3] // Redis, always
	rec, err := r.Run(context.Background(), w, sys, 1)
	require.NoError(t, err)
	require.Positive(t, rec.Result.Produce.Events)
	for name, c := range map[string]loadgen.CPU{"server": rec.ServerCPU, "client": rec.Result.ClientCPU} {
		if name == "server" {
			if _, _, err := ProcCPU(os.Getpid()); err == ErrNoProcCPU {
				continue
			}
		}
		require.True(t, c.Measured(), "%s CPU: %+v", name, c)
		require.InDelta(t, (c.UserSeconds+c.SystemSeconds)*1e6/float64(rec.Result.Produce.Events), c.MicrosPerEvent, 1e-6*c.MicrosPerEvent, name)
	}
	recs, err := ReadRecords(out)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, rec.ServerCPU, recs[0].ServerCPU)
	require.Equal(t, filepath.Base("p-100B.redis.fsync.r1.json"), recs[0].FileName())
}

func TestMachineAppendFsync(t *testing.T) {
	dir := t.TempDir()
	a, err := MeasureAppendFsync(context.Background(), dir, "start", 20*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, a, len(AppendFsyncSizes))
	for i, m := range a {
		require.Equal(t, "start", m.When)
		require.Equal(t, AppendFsyncSizes[i], m.RecordBytes)
		require.Positive(t, m.PerSec)
	}
	m := Machine{AppendFsync: []AppendFsync{
		{When: "start", Result: a[0].Result}, {When: "end", Result: a[0].Result},
	}}
	m.AppendFsync[1].PerSec = 3 * a[0].PerSec
	require.InDelta(t, 2*a[0].PerSec, m.AppendFsyncRate(100), 1e-9)
	require.Zero(t, m.AppendFsyncRate(4096))

	require.NoError(t, WriteMachine(dir, m))
	back, err := ReadMachine(dir)
	require.NoError(t, err)
	require.Equal(t, m.AppendFsync, back.AppendFsync)
}

// TestRunnerGoethe runs the pipelined and a 16-producer workload on a
// Goethe server (the binary results.sh builds into .work/bin) through the
// async client shape and the stream shape beside it, and checks what the
// records say.
func TestRunnerGoethe(t *testing.T) {
	bin := binary(t, "goethe")
	out := t.TempDir()
	r := &Runner{GoetheBin: bin, WorkDir: t.TempDir(), OutDir: out}
	workloads := map[string]Workload{}
	for _, wl := range Workloads(300*time.Millisecond, 5000) {
		workloads[wl.ID] = wl
	}
	primary := Systems([]string{"leveldb"}, nil, GoetheAsync)[4]
	primary.Connections = 1
	extra := ExtraClient(primary, GoetheStream)
	for _, tc := range []struct {
		workload string
		system   System
	}{
		{"p-100B", primary},
		{"a16-100B", primary},
		{"a16-100B", extra},
	} {
		w := workloads[tc.workload]
		require.True(t, RunsOn(w, tc.system))
		rec, err := r.Run(context.Background(), w, tc.system, 1)
		require.NoError(t, err, "%s on %s", tc.workload, tc.system.Key())
		require.Positive(t, rec.Result.Produce.Events)
		require.Zero(t, rec.Result.Errors)
		require.True(t, rec.Result.ClientCPU.Measured())
		if _, _, err := ProcCPU(os.Getpid()); err != ErrNoProcCPU {
			require.True(t, rec.ServerCPU.Measured(), "%s on %s: %+v", tc.workload, tc.system.Key(), rec.ServerCPU)
		}
		require.Contains(t, rec.Result.Label, tc.system.Client+" client")
	}
	recs, err := ReadRecords(out)
	require.NoError(t, err)
	var names []string
	for _, rec := range recs {
		names = append(names, rec.FileName())
	}
	require.ElementsMatch(t, []string{"p-100B.goethe-leveldb.fsync.r1.json", "a16-100B.goethe-leveldb.fsync.r1.json",
		"a16-100B.goethe-leveldb-stream.fsync.r1.json"}, names)
}
