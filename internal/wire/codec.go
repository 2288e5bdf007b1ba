// Package wire holds the protobuf codec that Goethe's server and Go client
// use for gRPC messages in place of grpc-go's default one.
package wire

import (
	"fmt"

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

// Marshal encodes v into a pooled buffer that gRPC frees once sent.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("wire: cannot marshal %T: not a proto.Message", v)
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
