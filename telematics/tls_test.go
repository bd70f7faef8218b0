package telematics

import (
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/tlsconf"
	"github.com/fleetgate/fleetgate/tlsconf/tlstest"
)

// TestOnlyAEADSuites: the endpoint speaks TLS 1.2+ with AEAD suites only,
// with the generated certificate (ECDSA) as with a configured one.
func TestOnlyAEADSuites(t *testing.T) {
	r := newRig(t, nil)
	addr := r.srv.Addr().String()
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"}, true},
		{[]string{"-tls1_3"}, true},
		{[]string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"}, false},
		{[]string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA"}, false},
		{[]string{"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"}, false},
	} {
		if out, ok := tlstest.OpenSSL(t, addr, tc.args...); ok != tc.ok {
			t.Errorf("openssl s_client %v: handshake ok=%v, want %v\n%s", tc.args, ok, tc.ok, out)
		}
	}
}

// TestCertificateRotation: replacing telematics.tls's files changes the
// certificate of new connections without a restart; a keep-alive
// connection opened before keeps working, and CertFingerprint follows.
func TestCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "https")
	first, second := ca.Server(t, dir, "first"), ca.Server(t, dir, "second")
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	first.InstallAs(t, certFile, keyFile)
	r := newRig(t, func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile })
	addr := r.srv.Addr().String()

	// One client with a kept-alive connection, opened on the first certificate.
	served := func(cs *tls.ConnectionState) string { return tlsconf.Fingerprint(cs.PeerCertificates[0].Raw) }
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}}}
	post := func(c *http.Client) *http.Response {
		t.Helper()
		resp, err := c.Post("https://"+addr+"/log", "application/json", strings.NewReader(sample(t, "sts-log.json")))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := post(old); served(resp.TLS) != tlsconf.Fingerprint(first.TLS.Certificate[0]) || resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d, not on the first certificate", resp.StatusCode)
	}

	second.InstallAs(t, certFile, keyFile)
	want := tlsconf.Fingerprint(second.TLS.Certificate[0])
	deadline := time.Now().Add(10 * time.Second)
	for {
		fresh := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}, DisableKeepAlives: true}}
		if resp := post(fresh); served(resp.TLS) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("new connections still get the old certificate 10s after rotation")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.srv.CertFingerprint() != want {
		t.Fatalf("CertFingerprint %s after rotation, want %s", r.srv.CertFingerprint(), want)
	}
	if resp := post(old); served(resp.TLS) != tlsconf.Fingerprint(first.TLS.Certificate[0]) || resp.StatusCode != http.StatusOK {
		t.Fatalf("the kept-alive connection of before the rotation: %d, certificate changed under it", resp.StatusCode)
	}
}
