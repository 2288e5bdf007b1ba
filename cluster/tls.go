package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/goethe-log/goethe/internal/tlsconf"
)

// MemberTLS is the TLS configuration of a member's Raft transport: it
// presents cert, both when it accepts a connection and when it dials one,
// and accepts a peer only if the peer's certificate chains to ca (mutual
// TLS, both ways). A member's certificate must therefore be valid for
// both server and client authentication and name the host of the member's
// Raft address (an IP SAN for an IP address). Without it, anyone who
// reaches the Raft port could append entries to the replicated log, around
// every check of the gRPC port.
func MemberTLS(cert tls.Certificate, ca *x509.CertPool) *tls.Config {
	c := tlsconf.Server(cert, ca)
	c.NextProtos = nil // not HTTP: raft's own framing
	c.RootCAs = ca
	return c
}

// tlsStreamLayer is raft's StreamLayer over TLS: the listener hands out
// server-side TLS connections (the handshake runs on the connection's first
// read, in raft's goroutine for that connection, so one slow peer never
// holds up the accept loop), and Dial makes client-side ones verified
// against the same configuration.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	cfg       *tls.Config
}

func newTLSStreamLayer(bind string, advertise net.Addr, cfg *tls.Config) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if a, ok := advertise.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("%s is not an address other members can dial: set Advertise", advertise)
	}
	return &tlsStreamLayer{Listener: tls.NewListener(ln, cfg), advertise: advertise, cfg: cfg}, nil
}

// Dial connects to a member and completes the handshake within timeout,
// so that a peer with a certificate the cluster does not trust fails here.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(address), l.cfg)
}

// Addr is the address other members dial.
func (l *tlsStreamLayer) Addr() net.Addr { return l.advertise }

// newTLSTransport is raft's NetworkTransport over a tlsStreamLayer, with the
// same pool and timeout as the plain TCP transport.
func newTLSTransport(bind string, advertise net.Addr, cfg *tls.Config, logger hclog.Logger) (*raft.NetworkTransport, error) {
	layer, err := newTLSStreamLayer(bind, advertise, cfg)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: transportMaxPool,
		Timeout: transportTimeout,
		Logger:  logger,
	}), nil
}
