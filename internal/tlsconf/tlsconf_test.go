package tlsconf_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/internal/testcerts"
	"github.com/goethe-log/goethe/internal/tlsconf"
)

func TestServerConfig(t *testing.T) {
	certs := testcerts.New(t)
	c := tlsconf.Server(certs.Server.TLS, nil)
	require.Equal(t, uint16(tls.VersionTLS12), c.MinVersion)
	require.Equal(t, tls.NoClientCert, c.ClientAuth)
	c = tlsconf.Server(certs.Server.TLS, certs.CA.Pool())
	require.Equal(t, tls.RequireAndVerifyClientCert, c.ClientAuth)
	require.NotNil(t, c.ClientCAs)
}

func TestClientFiles(t *testing.T) {
	certs := testcerts.New(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("no pem here"), 0o600))

	c, err := tlsconf.ClientFiles(certs.CA.File, certs.Client.CertFile, certs.Client.KeyFile)
	require.NoError(t, err)
	require.Len(t, c.Certificates, 1)
	require.NotNil(t, c.RootCAs)
	require.Equal(t, uint16(tls.VersionTLS12), c.MinVersion)
	c, err = tlsconf.ClientFiles("", "", "")
	require.NoError(t, err)
	require.Nil(t, c.RootCAs, "the system's roots")

	for _, tc := range []struct {
		ca, cert, key, want string
	}{
		{filepath.Join(dir, "missing.pem"), "", "", "CA file: open " + filepath.Join(dir, "missing.pem")},
		{empty, "", "", "CA file: " + empty + ": tlsconf: no PEM certificate found"},
		{"", certs.Client.CertFile, "", "needs both its certificate file and its key file"},
		{"", "", certs.Client.KeyFile, "needs both its certificate file and its key file"},
		{"", filepath.Join(dir, "missing.pem"), certs.Client.KeyFile, "certificate: stat " + filepath.Join(dir, "missing.pem")},
		{"", certs.Client.CertFile, filepath.Join(dir, "missing.pem"), "key: stat " + filepath.Join(dir, "missing.pem")},
		{"", certs.Client.CertFile, certs.Server.KeyFile, "private key does not match public key"},
	} {
		_, err := tlsconf.ClientFiles(tc.ca, tc.cert, tc.key)
		require.ErrorContains(t, err, tc.want)
	}
	_, err = tlsconf.LoadCertPool(empty)
	require.ErrorIs(t, err, tlsconf.ErrNoCertificates)
}
