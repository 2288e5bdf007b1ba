package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/internal/testutil"
	"github.com/goethe-log/goethe/server"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// Wire followers: BenchmarkFanoutProduceWire's followers speak gRPC's
// HTTP/2 framing themselves, one goroutine per connection for all of its
// streams, and decode only what they check (each event's seq). They cost
// the machine a fraction of what the gRPC client costs per message (a
// goroutine woken per stream and message, a full decode: about 4–5 µs, so
// 2,000 followers of one Produce per 10 ms need most of a CPU), so the
// server's processors are left to the server, as with followers on other
// machines. The server cannot tell them from gRPC clients: each stream is
// a Consume from the end of the topic, with follow, as client.Subscribe
// opens it.

// wireWindow is the flow-control window a wire connection grants, for the
// connection and for each stream: so large that the server never waits
// for it; the follower grants what it consumed again once half is used.
const wireWindow = 1 << 30

// wireConn is one HTTP/2 connection of wire followers.
type wireConn struct {
	conn    net.Conn
	w       *bufio.Writer
	fr      *http2.Framer
	streams map[uint32]*wireStream
	unacked uint32 // connection window consumed and not yet granted again
	open    int    // streams whose response headers have not come yet
	ready   func() // called once every stream's response headers came
}

// wireStream is one follower on a wireConn.
type wireStream struct {
	buf     []byte                // bytes of an incomplete gRPC message
	unacked uint32                // stream window consumed and not yet granted again
	seq     uint64                // last seq received; 0: none yet
	got     func(k int, at int64) // event k (0-based) received at Unix ns
	k       int                   // events received
	events  int                   // events it expects; then it is done
}

// dialWire connects to the Goethe server at addr and opens n Consume
// streams from the end of topic, following; got(i, k, at) is called when
// stream i (0-based, over this connection) receives its k-th event.
// ready is called, from the connection's goroutine, once the server has
// started every stream (its response headers), as Subscribe waits for
// them. run then reads until each stream has received events events.
func dialWire(addr, topic string, n, events int, got func(i, k int, at int64), ready func()) (*wireConn, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &wireConn{conn: conn, w: bufio.NewWriterSize(conn, 64<<10), streams: make(map[uint32]*wireStream, n), open: n, ready: ready}
	c.fr = http2.NewFramer(c.w, bufio.NewReaderSize(conn, 64<<10))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	req, err := proto.Marshal(&goethev1.ConsumeRequest{Topic: topic, Follow: true,
		Start: &goethev1.ConsumeRequest_Position{Position: goethev1.Position_POSITION_END}})
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	msg := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(req)))
	msg = append(msg, req...)
	var hbuf bytes.Buffer
	henc := hpack.NewEncoder(&hbuf)
	_, err = io.WriteString(c.w, http2.ClientPreface)
	if err == nil {
		err = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: wireWindow})
	}
	if err == nil {
		err = c.fr.WriteWindowUpdate(0, wireWindow-65535) // the connection's starts at 64 KiB - 1
	}
	for i := range n {
		if err != nil {
			break
		}
		id := uint32(2*i + 1)
		c.streams[id] = &wireStream{events: events, got: func(k int, at int64) { got(i, k, at) }}
		hbuf.Reset()
		for _, f := range []hpack.HeaderField{
			{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
			{Name: ":path", Value: goethev1.Goethe_Consume_FullMethodName}, {Name: ":authority", Value: addr},
			{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
		} {
			if err = henc.WriteField(f); err != nil {
				break
			}
		}
		if err == nil {
			err = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true})
		}
		if err == nil {
			err = c.fr.WriteData(id, true, msg)
		}
	}
	if err == nil {
		err = c.w.Flush()
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("wire follower: %w", err), conn.Close())
	}
	return c, nil
}

// run reads the connection until every stream has received its events,
// answering the server's SETTINGS and PINGs and granting window as it
// goes; it fails on anything a following stream must not meet (its end,
// a reset, GOAWAY, a seq out of order). It closes the connection.
func (c *wireConn) run() error {
	defer c.conn.Close()
	left := len(c.streams)
	for left > 0 {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("wire follower: %w", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				err = c.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				err = c.fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			err = c.headers(f)
		case *http2.DataFrame:
			var done bool
			done, err = c.data(f)
			if done {
				left--
			}
		case *http2.RSTStreamFrame:
			err = fmt.Errorf("wire follower: stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			err = fmt.Errorf("wire follower: GOAWAY %v: %s", f.ErrCode, f.DebugData())
		}
		if err == nil && c.w.Buffered() > 0 {
			err = c.w.Flush() // answers and grants are rare: out at once
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// headers handles a stream's response headers (the stream started) or
// trailers (it ended: a following stream must not).
func (c *wireConn) headers(f *http2.MetaHeadersFrame) error {
	if f.StreamEnded() {
		return fmt.Errorf("wire follower: stream %d ended: grpc-status %s", f.StreamID, grpcMessage(f))
	}
	if _, ok := c.streams[f.StreamID]; ok {
		if c.open--; c.open == 0 && c.ready != nil {
			c.ready()
		}
	}
	return nil
}

// grpcMessage is a trailer's grpc-status and grpc-message.
func grpcMessage(f *http2.MetaHeadersFrame) string {
	var code, msg string
	for _, hf := range f.Fields {
		switch hf.Name {
		case "grpc-status":
			code = hf.Value
		case "grpc-message":
			msg = hf.Value
		}
	}
	return code + " " + msg
}

// data handles a DATA frame: the gRPC messages it completes are decoded,
// and window consumed is granted again once half is used. done says the
// stream has received every event it expects.
func (c *wireConn) data(f *http2.DataFrame) (done bool, err error) {
	s := c.streams[f.StreamID]
	if s == nil {
		return false, fmt.Errorf("wire follower: DATA on unknown stream %d", f.StreamID)
	}
	n := uint32(f.Length)
	c.unacked += n
	s.unacked += n
	if c.unacked >= wireWindow/2 {
		err = c.fr.WriteWindowUpdate(0, c.unacked)
		c.unacked = 0
	}
	if err == nil && s.unacked >= wireWindow/2 {
		err = c.fr.WriteWindowUpdate(f.StreamID, s.unacked)
		s.unacked = 0
	}
	if err != nil {
		return false, fmt.Errorf("wire follower: %w", err)
	}
	before := s.k
	at := time.Now().UnixNano()
	s.buf = append(s.buf, f.Data()...)
	for len(s.buf) >= 5 {
		size := int(binary.BigEndian.Uint32(s.buf[1:5]))
		if len(s.buf) < 5+size {
			break
		}
		if err := s.message(s.buf[5:5+size], at); err != nil {
			return false, fmt.Errorf("wire follower: stream %d: %w", f.StreamID, err)
		}
		s.buf = s.buf[5+size:]
	}
	if len(s.buf) == 0 {
		s.buf = s.buf[:0:0] // drop the array: most messages come whole
	}
	return before < s.events && s.k >= s.events, nil
}

// message decodes one ConsumeResponse, checking that its events' seqs
// follow the stream's last.
func (s *wireStream) message(b []byte, at int64) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num == 2 && typ == protowire.BytesType { // events
			ev, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			seq, err := eventSeq(ev)
			if err != nil {
				return err
			}
			if s.seq != 0 && seq != s.seq+1 {
				return fmt.Errorf("follower got seq %d after %d", seq, s.seq)
			}
			s.seq = seq
			if s.k < s.events {
				s.got(s.k, at)
			}
			s.k++
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil
}

// eventSeq is the seq (field 2) of an encoded Event.
func eventSeq(b []byte) (uint64, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		b = b[n:]
		if num == 2 && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, protowire.ParseError(m)
			}
			return v, nil
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return 0, errors.New("event without a seq")
}

// TestWireFollowers: wire followers receive, in order, every event
// produced after their streams started, on every engine, and a stream the
// server ends is an error, not a hang.
func TestWireFollowers(t *testing.T) {
	for _, eng := range engines.Names {
		t.Run(eng, func(t *testing.T) {
			addr, _ := testutil.StartServer(t, eng, t.TempDir(), store.DefaultOptions(), server.DefaultOptions())
			c, err := client.Dial(addr)
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			ctx := t.Context()
			_, err = c.Produce(ctx, "fan", []client.EventData{{Payload: []byte("before")}})
			require.NoError(t, err)

			const streams, events = 3, 5
			recv := make([][]int64, streams)
			started := make(chan struct{})
			w, err := dialWire(addr, "fan", streams, events, func(i, k int, at int64) {
				recv[i] = append(recv[i], at) // on run's goroutine, read once run has returned
			}, func() { close(started) })
			require.NoError(t, err)
			t.Cleanup(func() { w.conn.Close() }) // ends run if the test fails first
			done := make(chan error, 1)
			go func() { done <- w.run() }()
			select {
			case <-started:
			case err := <-done:
				t.Fatalf("wire followers ended before they started: %v", err)
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
			for k := range events {
				_, err := c.Produce(ctx, "fan", []client.EventData{{Payload: []byte{byte(k)}}})
				require.NoError(t, err)
			}
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
			for i := range streams {
				require.Len(t, recv[i], events, "stream %d", i)
			}

			// A request the server refuses ends the stream at once.
			bad, err := dialWire(addr, "", 1, 1, func(int, int, int64) {}, nil)
			require.NoError(t, err)
			t.Cleanup(func() { bad.conn.Close() })
			require.ErrorContains(t, bad.run(), "grpc-status 3") // INVALID_ARGUMENT: no topic
		})
	}
}
