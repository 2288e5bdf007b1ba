package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"time"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// startServer runs a real Goethe server on a loopback port over goleveldb
// in a temporary folder, as `goethe --listen 127.0.0.1:0` would, and
// returns its address and a function that stops it and removes the folder.
func startServer() (addr string, stop func()) {
	dir, err := os.MkdirTemp("", "goethe-example-")
	if err != nil {
		log.Fatal(err)
	}
	eng, err := engines.Open(engines.Default, dir)
	if err != nil {
		log.Fatal(err)
	}
	st, err := store.Open(eng, store.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(st, server.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	return lis.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			log.Fatal(err)
		}
		_ = st.Close() // the server does not close the store it serves
		os.RemoveAll(dir)
	}
}

func Example() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()

	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// One atomic batch of two events.
	res, err := c.Produce(ctx, "orders", []client.EventData{
		{Payload: []byte("created"), Headers: map[string]string{"order": "42"}},
		{Payload: []byte("paid"), Headers: map[string]string{"order": "42"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored seqs", res.Seq(0), "to", res.LastSeq(), "with consecutive ids:", res.ID(1) == res.ID(0)+1)

	// Read the topic from the beginning; without Follow the loop ends at
	// the end of the topic.
	for ev, err := range c.Consume(ctx, "orders", client.ConsumeOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Topic, ev.Seq, string(ev.Payload), ev.Headers["order"], ev.Time.Equal(time.Unix(0, int64(ev.ID))))
	}
	// Output:
	// stored seqs 1 to 2 with consecutive ids: true
	// orders 1 created 42 true
	// orders 2 paid 42 true
}

// A conditional Produce stores its batch only if the topic has not moved
// since the writer last saw it.
func ExampleExpectLastSeq() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	one := func(s string) []client.EventData { return []client.EventData{{Payload: []byte(s)}} }
	res, err := c.Produce(ctx, "account-7", one("opened"), client.ExpectLastSeq(0))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Produce(ctx, "account-7", one("deposited"), client.ExpectLastSeq(res.LastSeq()))
	fmt.Println("expecting seq 1:", err)

	_, err = c.Produce(ctx, "account-7", one("deposited again"), client.ExpectLastSeq(res.LastSeq()))
	var conflict *client.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("expecting seq 1 again: conflict, the topic is at seq", conflict.ActualLastSeq)
	}
	// Output:
	// expecting seq 1: <nil>
	// expecting seq 1 again: conflict, the topic is at seq 2
}

// Following a topic from its end delivers the events committed after
// Subscribe returns.
func ExampleClient_Subscribe() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Produce(ctx, "ticks", []client.EventData{{Payload: []byte("old")}}); err != nil {
		log.Fatal(err)
	}

	sub, err := c.Subscribe(ctx, "ticks", client.ConsumeOptions{From: client.End(), Follow: true, Limit: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	produced := make(chan error, 1)
	go func() {
		for _, p := range []string{"tick 1", "tick 2"} {
			if _, err := c.Produce(ctx, "ticks", []client.EventData{{Payload: []byte(p)}}); err != nil {
				produced <- err
				return
			}
		}
		produced <- nil
	}()
	for ev, err := range sub.Events() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Seq, string(ev.Payload))
	}
	if err := <-produced; err != nil {
		log.Fatal(err)
	}
	// Output:
	// 2 tick 1
	// 3 tick 2
}

// A consumer commits its cursor as it goes and resumes after it later,
// even after a server restart.
func ExampleClient_CommitCursor() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, p := range []string{"a", "b", "c"} {
		if _, err := c.Produce(ctx, "jobs", []client.EventData{{Payload: []byte(p)}}); err != nil {
			log.Fatal(err)
		}
	}

	resume := client.ConsumeOptions{From: client.FromCursor("worker", client.FallbackBeginning), Limit: 2}
	for ev, err := range c.Consume(ctx, "jobs", resume) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("processed", string(ev.Payload))
		if err := c.CommitCursor(ctx, "jobs", "worker", ev.ID); err != nil {
			log.Fatal(err)
		}
	}
	cur, err := c.GetCursor(ctx, "jobs", "worker")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("lag", cur.Lag)

	resume.Limit = 0
	for ev, err := range c.Consume(ctx, "jobs", resume) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("resumed at", string(ev.Payload))
	}
	// Output:
	// processed a
	// processed b
	// lag 1
	// resumed at c
}

// A start at a time lands on the first event committed at or after it.
func ExampleAtTime() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Produce(ctx, "audit", []client.EventData{{Payload: []byte("before")}}); err != nil {
		log.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	since := time.Now()
	if _, err := c.Produce(ctx, "audit", []client.EventData{{Payload: []byte("after")}}); err != nil {
		log.Fatal(err)
	}
	for ev, err := range c.Consume(ctx, "audit", client.ConsumeOptions{From: client.AtTime(since)}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(ev.Payload), !ev.Time.Before(since))
	}
	// Output:
	// after true
}

func ExampleClient_Topics() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, topic := range []string{"payments", "orders", "orders"} {
		if _, err := c.Produce(ctx, topic, []client.EventData{{Payload: []byte("x")}}); err != nil {
			log.Fatal(err)
		}
	}
	for ti, err := range c.Topics(ctx, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ti.Name, ti.Count, ti.LastSeq)
	}
	_, err = c.Topic(ctx, "shipments")
	fmt.Println(errors.Is(err, client.ErrNotFound), client.IsReason(err, goethev1.ReasonTopicNotFound))
	// Output:
	// orders 2 2
	// payments 1 1
	// true true
}

// Many goroutines share one Producer, each waiting for its own event's
// answer, as an application's request handlers would: while a request is
// in flight, the events sent meanwhile wait and go out together in the
// next one, so the server commits them together. This is the way for
// concurrent callers of one process to produce.
func ExampleClient_NewProducer() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	p, err := c.NewProducer(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				payload := fmt.Appendf(nil, "reading %d of sensor %d", i, g)
				if _, err := p.Produce(ctx, "sensors", []client.EventData{{Payload: payload}}); err != nil {
					log.Fatal(err)
				}
			}
		})
	}
	wg.Wait()
	st := p.Stats()
	fmt.Println("sends:", st.Sends, "requests <= sends:", st.Requests <= st.Sends)

	// A failed Send fails alone; the stream goes on.
	_, err = p.Produce(ctx, "sensors", []client.EventData{{Payload: []byte("late")}}, client.ExpectLastSeq(1))
	fmt.Println("conflict:", errors.Is(err, client.ErrConflict), client.IsReason(err, goethev1.ReasonExpectedLastSeqMismatch))
	res, err := p.Produce(ctx, "sensors", []client.EventData{{Payload: []byte("last")}})
	fmt.Println("then stored at seq", res.FirstSeq, err)
	if err := p.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// sends: 1600 requests <= sends: true
	// conflict: true true
	// then stored at seq 1601 <nil>
}

// One goroutine pipelines single events: Send returns at once with a
// Future, and the events go out in as few requests as the answers in
// flight allow, stored in the order they were sent. The Futures are
// waited for afterwards (or Flush waits for them all).
func ExampleProducer_Send() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	p, err := c.NewProducer(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	futures := make([]*client.Future, 1000)
	for i := range futures {
		// The event is encoded when Send returns: its buffer may be reused.
		payload := fmt.Appendf(nil, "click %d", i)
		if futures[i], err = p.Send(ctx, "clicks", []client.EventData{{Payload: payload}}); err != nil {
			log.Fatal(err)
		}
	}
	var last uint64
	for _, f := range futures {
		res, err := f.Wait(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if res.Seq(0) != last+1 {
			log.Fatalf("seq %d after %d", res.Seq(0), last)
		}
		last = res.Seq(0)
	}
	fmt.Println("stored in order up to seq", last)
	// Output:
	// stored in order up to seq 1000
}
