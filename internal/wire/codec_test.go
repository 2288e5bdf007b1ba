package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/goethe-log/goethe/internal/race"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

func TestCodecRoundTrip(t *testing.T) {
	small := &goethev1.ProduceRequest{Topic: "t", Events: []*goethev1.EventData{{Payload: []byte("x")}}}
	big := &goethev1.ProduceRequest{Topic: "t"}
	for range 2000 {
		big.Events = append(big.Events, &goethev1.EventData{Payload: make([]byte, 100), Headers: map[string]string{"a": "b"}})
	}
	for _, m := range []*goethev1.ProduceRequest{small, big, {}} {
		data, err := Codec{}.Marshal(m)
		require.NoError(t, err)
		want, err := proto.Marshal(m)
		require.NoError(t, err)
		require.Equal(t, string(want), string(data.Materialize()), "the same bytes as proto.Marshal")
		var got goethev1.ProduceRequest
		require.NoError(t, Codec{}.Unmarshal(data, &got))
		require.True(t, proto.Equal(m, &got))
		data.Free()
	}
	require.Equal(t, "proto", Codec{}.Name())
	_, err := Codec{}.Marshal("not a message")
	require.Error(t, err)
}

// Share: Marshal returns the one deterministic encoding of a shared
// message, the same bytes every time, in a buffer whose Free leaves them
// intact; after unshare it encodes the message again, to an equal message.
func TestShare(t *testing.T) {
	m := &goethev1.ConsumeResponse{Topic: "t"}
	for i := range 50 {
		m.Events = append(m.Events, &goethev1.Event{Id: uint64(i + 1), Seq: uint64(i + 1), Payload: make([]byte, 100),
			Headers: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}})
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	require.NoError(t, err)

	unshare, err := Share(m)
	require.NoError(t, err)
	enc, ok := SharedEncoding(m)
	require.True(t, ok)
	require.Equal(t, want, enc)
	for range 3 {
		data, err := Codec{}.Marshal(m)
		require.NoError(t, err)
		require.Len(t, data, 1)
		got := data[0].ReadOnlyData()
		require.Same(t, &enc[0], &got[0], "the shared bytes, not a copy")
		data.Free()
		require.Equal(t, want, enc, "Free leaves the shared bytes intact")
	}
	if !race.Enabled { // its instrumentation allocates
		allocs := testing.AllocsPerRun(100, func() { _, _ = Codec{}.Marshal(m) })
		require.Zero(t, allocs, "a Send of a shared message allocates nothing for its encoding")
	}
	other := proto.Clone(m)
	data, err := Codec{}.Marshal(other)
	require.NoError(t, err)
	got := data.Materialize()
	require.NotSame(t, &enc[0], &got[0], "an equal message that is not shared is encoded on its own")
	data.Free()

	unshare()
	unshare() // a second call does nothing
	_, ok = SharedEncoding(m)
	require.False(t, ok)
	data, err = Codec{}.Marshal(m)
	require.NoError(t, err)
	var back goethev1.ConsumeResponse
	require.NoError(t, Codec{}.Unmarshal(data, &back))
	require.True(t, proto.Equal(m, &back))
	require.Zero(t, sharedCount.Load())

	empty := &goethev1.ConsumeResponse{}
	unshare, err = Share(empty)
	require.NoError(t, err)
	data, err = Codec{}.Marshal(empty)
	require.NoError(t, err)
	require.Zero(t, data.Len())
	unshare()
}
