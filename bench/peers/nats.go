package peers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goethe-log/goethe/loadgen"
)

// NATS is a loadgen.Target of NATS JetStream: one connection, and one file
// stream per topic (named "bench_<topic>", subject "bench.<topic>", created
// on first use, one replica unless NATSReplicasOpener says otherwise, no
// limits).
//
// Produce publishes one event with a synchronous Publish (a request that
// waits for the stream's ack) and several with PublishAsync followed by a
// wait for every ack: the pipelined path the client offers for throughput.
// JetStream has no atomic batch, so a failed batch may be partly stored.
// ProducePipelined is always the PublishAsync path, also for one event.
//
// Consume reads with an ordered consumer (an ephemeral pull consumer,
// acks off, recreated by the client on a gap). Without follow, from the
// beginning, it ends after the stream's message count at the start; from
// the end it delivers only messages published after the call.
type NATS struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	streams  map[string]jetstream.Stream // topics whose stream this target has ensured
	replicas int                         // of the streams it creates
}

var _ loadgen.PipelineTarget = (*NATS)(nil)

// natsPullBatch is how many messages the ordered consumer asks for at a
// time: large enough that a read-back is not bound by round trips.
const natsPullBatch = 2000

// NATSOpener returns an Opener of NATS targets connected to url
// (nats://127.0.0.1:PORT).
func NATSOpener(url string) loadgen.Opener { return NATSReplicasOpener(url, 1) }

// NATSReplicasOpener is NATSOpener for a JetStream cluster: the streams
// the targets create have replicas replicas.
func NATSReplicasOpener(url string, replicas int) loadgen.Opener {
	return func(ctx context.Context) (loadgen.Target, error) {
		n, err := DialNATS(ctx, url)
		if err != nil {
			return nil, err
		}
		n.replicas = replicas
		return n, nil
	}
}

// DialNATS connects to the NATS server at url.
func DialNATS(ctx context.Context, url string) (*NATS, error) {
	nc, err := nats.Connect(url, nats.Name("goethe-bench"), nats.MaxReconnects(0))
	if err != nil {
		return nil, fmt.Errorf("peers: nats: connect %s: %w", url, err)
	}
	// 4096 outstanding async publishes: a batch of up to 4,096 events goes
	// out without stalling on the client's own window.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("peers: nats: jetstream: %w", err)
	}
	return &NATS{nc: nc, js: js, streams: map[string]jetstream.Stream{}, replicas: 1}, nil
}

// natsNames returns the stream name and subject of topic. Characters a
// stream name cannot hold become '_'.
func natsNames(topic string) (stream, subject string) {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, topic)
	return "bench_" + clean, "bench." + clean
}

// ensure creates topic's stream if this target has not done so yet.
func (n *NATS) ensure(ctx context.Context, topic string) (stream jetstream.Stream, subject string, err error) {
	name, subject := natsNames(topic)
	if s, ok := n.streams[topic]; ok {
		return s, subject, nil
	}
	s, err := n.js.CreateOrUpdateStream(ctx, natsStreamConfig(topic, n.replicas))
	if err != nil {
		return nil, "", fmt.Errorf("peers: nats: create stream %s: %w", name, err)
	}
	n.streams[topic] = s
	return s, subject, nil
}

// natsStreamConfig is the configuration of topic's stream.
func natsStreamConfig(topic string, replicas int) jetstream.StreamConfig {
	name, subject := natsNames(topic)
	return jetstream.StreamConfig{
		Name:      name,
		Subjects:  []string{subject},
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
		Discard:   jetstream.DiscardOld,
		Replicas:  replicas,
	}
}

// Produce implements loadgen.Target.
func (n *NATS) Produce(ctx context.Context, topic string, payloads [][]byte) error {
	_, subject, err := n.ensure(ctx, topic)
	if err != nil {
		return err
	}
	if len(payloads) == 1 {
		if _, err := n.js.Publish(ctx, subject, payloads[0]); err != nil {
			return fmt.Errorf("peers: nats: publish: %w", err)
		}
		return nil
	}
	return n.publishAsync(ctx, subject, payloads)
}

// ProducePipelined implements loadgen.PipelineTarget: every payload is its
// own PublishAsync, and it returns once each is acknowledged.
func (n *NATS) ProducePipelined(ctx context.Context, topic string, payloads [][]byte) error {
	_, subject, err := n.ensure(ctx, topic)
	if err != nil {
		return err
	}
	return n.publishAsync(ctx, subject, payloads)
}

// publishAsync publishes each payload with PublishAsync, then waits for
// every ack (or the first error).
func (n *NATS) publishAsync(ctx context.Context, subject string, payloads [][]byte) error {
	futures := make([]jetstream.PubAckFuture, 0, len(payloads))
	for _, p := range payloads {
		f, err := n.js.PublishAsync(subject, p)
		if err != nil {
			return fmt.Errorf("peers: nats: publish async: %w", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("peers: nats: publish async: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Consume implements loadgen.Target.
func (n *NATS) Consume(ctx context.Context, topic string, from loadgen.Start, follow bool, fn func(payload []byte) bool) error {
	stream, _, err := n.ensure(ctx, topic)
	if err != nil {
		return err
	}
	remaining := -1 // unbounded
	if !follow {
		if from == loadgen.FromEnd {
			return nil
		}
		info, err := stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("peers: nats: stream info: %w", err)
		}
		// The benchmark's streams never delete, so the message count is
		// the number of messages up to the last sequence.
		remaining = int(info.State.Msgs)
		if remaining == 0 {
			return nil
		}
	}
	policy := jetstream.DeliverAllPolicy
	if from == loadgen.FromEnd {
		policy = jetstream.DeliverNewPolicy
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: policy})
	if err != nil {
		return fmt.Errorf("peers: nats: ordered consumer: %w", err)
	}
	// The callback runs on the subscription's goroutine, one message at a
	// time. mu and stopped make sure fn is not called once Consume has
	// returned; done carries how the read ended.
	var (
		mu      sync.Mutex
		stopped bool
		done    = make(chan error, 1)
	)
	finish := func(err error) { // with mu held
		stopped = true
		done <- err
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if !fn(msg.Data()) {
			finish(nil)
			return
		}
		if remaining > 0 {
			remaining--
			if remaining == 0 {
				finish(nil)
			}
		}
	}, jetstream.PullMaxMessages(natsPullBatch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, nats.ErrConnectionClosed) {
			mu.Lock()
			defer mu.Unlock()
			if !stopped {
				finish(fmt.Errorf("peers: nats: consume: %w", err))
			}
		}
	}))
	if err != nil {
		return fmt.Errorf("peers: nats: consume: %w", err)
	}
	defer cc.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		mu.Lock()
		stopped = true
		mu.Unlock()
		return ctx.Err()
	}
}

// Close implements loadgen.Target.
func (n *NATS) Close() error {
	n.nc.Close()
	return nil
}
