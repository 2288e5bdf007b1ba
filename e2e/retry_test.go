package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/client"
)

// The load of TestReliableThroughKill: one reliable Producer keeps a
// window of Sends unanswered while the server is killed (SIGKILL) and
// restarted twice on the same folder and port, at a third and two thirds
// of the events.
const (
	retryEvents = 4000
	retryWindow = 64
)

// TestReliableThroughKill: a reliable Producer and a reconnecting follower
// go on through a real goethe killed with SIGKILL and restarted under load:
// every event is stored exactly once (count, seqs and keys), in the order
// it was sent, and the follower's output is complete and in order. Then
// goethectl produce and consume --follow do the same through another kill.
func TestReliableThroughKill(t *testing.T) {
	dir := t.TempDir()
	addr := freeLoopback(t, 1)[0]
	srv := startServer(t, "leveldb", dir, "--listen", addr)
	restart := func() {
		srv.kill()
		srv = startServer(t, "leveldb", dir, "--listen", addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(addr)
	require.NoError(t, err)
	defer c.Close()
	fast := client.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	p, err := c.NewProducerWith(ctx, client.ProducerOptions{Reliable: true, Backoff: fast})
	require.NoError(t, err)
	sub, err := c.Subscribe(ctx, "kill", client.ConsumeOptions{Follow: true, Reconnect: true, Backoff: fast})
	require.NoError(t, err)
	defer sub.Close()
	followed := make(chan []client.Event, 1)
	go func() {
		var evs []client.Event
		for len(evs) < retryEvents {
			ev, err := sub.Next()
			if err != nil {
				break
			}
			evs = append(evs, ev)
		}
		followed <- evs
	}()

	futures := make([]*client.Future, retryEvents)
	var lastSeq uint64
	wait := func(i int) {
		res, err := futures[i].Wait(ctx)
		require.NoError(t, err, "event %d", i)
		_, seq := res.Position(0)
		require.Greater(t, seq, lastSeq, "event %d: stored in the order sent", i)
		lastSeq = seq
	}
	for i := range retryEvents {
		if i == retryEvents/3 || i == 2*retryEvents/3 {
			// Killed with a window of Sends in flight.
			restart()
		}
		futures[i], err = p.Send(ctx, "kill", []client.EventData{{Payload: fmt.Appendf(nil, "e%d", i)}})
		require.NoError(t, err)
		if i >= retryWindow {
			wait(i - retryWindow)
		}
	}
	for i := retryEvents - retryWindow; i < retryEvents; i++ {
		wait(i)
	}
	require.NoError(t, p.Close())
	st := p.Stats()
	t.Logf("producer: %d requests, %d reconnects, %d requests resent", st.Requests, st.Reconnects, st.Resent)
	require.GreaterOrEqual(t, st.Reconnects, uint64(2))
	require.Equal(t, uint64(retryEvents), lastSeq, "seqs are dense: no event stored twice")

	evs := <-followed
	require.Len(t, evs, retryEvents, "the follower delivered every event")
	keys := map[string]bool{}
	for i, ev := range evs {
		require.Equal(t, uint64(i+1), ev.Seq)
		require.Equal(t, fmt.Sprintf("e%d", i), string(ev.Payload))
		require.False(t, keys[ev.DedupeKey], "event %d: its key is unique", i)
		keys[ev.DedupeKey] = true
	}
	t.Logf("follower: %d reconnects", sub.Reconnects())
	info, err := c.Topic(ctx, "kill")
	require.NoError(t, err)
	require.Equal(t, uint64(retryEvents), info.Count)

	// goethectl produce retries a batch through a kill too: each line is
	// stored once, in order; and goethectl consume --follow reconnects and
	// prints each once, in order, until its --until.
	const lines = 400
	follow := exec.CommandContext(ctx, goethectlBin(), "--server", addr, "consume", "cli", "--follow", "--until", fmt.Sprintf("seq:%d", lines))
	follow.Env = binEnv()
	var followOut strings.Builder
	var followErr strings.Builder
	follow.Stdout, follow.Stderr = &followOut, &followErr
	require.NoError(t, follow.Start())
	cmd := exec.CommandContext(ctx, goethectlBin(), "--server", addr, "produce", "cli", "--batch", "20", "--linger", "0")
	cmd.Env = binEnv()
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	w := bufio.NewWriter(stdin)
	for i := range lines {
		fmt.Fprintf(w, "line %d\n", i)
		if i == lines/2 {
			require.NoError(t, w.Flush())
			restart()
		}
	}
	require.NoError(t, w.Flush())
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait(), out.String())
	sub2, err := c.Subscribe(ctx, "cli", client.ConsumeOptions{Reconnect: true, Backoff: fast})
	require.NoError(t, err)
	defer sub2.Close()
	for i := range lines {
		ev, err := sub2.Next()
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("line %d", i), string(ev.Payload))
	}
	_, err = sub2.Next()
	require.ErrorIs(t, err, io.EOF, "each line once")
	require.NoError(t, follow.Wait(), "consume --follow: %s", followErr.String())
	want := make([]string, lines)
	for i := range want {
		want[i] = fmt.Sprintf("line %d", i)
	}
	require.Equal(t, want, strings.Split(strings.TrimSuffix(followOut.String(), "\n"), "\n"),
		"the follower printed each line once, in order; its stderr: %s", followErr.String())
	require.Len(t, strings.Split(strings.TrimSpace(out.String()), "\n"), lines, "one id per line")
	srv.stop()
}
