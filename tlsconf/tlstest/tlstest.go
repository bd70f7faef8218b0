// Package tlstest makes certificates for tests: a CA, server and client
// certificates signed by it, written as PEM files; and runs `openssl
// s_client` against a listener.
package tlstest

import (
	"bytes"
	"context"
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
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// File is the CA certificate's PEM file.
	File string
	Pool *x509.CertPool

	parent *CA // of an intermediate CA
}

// NewCA makes a CA named cn and writes its certificate to dir.
func NewCA(t testing.TB, dir, cn string) *CA {
	t.Helper()
	return newCA(t, dir, cn, nil)
}

// Intermediate makes a CA named cn that ca signed. The client certificates
// it makes carry it in their chain (Leaf.TLS), as a device sends it.
func (ca *CA) Intermediate(t testing.TB, dir, cn string) *CA {
	t.Helper()
	return newCA(t, dir, cn, ca)
}

func newCA(t testing.TB, dir, cn string, parent *CA) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Cert: cert, Key: key, File: filepath.Join(dir, cn+"-ca.pem"), Pool: x509.NewCertPool(), parent: parent}
	ca.Pool.AddCert(cert)
	WriteFile(t, ca.File, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// Leaf is a certificate signed by a CA, with its PEM files.
type Leaf struct {
	CertFile, KeyFile string
	CertPEM, KeyPEM   []byte
	Cert              *x509.Certificate
	TLS               tls.Certificate
}

// Server makes a server certificate for localhost and 127.0.0.1 named cn.
func (ca *CA) Server(t testing.TB, dir, cn string) *Leaf {
	t.Helper()
	return ca.leaf(t, dir, cn, x509.ExtKeyUsageServerAuth)
}

// Client makes a client certificate with common name cn.
func (ca *CA) Client(t testing.TB, dir, cn string) *Leaf {
	t.Helper()
	return ca.leaf(t, dir, cn, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) leaf(t testing.TB, dir, cn string, usage x509.ExtKeyUsage) *Leaf {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := &Leaf{
		CertFile: filepath.Join(dir, cn+".pem"), KeyFile: filepath.Join(dir, cn+"-key.pem"),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	}
	l.Cert, _ = x509.ParseCertificate(der)
	if l.TLS, err = tls.X509KeyPair(l.CertPEM, l.KeyPEM); err != nil {
		t.Fatal(err)
	}
	for p := ca; p.parent != nil; p = p.parent {
		l.TLS.Certificate = append(l.TLS.Certificate, p.Cert.Raw)
	}
	WriteFile(t, l.CertFile, l.CertPEM)
	WriteFile(t, l.KeyFile, l.KeyPEM)
	return l
}

// CRL writes to file, as PEM, a revocation list signed by ca that lists
// the certificates of revoked, valid for nextUpdate from now (negative: a
// stale list).
func (ca *CA) CRL(t testing.TB, file string, nextUpdate time.Duration, revoked ...*Leaf) {
	t.Helper()
	tmpl := &x509.RevocationList{Number: serial(t), ThisUpdate: time.Now().Add(-2 * time.Hour), NextUpdate: time.Now().Add(nextUpdate)}
	for _, l := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: l.Cert.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, file, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
}

// Revocation is a CA with a server certificate and two client certificates
// (STS-00000001, STS-00000002), and a CRL file that revokes the first.
type Revocation struct {
	CA                   *CA
	Server, Stolen, Kept *Leaf
	CRLFile              string
}

// NewRevocation makes a Revocation in dir.
func NewRevocation(t testing.TB, dir string) *Revocation {
	t.Helper()
	ca := NewCA(t, dir, "fleet")
	r := &Revocation{CA: ca, Server: ca.Server(t, dir, "server"), Stolen: ca.Client(t, dir, "STS-00000001"),
		Kept: ca.Client(t, dir, "STS-00000002"), CRLFile: filepath.Join(dir, "crl.pem")}
	ca.CRL(t, r.CRLFile, time.Hour, r.Stolen)
	return r
}

// InstallAs writes l's certificate and key over certFile and keyFile, each
// by a rename (as a deployment tool does), so a reader never sees half a
// file.
func (l *Leaf) InstallAs(t testing.TB, certFile, keyFile string) {
	t.Helper()
	WriteFile(t, keyFile, l.KeyPEM)
	WriteFile(t, certFile, l.CertPEM)
}

// WriteFile writes data to name through a temporary file and a rename.
func WriteFile(t testing.TB, name string, data []byte) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// OpenSSL runs `openssl s_client -connect addr args...` with no input and
// returns its combined output and whether the handshake succeeded (exit
// status 0). The test fails when openssl is not installed.
func OpenSSL(t testing.TB, addr string, args ...string) (string, bool) {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not installed (Debian package openssl); this test needs its s_client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"s_client", "-connect", addr}, args...)...)
	cmd.Stdin = bytes.NewReader(nil)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
