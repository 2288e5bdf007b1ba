package peers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/goethe-log/goethe/loadgen"
)

// Redis is a loadgen.Target of Redis Streams: one connection, one stream
// per topic (key "bench:<topic>"), each event an entry with one field "p"
// holding the payload.
//
// Produce sends one XADD per event; a batch goes out as one pipeline and
// returns when every reply is in. ProducePipelined is that pipeline, also
// for one event: Redis has no batch other than a pipeline. Redis replies after the command is in its
// append-only file, fsync'd first only with appendfsync always. A pipeline
// is not atomic: a failed batch may be partly stored.
//
// Consume follows with XREAD BLOCK (COUNT per call) after the last entry
// seen, starting from "0-0" or from the stream's last entry at the call;
// without follow it pages with XRANGE up to the last entry at the call.
type Redis struct {
	rdb *redis.Client
}

var _ loadgen.PipelineTarget = (*Redis)(nil)

// redisPage is how many entries one XRANGE or XREAD returns at most.
const redisPage = 5000

// redisBlock bounds one XREAD BLOCK, so that a cancelled context is noticed.
const redisBlock = 200 * time.Millisecond

// RedisOpener returns an Opener of Redis targets connected to addr
// (127.0.0.1:PORT).
func RedisOpener(addr string) loadgen.Opener {
	return func(ctx context.Context) (loadgen.Target, error) { return DialRedis(ctx, addr) }
}

// DialRedis connects to the Redis server at addr and checks it answers.
func DialRedis(ctx context.Context, addr string) (*Redis, error) {
	rdb := redis.NewClient(&redis.Options{
		Addr:         addr,
		PoolSize:     1, // one goroutine uses a target: one connection
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 30 * time.Second,
	})
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("peers: redis: ping %s: %w", addr, err)
	}
	return &Redis{rdb: rdb}, nil
}

func redisKey(topic string) string { return "bench:" + topic }

// Produce implements loadgen.Target.
func (r *Redis) Produce(ctx context.Context, topic string, payloads [][]byte) error {
	key := redisKey(topic)
	if len(payloads) == 1 {
		if err := r.rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"p", payloads[0]}}).Err(); err != nil {
			return fmt.Errorf("peers: redis: xadd: %w", err)
		}
		return nil
	}
	return r.ProducePipelined(ctx, topic, payloads)
}

// ProducePipelined implements loadgen.PipelineTarget: one pipeline of an
// XADD per payload, returning when every reply is in.
func (r *Redis) ProducePipelined(ctx context.Context, topic string, payloads [][]byte) error {
	key := redisKey(topic)
	pipe := r.rdb.Pipeline()
	for _, p := range payloads {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"p", p}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("peers: redis: xadd pipeline: %w", err)
	}
	return nil
}

// lastID returns the id of key's last entry, or "" if it has none.
func (r *Redis) lastID(ctx context.Context, key string) (string, error) {
	last, err := r.rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("peers: redis: xrevrange: %w", err)
	}
	if len(last) == 0 {
		return "", nil
	}
	return last[0].ID, nil
}

// Consume implements loadgen.Target.
func (r *Redis) Consume(ctx context.Context, topic string, from loadgen.Start, follow bool, fn func(payload []byte) bool) error {
	key := redisKey(topic)
	last, err := r.lastID(ctx, key)
	if err != nil {
		return err
	}
	if !follow {
		if from == loadgen.FromEnd || last == "" {
			return nil
		}
		return r.readRange(ctx, key, last, fn)
	}
	after := "0-0"
	if from == loadgen.FromEnd && last != "" {
		after = last
	}
	for {
		streams, err := r.rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{key, after},
			Count:   redisPage,
			Block:   redisBlock,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil): // the block timed out
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("peers: redis: xread: %w", err)
		}
		for _, s := range streams {
			for _, m := range s.Messages {
				if !fn(payloadOf(m)) {
					return nil
				}
				after = m.ID
			}
		}
	}
}

// readRange calls fn with every entry of key up to and including end.
func (r *Redis) readRange(ctx context.Context, key, end string, fn func([]byte) bool) error {
	start := "-"
	for {
		page, err := r.rdb.XRangeN(ctx, key, start, end, redisPage).Result()
		if err != nil {
			return fmt.Errorf("peers: redis: xrange: %w", err)
		}
		for _, m := range page {
			if !fn(payloadOf(m)) {
				return nil
			}
		}
		if len(page) < redisPage || page[len(page)-1].ID == end {
			return nil
		}
		start = "(" + page[len(page)-1].ID
	}
}

func payloadOf(m redis.XMessage) []byte {
	s, _ := m.Values["p"].(string)
	return []byte(s)
}

// Close implements loadgen.Target.
func (r *Redis) Close() error { return r.rdb.Close() }
