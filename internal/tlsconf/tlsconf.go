// Package tlsconf builds the TLS configurations of the goethe server, the Go
// client and goethectl from PEM files, with one policy: TLS 1.2 at least
// (1.3 is chosen whenever both sides have it, as crypto/tls does), Go's
// default cipher suites, and errors that name the file and what is wrong
// with it. Callers name the flag.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// MinVersion is the oldest TLS version goethe speaks: TLS 1.2. TLS 1.3 is
// negotiated whenever the peer has it.
const MinVersion = tls.VersionTLS12

// ErrNoCertificates: a CA file holds no PEM certificate.
var ErrNoCertificates = errors.New("tlsconf: no PEM certificate found")

// LoadKeyPair reads a PEM certificate (chain) and its private key. The
// error names the files; it does not say which flag gave them.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, errors.New("a certificate needs both its certificate file and its key file")
	}
	if _, err := os.Stat(certFile); err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	if _, err := os.Stat(keyFile); err != nil {
		return tls.Certificate{}, fmt.Errorf("key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// LoadCertPool reads every PEM certificate of file into a new pool. A file
// without one is ErrNoCertificates.
func LoadCertPool(file string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if err := AppendCertFile(pool, file); err != nil {
		return nil, err
	}
	return pool, nil
}

// AppendCertFile adds the PEM certificates of file to pool (a copy of the
// system's roots, say), failing with ErrNoCertificates when it holds none.
func AppendCertFile(pool *x509.CertPool, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("%s: %w", file, ErrNoCertificates)
	}
	return nil
}

// Server returns the configuration of a TLS listener that presents cert.
// With clientCAs not nil, it is mutual TLS: every client must present a
// certificate that chains to one of clientCAs, or the handshake fails.
func Server(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{
		MinVersion:   MinVersion,
		Certificates: []tls.Certificate{cert},
		// h2 for gRPC, http/1.1 for the metrics endpoint.
		NextProtos: []string{"h2", "http/1.1"},
	}
	if clientCAs != nil {
		c.ClientCAs = clientCAs
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

// Client returns the configuration of a TLS client that verifies the
// server against roots (nil: the system's roots) and presents cert, if
// not nil, for mutual TLS.
func Client(roots *x509.CertPool, cert *tls.Certificate) *tls.Config {
	c := &tls.Config{MinVersion: MinVersion, RootCAs: roots}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// ClientFiles is Client over PEM files: caFile ("" for the system's roots)
// and, both or neither, certFile and keyFile for mutual TLS. The error
// names the file at fault.
func ClientFiles(caFile, certFile, keyFile string) (*tls.Config, error) {
	var roots *x509.CertPool
	if caFile != "" {
		p, err := LoadCertPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		roots = p
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate file and its key file")
	}
	var cert *tls.Certificate
	if certFile != "" {
		c, err := LoadKeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cert = &c
	}
	return Client(roots, cert), nil
}
