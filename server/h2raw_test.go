package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client is a raw HTTP/2 client over one TCP connection: it does exactly
// what a test tells it, frame by frame, which a gRPC client cannot be made
// to (ping as often as it likes, never answer pings, send half a message).
type h2Client struct {
	t    *testing.T
	conn net.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	henc *hpack.Encoder
}

// h2Timeout bounds every read of an h2Client: the server under test acts
// well within it, or the test fails.
const h2Timeout = 20 * time.Second

// dialH2 connects to addr and completes the HTTP/2 handshake: the client
// preface and SETTINGS, the server's SETTINGS acknowledged.
func dialH2(t *testing.T, addr string) *h2Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	h := &h2Client{t: t, conn: conn, fr: http2.NewFramer(conn, conn)}
	h.henc = hpack.NewEncoder(&h.hbuf)
	_, err = io.WriteString(conn, http2.ClientPreface)
	require.NoError(t, err)
	require.NoError(t, h.fr.WriteSettings())
	for {
		f := h.next()
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			require.NoError(t, h.fr.WriteSettingsAck())
			return h
		}
	}
}

// read returns the next frame from the server, or the error that ended
// the connection (io.EOF, a reset, or a timeout after h2Timeout).
func (h *h2Client) read() (http2.Frame, error) {
	require.NoError(h.t, h.conn.SetReadDeadline(time.Now().Add(h2Timeout)))
	return h.fr.ReadFrame()
}

// next is read, failing the test on an error.
func (h *h2Client) next() http2.Frame {
	h.t.Helper()
	f, err := h.read()
	require.NoError(h.t, err)
	return f
}

// requireClosed reads until the server closes the connection, and fails
// if it is still open after h2Timeout. onFrame sees each frame before.
func (h *h2Client) requireClosed(onFrame func(http2.Frame)) {
	h.t.Helper()
	for {
		f, err := h.read()
		if err != nil {
			require.False(h.t, errors.Is(err, os.ErrDeadlineExceeded), "the server kept the connection open: %v", err)
			return
		}
		onFrame(f)
	}
}

// goAway is the GOAWAY a server sent: its code and debug data.
type goAway struct {
	code  http2.ErrCode
	debug string
}

// headers opens stream id with a gRPC request of method, with extra
// header fields, not ending it.
func (h *h2Client) headers(id uint32, method string, extra ...hpack.HeaderField) {
	h.t.Helper()
	h.hbuf.Reset()
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: method}, {Name: ":authority", Value: "goethe"},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
	}, extra...) {
		require.NoError(h.t, h.henc.WriteField(f))
	}
	require.NoError(h.t, h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.hbuf.Bytes(), EndHeaders: true}))
}

// messagePrefix is gRPC's length prefix of an uncompressed message of n
// bytes.
func messagePrefix(n uint32) []byte {
	p := make([]byte, 5)
	binary.BigEndian.PutUint32(p[1:], n)
	return p
}

// decodeHeaders returns the fields of a HEADERS frame's block.
func decodeHeaders(t *testing.T, f *http2.HeadersFrame) map[string]string {
	t.Helper()
	out := map[string]string{}
	_, err := hpack.NewDecoder(4096, func(hf hpack.HeaderField) { out[hf.Name] = hf.Value }).Write(f.HeaderBlockFragment())
	require.NoError(t, err)
	return out
}
