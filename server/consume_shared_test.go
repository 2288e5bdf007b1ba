package server_test

import (
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
)

// encodeEvents encodes each event deterministically: the bytes to compare.
func encodeEvents(t *testing.T, evs []*goethev1.Event) [][]byte {
	out := make([][]byte, len(evs))
	for i, e := range evs {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
		require.NoError(t, err)
		out[i] = b
	}
	return out
}

// Followers at the end of a topic, served the pages that their commits
// put in the store's ring (one encoding shared by all of them), receive
// exactly the events a reader with a stream of its own receives, byte for
// byte, on every engine; with -race, many followers reading the shared
// encodings at once show that no stream writes them.
func TestSharedPagesFollowers(t *testing.T) {
	const followers = 40
	const commits = 30
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, server.Options{})
		ctx := ctxT(t)
		first := ts.produce("fan", "first")[0]

		var wg sync.WaitGroup
		got := make([][]*goethev1.Event, followers)
		errs := make(chan error, followers)
		ready := make(chan struct{}, followers)
		for f := range followers {
			wg.Go(func() {
				stream, err := ts.raw.Consume(ctx, &goethev1.ConsumeRequest{Topic: "fan",
					Start: &goethev1.ConsumeRequest_AfterSeq{AfterSeq: first.FirstSeq}, Follow: true})
				if err == nil {
					_, err = stream.Header() // the handler runs
				}
				ready <- struct{}{}
				if err != nil {
					errs <- err
					return
				}
				for len(got[f]) < commits+2 {
					resp, err := stream.Recv()
					if err != nil {
						errs <- fmt.Errorf("follower %d after %d events: %w", f, len(got[f]), err)
						return
					}
					got[f] = append(got[f], resp.Events...)
				}
			})
		}
		for range followers {
			<-ready
		}
		// One event per commit, with headers (map order is what a shared
		// encoding fixes), then one commit of three events.
		for i := range commits {
			_, err := ts.c.Produce(ctx, "fan", []client.EventData{{Payload: fmt.Appendf(nil, "event %d", i),
				Headers: map[string]string{"a": "1", "b": fmt.Sprint(i), "c": "3", "d": "4", "e": "5"}}})
			require.NoError(t, err)
		}
		_, err := ts.c.Produce(ctx, "fan", []client.EventData{{Payload: []byte("x")}, {Payload: []byte("y"), Headers: map[string]string{"h": "v"}}})
		require.NoError(t, err)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}

		// The reference: the same events, read by a stream of its own
		// without follow, in one page as long as its limit: a full page,
		// which Consume builds and encodes for the stream itself.
		stream, err := ts.raw.Consume(ctx, &goethev1.ConsumeRequest{Topic: "fan",
			Start: &goethev1.ConsumeRequest_AfterSeq{AfterSeq: first.FirstSeq}, Limit: commits + 2})
		require.NoError(t, err)
		var want []*goethev1.Event
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			want = append(want, resp.Events...)
		}
		require.Len(t, want, commits+2)
		wantBytes := encodeEvents(t, want)
		for f := range followers {
			require.Equal(t, wantBytes, encodeEvents(t, got[f][:commits+2]), "follower %d", f)
		}
	})
}
