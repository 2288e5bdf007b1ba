// Package wire holds the protobuf codec that Goethe's server and Go client
// use for gRPC messages in place of grpc-go's default one.
package wire

import (
	"fmt"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Codec encodes messages exactly like grpc-go's proto codec, and is named
// "proto" like it, so it is wire-compatible with every gRPC peer. It differs
// in the buffers it uses: a pool with a tier for every power of two from
// 1 KiB to 64 MiB. grpc-go's default pool jumps from 32 KiB to 1 MiB and
// zeroes a whole buffer on every use, so each Consume batch of ~100 KiB
// cost a 1 MiB memclr on both sides.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// Name is "proto": the codec replaces the default one where it is used.
func (Codec) Name() string { return "proto" }

// Pool is the codec's buffer pool; a message of n bytes takes a buffer of
// less than 2n.
var Pool = func() mem.BufferPool {
	exps := make([]uint8, 0, 17)
	for e := uint8(10); e <= 26; e++ {
		exps = append(exps, e)
	}
	p, err := mem.NewBinaryTieredBufferPool(exps...)
	if err != nil {
		panic(err)
	}
	return p
}()

// Marshal encodes v into a pooled buffer that gRPC frees once sent. A
// message registered with Share is not encoded again: Marshal returns its
// shared encoding, in a buffer whose Free does nothing (see Share).
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("wire: cannot marshal %T: not a proto.Message", v)
	}
	if sharedCount.Load() > 0 {
		if b, ok := shared.Load(m); ok {
			return b.(mem.BufferSlice), nil // no allocation per Send
		}
	}
	size := proto.Size(m)
	opts := proto.MarshalOptions{UseCachedSize: true} // the Size call above set the cache
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := Pool.Get(size)
	if _, err := opts.MarshalAppend((*buf)[:0], m); err != nil {
		Pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, Pool)}, nil
}

// Unmarshal decodes data into v, which must be a proto.Message.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("wire: cannot unmarshal into %T: not a proto.Message", v)
	}
	buf := data.MaterializeToBuffer(Pool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// Shared encodings: messages sent on many streams, encoded once (Share).
var (
	shared      sync.Map     // proto.Message (by pointer) -> mem.BufferSlice of one mem.SliceBuffer, never written after it is stored
	sharedCount atomic.Int64 // entries in shared; Marshal skips the lookup at 0
)

// Share encodes m once, deterministically (map entries sorted by key), and
// makes Marshal return that encoding for m, by pointer, until unshare is
// called: N streams that send m cost one encoding instead of N.
//
// The encoding is an ordinary slice, in a mem.SliceBuffer, in a
// mem.BufferSlice made once and returned to every Send (so that a Send
// allocates nothing for it: at 2,000 followers a round's allocations set
// how often the collector runs, and its mark phase takes both CPUs of a
// small machine): gRPC's Free and Ref of it do nothing and gRPC only reads
// it and the BufferSlice (it copies the bytes into HTTP/2 frames; its
// Reader reslices its own copy of the slice), so neither is recycled or
// written while another stream sends it; the garbage collector frees it once no stream and no registration
// holds it. m must not be changed from the call on, for as long as any
// stream may send it (also after unshare: a Send in progress then encodes
// m itself, which gives the same message). unshare may be called more than
// once. Share fails only if m cannot be encoded.
func Share(m proto.Message) (unshare func(), err error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("wire: encoding a shared %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	if b == nil {
		b = []byte{} // an empty message: still a hit
	}
	if _, loaded := shared.Swap(m, mem.BufferSlice{mem.SliceBuffer(b)}); !loaded {
		sharedCount.Add(1)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if _, loaded := shared.LoadAndDelete(m); loaded {
				sharedCount.Add(-1)
			}
		})
	}, nil
}

// SharedEncoding returns the encoding that Marshal returns for m, and
// whether m is shared. The bytes must not be changed.
func SharedEncoding(m proto.Message) ([]byte, bool) {
	b, ok := shared.Load(m)
	if !ok {
		return nil, false
	}
	return b.(mem.BufferSlice)[0].ReadOnlyData(), true
}
