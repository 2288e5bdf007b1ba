package cluster

import (
	"crypto/tls"
	"crypto/x509"

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
