package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/goethe-log/goethe/client"
)

// Environment variables of the security flags: each sets its flag's
// default, and the flag wins. GOETHE_TOKEN keeps the token out of the
// process list and the shell history, where --token would show it.
const (
	tokenEnv   = "GOETHE_TOKEN"
	tlsCAEnv   = "GOETHE_TLS_CA"
	tlsCertEnv = "GOETHE_TLS_CERT"
	tlsKeyEnv  = "GOETHE_TLS_KEY"
)

// securityFlags are the global flags of TLS and the bearer token.
type securityFlags struct {
	tlsCA, tlsCert, tlsKey string
	token                  string
}

// fromEnv sets the defaults from the environment.
func (s *securityFlags) fromEnv(getenv func(string) string) {
	for _, v := range []struct {
		env string
		to  *string
	}{{tokenEnv, &s.token}, {tlsCAEnv, &s.tlsCA}, {tlsCertEnv, &s.tlsCert}, {tlsKeyEnv, &s.tlsKey}} {
		if x := getenv(v.env); x != "" {
			*v.to = x
		}
	}
}

// register adds the flags to fs, with the values in s as defaults.
func (s *securityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.tlsCA, "tls-ca", s.tlsCA, "connect over TLS, verifying the server with the CA certificates of this PEM `FILE` ($"+tlsCAEnv+")")
	fs.StringVar(&s.tlsCert, "tls-cert", s.tlsCert, "present this PEM certificate `FILE` to a server that requires one (mutual TLS; with --tls-key, $"+tlsCertEnv+")")
	fs.StringVar(&s.tlsKey, "tls-key", s.tlsKey, "the PEM private key `FILE` of --tls-cert ($"+tlsKeyEnv+")")
	fs.StringVar(&s.token, "token", s.token, "send this bearer `TOKEN` with every call (prefer $"+tokenEnv+", which ps does not show)")
}

// options are the client options the flags ask for. TLS is on when any
// TLS flag is given; a token goes over TLS, or in plaintext to a loopback
// address only (see client.WithToken).
func (s *securityFlags) options() ([]client.Option, error) {
	var opts []client.Option
	if (s.tlsCert == "") != (s.tlsKey == "") {
		return nil, usagef("", "--tls-cert and --tls-key go together")
	}
	if s.tlsCA != "" || s.tlsCert != "" {
		opts = append(opts, client.WithTLSFiles(s.tlsCA, s.tlsCert, s.tlsKey))
	}
	if s.token != "" {
		opts = append(opts, client.WithToken(strings.TrimSpace(s.token)))
	}
	return opts, nil
}

// securityUsage is the global flags' part of the usage.
const securityUsage = `  --tls-ca FILE   connect over TLS, verifying the server with the CA
                  certificates of FILE (or $GOETHE_TLS_CA)
  --tls-cert FILE, --tls-key FILE
                  the client certificate and key for a server that requires
                  one (mutual TLS; or $GOETHE_TLS_CERT, $GOETHE_TLS_KEY)
  --token TOKEN   send TOKEN as a bearer token with every call; prefer
                  $GOETHE_TOKEN, which ps does not show. A token is sent over
                  TLS, or in plaintext to a loopback address only
`

// tlsHint says what to check when a connection failed in its TLS
// handshake: gRPC's message for it (msg, whose last part is cause) is its
// only trace, as for dialFailure.
func tlsHint(msg, cause string) (string, bool) {
	if !strings.Contains(msg, "x509:") && !strings.Contains(msg, "tls:") && !strings.Contains(msg, "handshake") {
		return "", false
	}
	return fmt.Sprintf("TLS handshake failed: %s (check --tls-ca, --tls-cert and --tls-key)", cause), true
}
