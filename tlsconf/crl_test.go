package tlsconf_test

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleetgate/fleetgate/tlsconf"
	"github.com/fleetgate/fleetgate/tlsconf/tlstest"
)

// handshake runs a TLS handshake of a client with leaf's certificate
// against cfg and returns the server's error.
func handshake(t *testing.T, cfg *tls.Config, ca *tlstest.CA, leaf *tlstest.Leaf) error {
	t.Helper()
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	deadline := time.Now().Add(5 * time.Second)
	cc.SetDeadline(deadline)
	sc.SetDeadline(deadline)
	go func() {
		c := tls.Client(cc, &tls.Config{RootCAs: ca.Pool, ServerName: "localhost", Certificates: []tls.Certificate{leaf.TLS}})
		if c.Handshake() == nil {
			c.Read(make([]byte, 1)) // TLS 1.3: the server's verdict on the client certificate comes after
		}
		cc.Close()
	}()
	return tls.Server(sc, cfg).Handshake()
}

// TestRevokedClientCertificateRefused: with crl_file, a client certificate
// the CA's revocation list names is refused in the handshake with
// ErrRevoked, another of the same CA is accepted, and a certificate revoked
// later is refused once the changed CRL file is read again.
func TestRevokedClientCertificateRefused(t *testing.T) {
	pki := tlstest.NewRevocation(t, t.TempDir())
	ca, server, stolen, kept, crl := pki.CA, pki.Server, pki.Stolen, pki.Kept, pki.CRLFile
	r, err := tlsconf.New(tlsconf.Files{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.File, CRLFile: crl, Key: "mqtt.tls"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.ServerConfig()
	if err := handshake(t, cfg, ca, stolen); !errors.Is(err, tlsconf.ErrRevoked) {
		t.Fatalf("revoked certificate: server handshake error %v; want ErrRevoked", err)
	} else if !strings.Contains(err.Error(), "STS-00000001") {
		t.Errorf("the refusal %q does not name the certificate", err)
	}
	if err := handshake(t, cfg, ca, kept); err != nil {
		t.Fatalf("certificate not revoked: refused: %v", err)
	}
	ca.CRL(t, crl, time.Hour, stolen, kept)
	deadline := time.Now().Add(10 * time.Second)
	for handshake(t, cfg, ca, kept) == nil {
		if time.Now().After(deadline) {
			t.Fatal("a certificate revoked in the changed CRL file is still accepted 10s later")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestCRLFileChecks: a CRL that no CA of client_ca_file signed, a file
// without a CRL, and crl_file without client_ca_file are errors naming the
// key; a CRL past its next update still applies, with a warning.
func TestCRLFileChecks(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, dir, "fleet"), tlstest.NewCA(t, dir, "other")
	server := ca.Server(t, dir, "server")
	dev := ca.Client(t, dir, "STS-00000001")
	files := func(crl string) tlsconf.Files {
		return tlsconf.Files{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.File, CRLFile: crl, Key: "mqtt.tls"}
	}
	foreign := filepath.Join(dir, "foreign.pem")
	other.CRL(t, foreign, time.Hour, dev)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a CRL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noCA := files(foreign)
	noCA.ClientCAFile = ""
	for name, c := range map[string]struct {
		files tlsconf.Files
		want  string
	}{
		"signed by another CA": {files(foreign), "not a CA of client_ca_file"},
		"no CRL in the file":   {files(garbage), "holds no CRL"},
		"missing file":         {files(filepath.Join(dir, "none.pem")), "no such file"},
		"no client CA":         {noCA, "without mqtt.tls.client_ca_file"},
	} {
		_, err := tlsconf.New(c.files, nil)
		if err == nil || !strings.Contains(err.Error(), "mqtt.tls.") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v; want one naming the key and saying %q", name, err, c.want)
		}
	}
	stale := filepath.Join(dir, "stale.pem")
	ca.CRL(t, stale, -time.Hour, dev)
	core, logs := observer.New(zap.WarnLevel)
	r, err := tlsconf.New(files(stale), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if logs.FilterMessageSnippet("past its next update").Len() != 1 {
		t.Errorf("no warning for a stale CRL; logs: %v", logs.All())
	}
	if err := handshake(t, r.ServerConfig(), ca, dev); !errors.Is(err, tlsconf.ErrRevoked) {
		t.Errorf("certificate revoked by a stale CRL: %v; want ErrRevoked", err)
	}
}

// TestRevokedIntermediateCARefused: a certificate issued by an intermediate
// CA that the root's list revokes is refused, though the certificate itself
// is not listed; one of another intermediate is accepted.
func TestRevokedIntermediateCARefused(t *testing.T) {
	dir := t.TempDir()
	root := tlstest.NewCA(t, dir, "fleet root")
	bad, good := root.Intermediate(t, dir, "plant A"), root.Intermediate(t, dir, "plant B")
	server := root.Server(t, dir, "server")
	crl := filepath.Join(dir, "crl.pem")
	root.CRL(t, crl, time.Hour, &tlstest.Leaf{Cert: bad.Cert})
	r, err := tlsconf.New(tlsconf.Files{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: root.File, CRLFile: crl, Key: "mqtt.tls"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, r.ServerConfig(), root, bad.Client(t, dir, "STS-00000003")); !errors.Is(err, tlsconf.ErrRevoked) {
		t.Errorf("certificate of a revoked intermediate CA: %v; want ErrRevoked", err)
	}
	if err := handshake(t, r.ServerConfig(), root, good.Client(t, dir, "STS-00000004")); err != nil {
		t.Errorf("certificate of an intermediate CA not revoked: %v", err)
	}
}
