package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

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
