package store

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzEventCodec checks the stored event value: decoding arbitrary bytes
// never panics; what appendEventValue encodes decodes to the same event;
// and any one damaged byte of an encoded value (version, checksum, seq,
// headers or payload) is refused with ErrCorrupted, never decoded as a
// changed event. Seeds run with every go test; fuzz further with
// go test -fuzz FuzzEventCodec ./store.
func FuzzEventCodec(f *testing.F) {
	f.Add(uint64(1), []byte("payload"), "type", "created", uint16(3), byte(0x01), []byte{0xE2, 0, 0})
	f.Add(uint64(1<<40), []byte{}, "", "", uint16(0), byte(0xFF), []byte{0x01, 0x05, 0x00})
	f.Add(uint64(7), bytes.Repeat([]byte{0xAB}, 300), "k", "", uint16(200), byte(0x80), []byte{})
	f.Add(uint64(9), []byte("p"), "order-17", "v", uint16(0), byte(0x9C^0xE2), []byte{0x9C, 0, 0}) // keyed, version flipped to 0xE2
	f.Fuzz(func(t *testing.T, seq uint64, payload []byte, hk, hv string, at uint16, flip byte, junk []byte) {
		key := eventKey(3, 1_000_000+seq)
		// Arbitrary bytes: an error or an event, never a panic.
		var e Event
		_ = decodeEvent(key, junk, false, &e)
		_ = decodeEvent(key, junk, true, &e)
		_ = decodeEvent(junk, junk, true, &e)

		var headers map[string]string
		if hk != "" || hv != "" {
			headers = map[string]string{hk: hv, "second": hv}
		}
		v := appendEventValue(nil, key, seq, headers, payload)
		dedupe := ""
		if hk != "" && len(hk) <= MaxDedupeKeyLen {
			// An event with a dedupe key has its own version.
			dedupe = hk
			v = appendEventValueKey(nil, key, seq, dedupe, headers, payload)
		}
		require.NoError(t, decodeEvent(key, v, false, &e))
		require.Equal(t, dedupe, e.DedupeKey)
		require.Equal(t, seq, e.Seq)
		require.Equal(t, 1_000_000+seq, e.ID)
		require.True(t, bytes.Equal(payload, e.Payload))
		if headers == nil {
			require.Empty(t, e.Headers)
		} else {
			require.Equal(t, headers, e.Headers)
		}

		if flip == 0 {
			return
		}
		damaged := bytes.Clone(v)
		damaged[int(at)%len(damaged)] ^= flip
		err := decodeEvent(key, damaged, false, &e)
		require.ErrorIs(t, err, ErrCorrupted, "byte %d ^ %#x", int(at)%len(damaged), flip)
		// The key is covered too: the same value under another id fails.
		require.ErrorIs(t, decodeEvent(eventKey(3, 999_999), v, false, &e), ErrCorrupted)
	})
}
