package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
)

// The crash test's load: producers append batches of numbered events to a
// few topics, each producer waiting for its batch's acknowledgement before
// sending the next. The server is killed once enough batches are
// acknowledged, after a random delay, so that batches are in flight.
const (
	crashProducers  = 8
	crashTopics     = 3
	crashMaxBatch   = 40
	crashMinAcked   = 300                    // batches acknowledged before the kill may come
	crashKillJitter = 150 * time.Millisecond // the kill comes within this after them
	crashRounds     = 3
)

func TestCrashSafety(t *testing.T) {
	rounds := crashRounds
	if testing.Short() {
		rounds = 1
	}
	for _, tc := range []struct {
		engine string
		sync   bool
	}{
		// The default: every acknowledged event is fsync'd.
		{"leveldb", true},
		{"pebble", true},
		{"bolt", true},
		// Without fsync, goleveldb and bbolt still hand every acknowledged
		// write to the operating system, so it survives a process crash.
		// (Pebble buffers its log in the process without sync: a process
		// crash may lose its last acknowledged events, as the README says.)
		{"leveldb", false},
		{"bolt", false},
	} {
		engine, syncFlag := tc.engine, fmt.Sprintf("--sync=%t", tc.sync)
		t.Run(fmt.Sprintf("engine=%s/sync=%t", tc.engine, tc.sync), func(t *testing.T) {
			dir := t.TempDir()
			log := newCrashLog()
			var checks []func() string // the checks of each round's crashed folder
			for round := range rounds {
				srv := startServer(t, engine, dir, syncFlag)
				if round > 0 {
					t.Logf("round %d: %d of the batches in flight at the kill were stored", round-1, log.verify(t, srv.addr))
				}
				sent, unacked := log.load(t, srv, round)
				t.Logf("round %d: %d batches acknowledged, %d in flight at the kill", round, sent-unacked, unacked)
				checks = append(checks, checkCrashed(t, dir))
			}
			srv := startServer(t, engine, dir, syncFlag)
			t.Logf("round %d: %d of the batches in flight at the kill were stored", rounds-1, log.verify(t, srv.addr))
			srv.stop()
			for round, wait := range checks {
				t.Logf("round %d: goethe check after the kill: %s", round, wait())
			}
			t.Logf("goethe check after the clean stop: %s", requireCheckClean(t, dir))
		})
	}
}

// batchKey names a batch: its round, producer and number.
type batchKey struct{ round, producer, n int }

// batch is a Produce the test sent.
type batch struct {
	topic string
	size  int
	acked bool
	res   client.ProduceResult // when acked
}

// storedEvent is an event the test knows to be stored.
type storedEvent struct {
	payload  string
	id, seq  uint64
	producer int
}

// crashLog is what the producers know: the batches they sent in the
// current round, and the events known to be stored from earlier rounds,
// per topic, in order.
type crashLog struct {
	mu      sync.Mutex
	batches map[batchKey]*batch
	known   map[string][]storedEvent
}

func newCrashLog() *crashLog {
	return &crashLog{batches: map[batchKey]*batch{}, known: map[string][]storedEvent{}}
}

func topicName(i int) string { return fmt.Sprintf("crash-%d", i) }

func payload(k batchKey, i, size int) string {
	return fmt.Sprintf("r=%d p=%d b=%d i=%d n=%d", k.round, k.producer, k.n, i, size)
}

// load runs the producers against srv until it is killed, and returns how
// many batches were sent and how many of them were not acknowledged.
func (l *crashLog) load(t *testing.T, srv *server, round int) (sent, unacked int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var acked atomic.Int64
	var wg sync.WaitGroup
	for p := range crashProducers {
		c, err := client.Dial(srv.addr)
		require.NoError(t, err)
		defer c.Close()
		rng := rand.New(rand.NewPCG(uint64(round), uint64(p)))
		wg.Go(func() {
			topic := topicName(p % crashTopics)
			for n := 0; ctx.Err() == nil; n++ {
				k := batchKey{round, p, n}
				size := 1 + rng.IntN(crashMaxBatch)
				events := make([]client.EventData, size)
				for i := range events {
					events[i] = client.EventData{Payload: []byte(payload(k, i, size)), Headers: map[string]string{"producer": fmt.Sprint(p)}}
				}
				b := &batch{topic: topic, size: size}
				l.mu.Lock()
				l.batches[k] = b
				l.mu.Unlock()
				res, err := c.Produce(ctx, topic, events)
				if err != nil {
					// The server is gone: this batch may or may not be
					// stored, and the producer stops.
					return
				}
				l.mu.Lock()
				b.acked, b.res = true, res
				l.mu.Unlock()
				acked.Add(1)
			}
		})
	}
	require.Eventually(t, func() bool { return acked.Load() >= crashMinAcked }, 20*time.Second, time.Millisecond,
		"the producers got no acknowledgements:\n%s", srv.stderr.String())
	time.Sleep(rand.N(crashKillJitter))
	srv.kill()
	wg.Wait()
	require.NoError(t, ctx.Err(), "the producers did not stop when the server was killed")

	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.batches {
		sent++
		if !b.acked {
			unacked++
		}
	}
	return sent, unacked
}

// verify reads every topic from the server at addr and checks it against
// the log: the events known from earlier rounds come first, unchanged;
// then every batch of the last round that was acknowledged is there once,
// whole, with its acknowledged ids and seqs, and every unacknowledged one
// is there whole or not at all; nothing else is; seqs are dense and ids
// increase. Batches found are then known, and the round's log is cleared.
// It returns how many unacknowledged batches were found.
func (l *crashLog) verify(t *testing.T, addr string) (unackedFound int) {
	t.Helper()
	c, err := client.Dial(addr)
	require.NoError(t, err)
	defer c.Close()
	l.mu.Lock()
	defer l.mu.Unlock()

	found := map[batchKey]bool{}
	for ti := range crashTopics {
		topic := topicName(ti)
		var events []client.Event
		for ev, err := range c.Consume(t.Context(), topic, client.ConsumeOptions{}) {
			if errors.Is(err, client.ErrNotFound) && len(l.known[topic]) == 0 {
				break // not created yet
			}
			require.NoError(t, err)
			events = append(events, ev)
		}
		var prevID uint64
		for i, ev := range events {
			require.Equal(t, uint64(i+1), ev.Seq, "%s: seqs are dense", topic)
			require.Greater(t, ev.ID, prevID, "%s: ids increase", topic)
			require.Equal(t, topic, ev.Topic)
			prevID = ev.ID
		}

		known := l.known[topic]
		require.GreaterOrEqual(t, len(events), len(known), "%s: events known to be stored are lost", topic)
		for i, k := range known {
			ev := events[i]
			require.Equal(t, k, storedEvent{payload: string(ev.Payload), id: ev.ID, seq: ev.Seq, producer: k.producer},
				"%s: event %d changed", topic, i)
		}

		// The last round's events: whole batches, each once.
		rest := events[len(known):]
		for len(rest) > 0 {
			var k batchKey
			var i, size int
			_, err := fmt.Sscanf(string(rest[0].Payload), "r=%d p=%d b=%d i=%d n=%d", &k.round, &k.producer, &k.n, &i, &size)
			require.NoError(t, err, "%s: unknown event %q", topic, rest[0].Payload)
			b := l.batches[k]
			require.NotNil(t, b, "%s: event %q of a batch never sent", topic, rest[0].Payload)
			require.Equal(t, topic, b.topic, "%s: event %q of a batch sent elsewhere", topic, rest[0].Payload)
			require.False(t, found[k], "%s: batch %+v stored twice", topic, k)
			require.GreaterOrEqual(t, len(rest), b.size, "%s: batch %+v cut short", topic, k)
			for j, ev := range rest[:b.size] {
				require.Equal(t, payload(k, j, b.size), string(ev.Payload), "%s: batch %+v not whole and in order", topic, k)
				require.Equal(t, map[string]string{"producer": fmt.Sprint(k.producer)}, ev.Headers)
				if b.acked {
					require.Equal(t, b.res.ID(j), ev.ID, "%s: batch %+v event %d has another id than acknowledged", topic, k, j)
					require.Equal(t, b.res.Seq(j), ev.Seq, "%s: batch %+v event %d has another seq than acknowledged", topic, k, j)
				}
				known = append(known, storedEvent{payload: string(ev.Payload), id: ev.ID, seq: ev.Seq, producer: k.producer})
			}
			found[k] = true
			if !b.acked {
				unackedFound++
			}
			rest = rest[b.size:]
		}
		l.known[topic] = known
		if len(events) > 0 {
			// A consumer's cursor at the end, for goethe check to verify
			// after the next kill.
			require.NoError(t, c.CommitCursor(t.Context(), topic, "crash-reader", events[len(events)-1].ID))
		}
	}
	for k, b := range l.batches {
		if b.acked {
			require.True(t, found[k], "acknowledged batch %+v (%d events, first id %d) is lost", k, b.size, b.res.FirstID)
		}
	}
	clear(l.batches)
	return unackedFound
}

// checkCrashed runs goethe check on the data folder a kill -9 left behind;
// the function it returns waits for it, requires it clean (exit status 0)
// and returns the report's last line. goethe check opens the engine, which
// replays its journal and cuts the torn tail the kill left, writing the
// result: run on dir itself, it would do the recovery the restarted server
// must be tested doing. So it checks an exact copy of dir, taken before
// the restart, while the test goes on (which keeps the test's time about
// what it was without the check).
func checkCrashed(t *testing.T, dir string) (wait func() string) {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "copy")
	require.NoError(t, copyDir(dir, cp))
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := checkCmd(cp).CombinedOutput()
		done <- result{out, err}
	}()
	return func() string {
		t.Helper()
		r := <-done
		require.NoError(t, r.err, "goethe check of a copy of %s taken after the kill:\n%s", dir, r.out)
		return lastLine(r.out)
	}
}

// requireCheckClean runs the goethe binary's check on dir, requires exit
// status 0, and returns the report's last line (the totals).
func requireCheckClean(t *testing.T, dir string) string {
	t.Helper()
	out, err := checkCmd(dir).CombinedOutput()
	require.NoError(t, err, "goethe check --data-dir %s:\n%s", dir, out)
	return lastLine(out)
}

func checkCmd(dir string) *exec.Cmd {
	cmd := exec.Command(goetheBin(), "check", "--data-dir", dir)
	cmd.Env = binEnv()
	return cmd
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// copyDir copies the folder src, with its files and subfolders, to dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("copy %s: not a regular file", path)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
