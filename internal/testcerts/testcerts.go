// Package testcerts makes throw-away certificate authorities and
// certificates for tests, with crypto/x509: nothing is committed, every
// key is generated when the test runs. Nothing in it is used outside tests.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CA is a certificate authority that signs server and client certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// File is the CA certificate as a PEM file.
	File string
}

// Pair is a certificate and its key, in PEM files and loaded.
type Pair struct {
	CertFile, KeyFile string
	TLS               tls.Certificate
}

// NewCA makes a CA whose certificate is written under dir as name.pem.
func NewCA(tb testing.TB, dir, name string) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(tb, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(tb, err)
	file := filepath.Join(dir, name+".pem")
	writePEM(tb, file, "CERTIFICATE", der)
	return &CA{Cert: cert, Key: key, File: file}
}

// Pool is a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Server issues a server certificate for 127.0.0.1, ::1 and localhost,
// written under dir as name.pem and name-key.pem.
func (ca *CA) Server(tb testing.TB, dir, name string) Pair {
	tb.Helper()
	return ca.issue(tb, dir, name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Member issues a certificate for both ends of a connection between
// cluster members (server and client authentication) for 127.0.0.1, ::1
// and localhost, written under dir as name.pem and name-key.pem.
func (ca *CA) Member(tb testing.TB, dir, name string) Pair {
	tb.Helper()
	return ca.issue(tb, dir, name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
}

// Client issues a client certificate with common name cn, written under
// dir as cn.pem and cn-key.pem.
func (ca *CA) Client(tb testing.TB, dir, cn string) Pair {
	tb.Helper()
	return ca.issue(tb, dir, cn, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) issue(tb testing.TB, dir, name string, tmpl *x509.Certificate) Pair {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl.SerialNumber = serial(tb)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	require.NoError(tb, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(tb, err)
	p := Pair{CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+"-key.pem")}
	writePEM(tb, p.CertFile, "CERTIFICATE", der)
	writePEM(tb, p.KeyFile, "PRIVATE KEY", kder)
	p.TLS, err = tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	require.NoError(tb, err)
	return p
}

// Set is a CA with a server and a client certificate it signed, all in one
// folder: what most TLS tests need.
type Set struct {
	CA     *CA
	Server Pair
	Client Pair
}

// New makes a Set in a new t.TempDir().
func New(tb testing.TB) *Set {
	tb.Helper()
	dir := tb.TempDir()
	ca := NewCA(tb, dir, "ca")
	return &Set{CA: ca, Server: ca.Server(tb, dir, "server"), Client: ca.Client(tb, dir, "client")}
}

func serial(tb testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	require.NoError(tb, err)
	return n
}

func writePEM(tb testing.TB, file, typ string, der []byte) {
	tb.Helper()
	require.NoError(tb, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}
