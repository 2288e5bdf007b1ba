package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/goethe-log/goethe/cluster"
	"github.com/goethe-log/goethe/internal/tlsconf"
)

// clusterSecurity holds the flags that secure the traffic between members:
// the Raft port's mutual TLS, and the token a follower sends with the
// writes it forwards to the leader's gRPC port.
type clusterSecurity struct {
	RaftTLSCert, RaftTLSKey, RaftTLSCA string
	PeerTokenFile                      string
}

func (c *clusterSecurity) register(fs interface {
	StringVar(p *string, name, value, usage string)
}) {
	fs.StringVar(&c.RaftTLSCert, "raft-tls-cert", "", "cluster mode: mutual TLS on the Raft port with this PEM certificate, valid for server and\n"+
		"client authentication and for the host of --raft-listen; needs --raft-tls-key and --raft-tls-ca")
	fs.StringVar(&c.RaftTLSKey, "raft-tls-key", "", "cluster mode: the PEM private key of --raft-tls-cert")
	fs.StringVar(&c.RaftTLSCA, "raft-tls-ca", "", "cluster mode: the PEM CA file that signed every member's --raft-tls-cert; a peer without such\n"+
		"a certificate is refused. With --tls-cert, followers also trust it (beside the system's roots) for the\n"+
		"leader's gRPC port when they forward writes, and present --raft-tls-cert there")
	fs.StringVar(&c.PeerTokenFile, "peer-token-file", "", "cluster mode with --auth-file: a file holding the bearer token a follower sends with the writes\n"+
		"it forwards to the leader (it checked the caller's own token first); the token must have write and\n"+
		"admin permission on every topic (\"*\") in every member's --auth-file")
}

func (c *clusterSecurity) raftTLS() bool {
	return c.RaftTLSCert != "" || c.RaftTLSKey != "" || c.RaftTLSCA != ""
}

// validate checks the group against the client port's security: a member
// whose gRPC port checks TLS or tokens must not leave its Raft port open,
// and must be able to forward writes to a leader that checks them.
func (c *clusterSecurity) validate(clustered bool, sec *securityConfig, peerClients []string) error {
	if !clustered {
		if c.raftTLS() || c.PeerTokenFile != "" {
			return errors.New("--raft-tls-cert, --raft-tls-key, --raft-tls-ca and --peer-token-file need --node-id (cluster mode)")
		}
		return nil
	}
	if c.raftTLS() && (c.RaftTLSCert == "" || c.RaftTLSKey == "" || c.RaftTLSCA == "") {
		return errors.New("--raft-tls-cert, --raft-tls-key and --raft-tls-ca go together")
	}
	if (sec.TLSCert != "" || sec.AuthFile != "") && !c.raftTLS() {
		return errors.New("--tls-cert and --auth-file in cluster mode need --raft-tls-cert, --raft-tls-key and --raft-tls-ca: " +
			"otherwise anyone who reaches the Raft port can write to the log around every check of the gRPC port")
	}
	if sec.AuthFile != "" && c.PeerTokenFile == "" {
		return errors.New("--auth-file in cluster mode needs --peer-token-file: the token followers forward writes with")
	}
	if c.PeerTokenFile != "" && sec.TLSCert == "" {
		for _, addr := range peerClients {
			if !loopbackHostPort(addr) {
				return fmt.Errorf("--peer-token-file without --tls-cert would send the token in plaintext to %s: serve TLS, or keep every member on loopback", addr)
			}
		}
	}
	return nil
}

// loopbackHostPort reports whether addr's host is a loopback address or
// localhost.
func loopbackHostPort(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// memberTLS reads the Raft port's certificate and CA, or returns nil
// without them. The error names the flag at fault.
func (c *clusterSecurity) memberTLS() (*tls.Config, tls.Certificate, error) {
	if !c.raftTLS() {
		return nil, tls.Certificate{}, nil
	}
	cert, err := tlsconf.LoadKeyPair(c.RaftTLSCert, c.RaftTLSKey)
	if err != nil {
		return nil, cert, fmt.Errorf("--raft-tls-cert %s / --raft-tls-key %s: %w", c.RaftTLSCert, c.RaftTLSKey, err)
	}
	ca, err := tlsconf.LoadCertPool(c.RaftTLSCA)
	if err != nil {
		return nil, cert, fmt.Errorf("--raft-tls-ca %s: %w", c.RaftTLSCA, unwrapPathError(err))
	}
	return cluster.MemberTLS(cert, ca), cert, nil
}

// forwardDialOptions are the options of a follower's connections to the
// leader's gRPC port: TLS when the members serve it (trusting the
// system's roots and the cluster's CA, presenting the member's certificate
// for a port that asks for one), and the peer token when there is one.
func (c *clusterSecurity) forwardDialOptions(sec *securityConfig, cert tls.Certificate) ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	if sec.TLSCert == "" {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if c.RaftTLSCA != "" {
			if err := tlsconf.AppendCertFile(roots, c.RaftTLSCA); err != nil {
				return nil, fmt.Errorf("--raft-tls-ca %s: %w", c.RaftTLSCA, unwrapPathError(err))
			}
		}
		var own *tls.Certificate
		if len(cert.Certificate) > 0 {
			own = &cert
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tlsconf.Client(roots, own))))
	}
	if c.PeerTokenFile == "" {
		return opts, nil
	}
	b, err := os.ReadFile(c.PeerTokenFile)
	if err != nil {
		return nil, fmt.Errorf("--peer-token-file %s: %w", c.PeerTokenFile, unwrapPathError(err))
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return nil, fmt.Errorf("--peer-token-file %s: want one token on one line", c.PeerTokenFile)
	}
	return append(opts, grpc.WithPerRPCCredentials(peerToken{md: map[string]string{"authorization": "Bearer " + tok}, tls: sec.TLSCert != ""})), nil
}

// peerToken is the per-call credentials of forwarded writes.
type peerToken struct {
	md  map[string]string
	tls bool
}

func (p peerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return p.md, nil
}

// RequireTransportSecurity is true when the members serve TLS, so that
// the token never goes out in plaintext there; validate allows plaintext
// only to loopback members.
func (p peerToken) RequireTransportSecurity() bool { return p.tls }
