package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/goethe-log/goethe/internal/tlsconf"
	"github.com/goethe-log/goethe/server"
)

// securityConfig holds the flags of TLS, bearer tokens and the permissions of data files.
type securityConfig struct {
	// TLSCert and TLSKey, both or neither, turn TLS on for the gRPC port
	// and the metrics port.
	TLSCert, TLSKey string
	// TLSClientCA makes it mutual TLS: clients must present a certificate
	// of one of its CAs.
	TLSClientCA string
	// AuthFile, when set, makes every call carry a bearer token of the
	// file, with the permission the call needs (see server.AuthFile).
	AuthFile string
}

// register adds the group's flags to fs.
func (c *securityConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve gRPC and metrics over TLS (1.2 at least) with this PEM certificate (chain); needs --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "", "mutual TLS: require every client to present a certificate signed by a CA of this PEM file; needs --tls-cert")
	fs.StringVar(&c.AuthFile, "auth-file", "", "require a bearer token of this JSON file (hashed tokens and their read, write and admin\n"+
		"topic patterns) on every call of goethe.v1.Goethe (health checks and reflection stay open);\n"+
		"re-read on SIGHUP. Off when empty: every client may do everything")
}

// validate reports the first flag of the group with a bad value.
func (c *securityConfig) validate() error {
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		return errors.New("--tls-cert needs --tls-key")
	case c.TLSKey != "" && c.TLSCert == "":
		return errors.New("--tls-key needs --tls-cert")
	case c.TLSClientCA != "" && c.TLSCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS")
	}
	return nil
}

// tlsConfig reads the certificate files and returns the TLS configuration
// of both ports, or nil without --tls-cert. The error names the flag.
func (c *securityConfig) tlsConfig() (*tls.Config, error) {
	if c.TLSCert == "" {
		return nil, nil
	}
	cert, err := tlsconf.LoadKeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", c.TLSCert, c.TLSKey, err)
	}
	if c.TLSClientCA == "" {
		return tlsconf.Server(cert, nil), nil
	}
	cas, err := tlsconf.LoadCertPool(c.TLSClientCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-client-ca %s: %w", c.TLSClientCA, unwrapPathError(err))
	}
	return tlsconf.Server(cert, cas), nil
}

// loadAuth reads --auth-file, or returns nil without it. The error names
// the flag.
func (c *securityConfig) loadAuth() (*server.Tokens, error) {
	if c.AuthFile == "" {
		return nil, nil
	}
	t, err := server.LoadAuthFile(c.AuthFile)
	if err != nil {
		return nil, fmt.Errorf("--auth-file %s: %w", c.AuthFile, unwrapPathError(err))
	}
	return t, nil
}

// warnExposed logs a warning for each port that listens on an address
// other than loopback without TLS, and for the gRPC port without tokens:
// anyone who reaches such a port reads the traffic, or may read and write
// every topic.
func (c *securityConfig) warnExposed(log *slog.Logger, grpcAddr, metricsAddr net.Addr) {
	tlsOn := c.TLSCert != ""
	if !isLoopback(grpcAddr) {
		if !tlsOn {
			log.Warn("listening on a non-loopback address without TLS: tokens and events cross the network in clear (set --tls-cert and --tls-key)",
				"listen", grpcAddr.String())
		}
		if c.AuthFile == "" {
			log.Warn("listening on a non-loopback address without --auth-file: anyone who reaches the port may read and write every topic",
				"listen", grpcAddr.String())
		}
	}
	if metricsAddr != nil && !isLoopback(metricsAddr) && !tlsOn {
		log.Warn("serving metrics on a non-loopback address without TLS (set --tls-cert and --tls-key)",
			"metrics_listen", metricsAddr.String())
	}
}

// isLoopback reports whether a listening address accepts only local
// connections: a loopback IP. The unspecified address (0.0.0.0, ::)
// listens on every interface, so it is not.
func isLoopback(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// hashTokenSynopsis is hash-token's line in goethe -h.
const hashTokenSynopsis = "goethe hash-token < TOKEN-FILE\n" +
	"\tread a bearer token from stdin and print the sha256 that --auth-file stores"

// runHashToken reads one token from the first line of stdin (its line end
// dropped) and prints HashToken of it, the "sha256" of an --auth-file
// entry. Reading stdin keeps the token out of the shell history and the
// process list. Exit status 2 for arguments or an empty token.
func runHashToken(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
			fmt.Fprintf(stdout, "Usage: goethe hash-token < token-file\n\n"+
				"Reads a token from the first line of standard input and prints its SHA-256\n"+
				"in hex, the \"sha256\" of the token's entry in --auth-file.\n")
			return exitOK
		}
		fmt.Fprintf(stderr, "goethe hash-token: unexpected argument %q (the token is read from stdin)\n", args[0])
		return exitUsage
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "goethe hash-token: read stdin: %v\n", err)
		return exitError
	}
	token := strings.TrimRight(line, "\r\n")
	if token == "" {
		fmt.Fprintf(stderr, "goethe hash-token: no token on stdin\n")
		return exitUsage
	}
	fmt.Fprintln(stdout, server.HashToken(token))
	return exitOK
}

// security is what the group's flags set up for one run of the server:
// the TLS configuration and the tokens, reloaded from --auth-file on
// SIGHUP until close.
type security struct {
	cfg  *securityConfig
	tls  *tls.Config  // nil: plaintext
	auth *server.Auth // nil: no tokens
	stop func()       // ends the SIGHUP watch
}

// load reads the certificates and the auth file, failing with an error
// that names the flag at fault, and starts reloading the auth file on
// SIGHUP: a file that no longer loads is logged and the tokens in force
// stay. close ends the reloading.
func (c *securityConfig) load(log *slog.Logger) (*security, error) {
	s := &security{cfg: c, stop: func() {}}
	var err error
	if s.tls, err = c.tlsConfig(); err != nil {
		return nil, err
	}
	toks, err := c.loadAuth()
	if err != nil {
		return nil, err
	}
	if toks == nil {
		return s, nil
	}
	s.auth = server.NewAuth(toks)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-hup:
				t, err := c.loadAuth()
				if err != nil {
					log.Error("auth file not reloaded: the tokens loaded before stay in force", "error", err)
					continue
				}
				ended := s.auth.Replace(t)
				log.Info("auth file reloaded", "auth_file", c.AuthFile, "tokens", t.Len(), "streams_ended", ended)
			case <-done:
				return
			}
		}
	}()
	s.stop = func() {
		signal.Stop(hup)
		close(done)
		<-stopped
	}
	return s, nil
}

// close stops reloading the auth file.
func (s *security) close() { s.stop() }

// metricsListener is lis, behind TLS when TLS is on.
func (s *security) metricsListener(lis net.Listener) net.Listener {
	if s.tls == nil {
		return lis
	}
	return tls.NewListener(lis, s.tls)
}

// metricsURL is the URL of the metrics endpoint on addr.
func (s *security) metricsURL(addr net.Addr) string {
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + addr.String() + metricsPath
}

// logAttrs are the start line's attributes of the group.
func (s *security) logAttrs() []any {
	attrs := []any{"tls", s.tls != nil, "mutual_tls", s.cfg.TLSClientCA != ""}
	if s.auth != nil {
		attrs = append(attrs, "auth_file", s.cfg.AuthFile)
	}
	return attrs
}
