package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goethe-log/goethe/client"
)

// FailoverTopic is the topic (NATS: the stream of it) the failover
// measurement writes.
const FailoverTopic = "failover"

// Failover is the failover measurement of one cluster system, as written
// to failover.<system>.json.
type Failover struct {
	System System `json:"system"`
	// Server is member n1's command line.
	Server []string `json:"server"`
	// Millis holds, per kill, the time from the leader's SIGKILL to the
	// first acknowledged write on a survivor, in milliseconds, in kill
	// order.
	Millis []float64 `json:"ms"`
	// P50 … Max summarise Millis (nearest rank).
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	// Error is set if the measurement stopped early.
	Error string `json:"error,omitempty"`
}

// FileName is the measurement's file name in the output folder.
func (f Failover) FileName() string { return "failover." + f.System.Key() + ".json" }

// summarise fills the percentiles from Millis.
func (f *Failover) summarise() {
	s := slices.Clone(f.Millis)
	slices.Sort(s)
	rank := func(q float64) float64 {
		if len(s) == 0 {
			return 0
		}
		return s[max(int(math.Ceil(q*float64(len(s))))-1, 0)]
	}
	f.P50, f.P90, f.P99, f.Max = rank(0.50), rank(0.90), rank(0.99), rank(1)
}

// MeasureFailover kills the leader of c's writes (SIGKILL) kills times.
// Each round: wait until the cluster is healthy, connect a writer to each
// member that will survive and write once through each, kill the leader,
// and let every survivor's writer try to write (each attempt bounded by
// 300 ms, 5 ms apart after a failure) until one write is acknowledged; the
// time from the kill to that ack is the round's figure. Then the killed
// member is restarted on its data folder. progress, if not nil, gets a
// line per round.
func MeasureFailover(ctx context.Context, c *Cluster3, kills int, progress io.Writer) (Failover, error) {
	f := Failover{Server: c.Args()}
	err := func() error {
		if err := c.EnsureTopic(ctx, FailoverTopic); err != nil {
			return err
		}
		for k := range kills {
			if err := c.WaitHealthy(ctx, 60*time.Second); err != nil {
				return fmt.Errorf("round %d: %w", k+1, err)
			}
			var leader int
			if err := poll(ctx, 30*time.Second, func() (err error) {
				leader, err = c.Leader(ctx, FailoverTopic)
				return err
			}); err != nil {
				return fmt.Errorf("round %d: %w", k+1, err)
			}
			d, err := failoverRound(ctx, c, leader)
			if err != nil {
				return fmt.Errorf("round %d: %w", k+1, err)
			}
			f.Millis = append(f.Millis, float64(d.Microseconds())/1000)
			if progress != nil {
				fmt.Fprintf(progress, "  kill %2d of %s: %s -> first ack after %v\n", k+1, c.System, c.Names[leader], d.Round(time.Millisecond))
			}
			if err := c.Restart(ctx, leader); err != nil {
				return fmt.Errorf("round %d: %w", k+1, err)
			}
		}
		return nil
	}()
	f.summarise()
	if err != nil {
		f.Error = err.Error()
	}
	return f, err
}

// failoverWriter writes one event to the failover topic through one
// member.
type failoverWriter interface {
	write(ctx context.Context) error
	close()
}

type goetheWriter struct{ cl *client.Client }

func (w goetheWriter) write(ctx context.Context) error {
	_, err := w.cl.Produce(ctx, FailoverTopic, []client.EventData{{Payload: []byte("failover")}})
	return err
}

func (w goetheWriter) close() { _ = w.cl.Close() }

type natsWriter struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
}

func (w natsWriter) write(ctx context.Context) error {
	_, err := w.js.Publish(ctx, w.subject, []byte("failover"))
	return err
}

func (w natsWriter) close() { w.nc.Close() }

func (c *Cluster3) writer(i int) (failoverWriter, error) {
	if c.System == ClusterGoethe {
		cl, err := client.Dial(c.Addrs[i])
		if err != nil {
			return nil, err
		}
		return goetheWriter{cl}, nil
	}
	nc, err := nats.Connect("nats://"+c.Addrs[i], nats.Name("goethe-bench-failover"), nats.MaxReconnects(0))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_, subject := natsNames(FailoverTopic)
	return natsWriter{nc: nc, js: js, subject: subject}, nil
}

// failoverRound kills member leader and returns the time to the first
// write acknowledged by a survivor.
func failoverRound(ctx context.Context, c *Cluster3, leader int) (time.Duration, error) {
	var writers []failoverWriter
	defer func() {
		for _, w := range writers {
			w.close()
		}
	}()
	for i := range Cluster3Size {
		if i == leader {
			continue
		}
		w, err := c.writer(i)
		if err != nil {
			return 0, fmt.Errorf("connect to %s: %w", c.Names[i], err)
		}
		writers = append(writers, w)
		// A member may still be reconnecting to a leader restarted in the
		// round before.
		if err := poll(ctx, 30*time.Second, func() error {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return w.write(wctx)
		}); err != nil {
			return 0, fmt.Errorf("write through %s before the kill: %w", c.Names[i], err)
		}
	}
	start := time.Now()
	c.Kill(leader)
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	acked := make(chan time.Duration, len(writers))
	var wg sync.WaitGroup
	var lastErr error
	var mu sync.Mutex
	for _, w := range writers {
		wg.Go(func() {
			for rctx.Err() == nil {
				actx, acancel := context.WithTimeout(rctx, 300*time.Millisecond)
				err := w.write(actx)
				acancel()
				if err == nil {
					acked <- time.Since(start)
					cancel()
					return
				}
				mu.Lock()
				lastErr = err
				mu.Unlock()
				select {
				case <-rctx.Done():
				case <-time.After(5 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	select {
	case d := <-acked:
		return d, nil
	default:
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("no write acknowledged within 60 s of the kill: %w", errors.Join(lastErr))
	}
}

// WriteFailover writes f as indented JSON into dir under f.FileName().
func WriteFailover(dir string, f Failover) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, f.FileName()), append(b, '\n'), 0o644)
}
