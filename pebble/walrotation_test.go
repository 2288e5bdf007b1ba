package pebble_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/enginetest"
	"github.com/goethe-log/goethe/pebble"
)

// walRotationChild, when set, makes TestWALRotationOnFullVolume the child
// process that writes: its value is the Options.BallastBytes to use.
const walRotationChild = "GOETHE_TEST_WAL_ROTATION_CHILD"

// walRotationRuns, when set, is how many child runs each case makes
// (default 5): `GOETHE_WAL_ROTATION_RUNS=100 go test -run
// TestWALRotationOnFullVolume ./pebble` for a longer round.
const walRotationRuns = "GOETHE_WAL_ROTATION_RUNS"

// TestWALRotationOnFullVolume: unsynced writes to small memtables (a WAL
// rotation every 64 KiB) fill the volume, so that WAL writes would fail in
// the background while commits keep rotating the WAL. pebble's rotateWAL
// panics with its mutex released when closing a failed WAL fails, a fatal
// error no recover catches (see walReserve). Each run is a child process,
// so a fatal ends only the child; no run may die, with the default ballast
// or with none (1 byte): the WAL's space is allocated before each commit
// reaches pebble, so the volume fills at a commit the DB refuses. Before
// the reservation the case without a ballast ended the process in 10 of 20
// runs (stack: pebble v2.1.7 db.go:2822 rotateWAL, from makeRoomForWrite
// in commitWrite); the ballast alone made it rare, not impossible.
func TestWALRotationOnFullVolume(t *testing.T) {
	if b := os.Getenv(walRotationChild); b != "" {
		ballast, err := strconv.ParseInt(b, 10, 64)
		require.NoError(t, err)
		fillUnsynced(t, ballast)
		return
	}
	runs := 5
	if v := os.Getenv(walRotationRuns); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, walRotationRuns)
		runs = n
	}
	for _, tc := range []struct {
		name    string
		ballast int64 // 0: the default
	}{
		{"ballast=default", 0},
		{"ballast=1B", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range runs {
				cmd := exec.Command(os.Args[0], "-test.run=^TestWALRotationOnFullVolume$", "-test.count=1", "-test.v")
				cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", walRotationChild, tc.ballast))
				out, err := cmd.CombinedOutput()
				if bytes.Contains(out, []byte("unlock of unlocked mutex")) {
					t.Fatalf("run %d: pebble ended the process in its WAL rotation:\n%s", i, tail(out, 4000))
				}
				require.NoError(t, err, "run %d:\n%s", i, tail(out, 4000))
			}
		})
	}
}

// fillUnsynced writes 4 KiB entries unsynced to a full volume until a
// write fails with ErrNoSpace.
func fillUnsynced(t *testing.T, ballast int64) {
	dir := enginetest.SmallTmpfs(t, 8<<20)
	db, err := pebble.Open(dir, pebble.Options{MemTableSize: 64 << 10, BallastBytes: ballast})
	require.NoError(t, err)
	release := enginetest.FillDisk(t, dir)
	defer release()
	var b engine.Batch
	value := enginetest.Garbage(4 << 10)
	for i := 0; i < 100_000 && err == nil; i++ {
		b.Reset()
		b.Put(fmt.Appendf(nil, "unsynced%06d", i), value)
		err = db.Write(&b, false)
	}
	require.ErrorIs(t, err, engine.ErrNoSpace)
	require.NoError(t, db.Close())
}

// tail is the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
