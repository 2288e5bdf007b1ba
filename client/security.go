package client

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/internal/tlsconf"
)

// WithTLS makes the client speak TLS with cfg: cfg.RootCAs verifies the
// server (nil: the system's roots), cfg.Certificates is the client's own
// certificate for a server that asks for one (mutual TLS). A nil cfg
// verifies against the system's roots, with no client certificate. The
// client never speaks a TLS version older than 1.2, whatever cfg says.
func WithTLS(cfg *tls.Config) Option {
	return func(c *dialConfig) {
		if cfg == nil {
			cfg = tlsconf.Client(nil, nil)
		} else {
			cfg = cfg.Clone()
			cfg.MinVersion = max(cfg.MinVersion, tlsconf.MinVersion)
		}
		c.tls = cfg
	}
}

// WithTLSFiles is WithTLS of PEM files: caFile verifies the server (""
// for the system's roots); certFile and keyFile, both or neither, are the
// client's certificate for mutual TLS. The files are read by Dial, whose
// error names the one at fault.
func WithTLSFiles(caFile, certFile, keyFile string) Option {
	return func(c *dialConfig) {
		cfg, err := tlsconf.ClientFiles(caFile, certFile, keyFile)
		if err != nil {
			c.err = err
			return
		}
		c.tls = cfg
	}
}

// WithToken sends token as a bearer token ("authorization: Bearer
// <token>") with every call, for a server started with --auth-file.
//
// The token is sent only over TLS (WithTLS, or TLS credentials of one's
// own through WithDialOptions), or in plaintext to a loopback address
// (127.0.0.0/8, ::1, localhost), where nothing but the local machine can
// read it. To any other address over plaintext every call fails with
// ErrUnauthenticated, and the token is not sent. An empty token sends
// nothing.
func WithToken(token string) Option {
	return func(c *dialConfig) { c.token = token }
}

// bearerToken is the per-call credentials of WithToken.
type bearerToken struct {
	md       map[string]string
	loopback bool // the target is a loopback address: plaintext is allowed
}

// GetRequestMetadata returns the authorization header, unless the
// connection is plaintext to an address that is not loopback.
func (b *bearerToken) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if !b.loopback {
		ri, _ := credentials.RequestInfoFromContext(ctx)
		if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
			return nil, status.Error(codes.Unauthenticated,
				"goethe: the token is not sent in plaintext to an address that is not loopback: connect with TLS (client.WithTLS, goethectl --tls-ca)")
		}
	}
	return b.md, nil
}

// RequireTransportSecurity is false: GetRequestMetadata itself allows
// plaintext to loopback addresses only, which gRPC's own check cannot say.
func (*bearerToken) RequireTransportSecurity() bool { return false }

// tokenOption is the gRPC dial option that sends token to the server at
// addr.
func tokenOption(addr, token string) grpc.DialOption {
	return grpc.WithPerRPCCredentials(&bearerToken{
		md:       map[string]string{"authorization": "Bearer " + token},
		loopback: isLoopback(addr),
	})
}

// isLoopback reports whether addr, a gRPC target (host:port, possibly
// after a scheme such as "dns:///" or "passthrough:///"), names a loopback
// address: 127.0.0.0/8, ::1 or localhost. A name that merely resolves to
// one does not count.
func isLoopback(addr string) bool {
	if i := strings.Index(addr, ":///"); i >= 0 {
		addr = addr[i+4:]
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
