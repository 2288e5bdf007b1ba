package pebble_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/enginetest"
	"github.com/goethe-log/goethe/pebble"
)

func openNoWAL(t *testing.T, dir string) (engine.Engine, error) {
	db, err := pebble.Open(dir, pebble.Options{DisableWAL: true})
	if err != nil {
		return nil, err
	}
	return db, nil
}

// Without a WAL the adapter keeps the engine contract, Close included:
// what a clean Close found in the memtables is flushed.
func TestConformanceNoWAL(t *testing.T) {
	enginetest.Run(t, openNoWAL)
}

func TestFullDiskNoWAL(t *testing.T) {
	enginetest.RunFullDisk(t, openNoWAL, enginetest.ResumeAfterReopen)
}

// noWALChild, when set, makes TestNoWALCrash the child that writes; its
// value is the data folder.
const noWALChild = "GOETHE_TEST_NOWAL_CHILD"

// TestNoWALCrash: a process killed with SIGKILL keeps, without a WAL,
// every write up to its last synced one (a synced write flushes the
// memtable), and loses the unsynced writes after it, whole batches only:
// what a caller that replays from its own log (the Raft log) expects.
func TestNoWALCrash(t *testing.T) {
	if dir := os.Getenv(noWALChild); dir != "" {
		db, err := pebble.Open(dir, pebble.Options{DisableWAL: true})
		require.NoError(t, err)
		write := func(i int, sync bool) {
			var b engine.Batch
			b.Put(fmt.Appendf(nil, "k%04d", i), []byte("v"))
			b.Put(fmt.Appendf(nil, "m%04d", i), []byte("w")) // two keys: a batch is whole or absent
			require.NoError(t, db.Write(&b, sync))
		}
		for i := range 100 {
			write(i, i == 49) // 0..49 before the synced write, which flushes them
		}
		fmt.Println("written")
		select {} // the parent kills the process
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoWALCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), noWALChild+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "written\n", line)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()

	db, err := pebble.Open(dir, pebble.Options{DisableWAL: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	kvs, err := db.Scan(nil, nil, 1000, 0)
	require.NoError(t, err)
	keys := map[string]bool{}
	for _, kv := range kvs {
		keys[string(kv.Key)] = true
	}
	for i := range 50 {
		require.True(t, keys[fmt.Sprintf("k%04d", i)], "k%04d, written before the synced write, was lost", i)
	}
	for i := range 100 {
		require.Equal(t, keys[fmt.Sprintf("k%04d", i)], keys[fmt.Sprintf("m%04d", i)], "batch %d torn", i)
	}
	t.Logf("%d of 100 batches survived the kill (50 synced)", len(kvs)/2)
}
