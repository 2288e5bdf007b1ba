package loadgen

import (
	"encoding/binary"
	"math/rand/v2"
)

// Timestamp returns the send time a payload made by Run carries: Unix
// nanoseconds from its first 8 bytes, little-endian. ok is false for a
// payload shorter than 8 bytes. Run's probe events carry 0.
func Timestamp(payload []byte) (unixNano int64, ok bool) {
	if len(payload) < 8 {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(payload)), true
}

// PutTimestamp writes unixNano into payload's first 8 bytes, little-endian,
// as Timestamp reads it. payload must hold at least 8 bytes.
func PutTimestamp(payload []byte, unixNano int64) {
	binary.LittleEndian.PutUint64(payload, uint64(unixNano))
}

// noiseSeed fixes the pseudo-random bytes of payloads, so that runs of one
// Config send the same bytes.
var noiseSeed = [32]byte{'g', 'o', 'e', 't', 'h', 'e', '-', 'l', 'o', 'a', 'd', 'g', 'e', 'n'}

// minNoise is the least size of a run's noise pool: far beyond the window
// of the block compressors engines use (snappy, zstd at low levels), so that
// neighbouring events do not share compressible runs.
const minNoise = 4 << 20

// newNoise returns a run's read-only pool of pseudo-random bytes, from
// which every payload takes its tail at a pseudo-random offset.
func newNoise(size int) []byte {
	b := make([]byte, max(minNoise, 2*size))
	rand.NewChaCha8(noiseSeed).Read(b)
	return b
}

// payloads builds the payloads of one producer slot's Produce calls. It
// reuses one buffer: the payloads of a call are valid until the next fill.
type payloads struct {
	noise []byte
	rng   *rand.PCG
	all   [][]byte // batch payloads of size bytes, backed by one buffer
}

// newPayloads returns a builder of up to batch payloads of size bytes whose
// tails are determined by (seed1, seed2).
func newPayloads(noise []byte, batch, size int, seed1, seed2 uint64) *payloads {
	buf := make([]byte, batch*size)
	all := make([][]byte, batch)
	for i := range all {
		all[i] = buf[i*size : (i+1)*size : (i+1)*size]
	}
	return &payloads{noise: noise, rng: rand.NewPCG(seed1, seed2), all: all}
}

// fill returns n payloads stamped with unixNano and fresh tails.
func (p *payloads) fill(n int, unixNano int64) [][]byte {
	out := p.all[:n]
	for _, b := range out {
		PutTimestamp(b, unixNano)
		tail := b[8:]
		off := p.rng.Uint64() % uint64(len(p.noise)-len(tail)+1)
		copy(tail, p.noise[off:])
	}
	return out
}
