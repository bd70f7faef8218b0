package telematics

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/tlsconf"
)

func TestSelfSignedCertificate(t *testing.T) {
	now := time.Now()
	cert, err := newSelfSigned(now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	key, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("key %T, want ECDSA P-256", leaf.PublicKey)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	names := []string{"localhost", "127.0.0.1", "::1"}
	if host, err := os.Hostname(); err == nil && host != "" {
		names = append(names, host)
	}
	for _, name := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("not valid for %s: %v", name, err)
		}
	}
	if leaf.NotBefore.After(now) || leaf.NotAfter.Before(now.Add(300*24*time.Hour)) {
		t.Errorf("validity %v to %v", leaf.NotBefore, leaf.NotAfter)
	}
	other, _ := newSelfSigned(now)
	if other.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two certificates with the same serial number")
	}
}

// TestConfiguredCertificate serves a certificate from files and checks that
// CertFingerprint and the start-up log report it.
func TestConfiguredCertificate(t *testing.T) {
	cert, err := newSelfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile })
	want := tlsconf.Fingerprint(cert.Certificate[0])
	if r.srv.CertFingerprint() != want {
		t.Fatalf("CertFingerprint %s, want %s", r.srv.CertFingerprint(), want)
	}
	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{RootCAs: r.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := tlsconf.Fingerprint(conn.ConnectionState().PeerCertificates[0].Raw); got != want {
		t.Fatalf("served %s, want %s", got, want)
	}
	if alpn := conn.ConnectionState().NegotiatedProtocol; alpn != "" && alpn != "http/1.1" {
		t.Fatalf("negotiated %q, want HTTP/1.1", alpn)
	}
	logged := r.logs.FilterMessage("listening").All()
	if len(logged) != 1 || logged[0].ContextMap()["cert_sha256"] != want || logged[0].ContextMap()["self_signed"] != false {
		t.Fatalf("start-up log: %v", logged)
	}
}

func TestSelfSignedFingerprintLogged(t *testing.T) {
	r := newRig(t, nil)
	logged := r.logs.FilterMessage("listening").All()
	if len(logged) != 1 {
		t.Fatalf("%d start-up lines", len(logged))
	}
	m := logged[0].ContextMap()
	if m["cert_sha256"] != r.srv.CertFingerprint() || m["self_signed"] != true || m["addr"] != r.srv.Addr().String() {
		t.Fatalf("start-up line %v", m)
	}
	if logged[0].Level.String() != "info" {
		t.Fatalf("logged at %s", logged[0].Level)
	}
	if _, _, err := net.SplitHostPort(r.srv.Addr().String()); err != nil {
		t.Fatal(err)
	}
}

func TestBadCertificateFiles(t *testing.T) {
	c := DefaultConfig()
	c.TLS.CertFile, c.TLS.KeyFile = "/nonexistent/cert.pem", "/nonexistent/key.pem"
	_, err := New(c, &fakeIngester{}, nil)
	if err == nil || !strings.Contains(err.Error(), "telematics.tls.cert_file") {
		t.Fatalf("New with missing certificate files: %v", err)
	}
}
