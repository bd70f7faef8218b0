package tlsconf_test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/tlsconf"
	"github.com/fleetgate/fleetgate/tlsconf/tlstest"
)

// echoServer serves cfg on 127.0.0.1:0 and echoes every line.
func echoServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func echo(t *testing.T, c *tls.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		t.Fatalf("write on an established connection: %v", err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != msg+"\n" {
		t.Fatalf("echo on an established connection: %q, %v", got, err)
	}
}

// waitForCert handshakes until the server presents want (the reloader
// checks the files at most once a second).
func waitForCert(t *testing.T, addr string, cfg *tls.Config, want *tlstest.Leaf) *tls.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dial(t, addr, cfg)
		if c.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(want.Cert.SerialNumber) == 0 {
			return c
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still presents the old certificate 10s after the files were replaced")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRotationWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "rot")
	first := ca.Server(t, dir, "first")
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	first.InstallAs(t, certFile, keyFile)
	r, err := tlsconf.New(tlsconf.Files{CertFile: certFile, KeyFile: keyFile, Key: "test.tls"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := echoServer(t, r.ServerConfig())
	client := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}

	old := waitForCert(t, addr, client, first)
	echo(t, old, "before")

	second := ca.Server(t, dir, "second")
	second.InstallAs(t, certFile, keyFile)
	waitForCert(t, addr, client, second)
	echo(t, old, "after") // the connection opened with the old certificate keeps working
	if r.Fingerprint() != tlsconf.Fingerprint(second.TLS.Certificate[0]) {
		t.Fatal("Fingerprint does not follow the rotation")
	}

	// A broken file keeps the last good certificate.
	tlstest.WriteFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n"))
	time.Sleep(tlsconf.CheckInterval + 100*time.Millisecond)
	c := waitForCert(t, addr, client, second)
	echo(t, c, "still served")
	if n := r.Reloads(); n != 1 {
		t.Fatalf("%d reloads, want 1 (the broken file must not count)", n)
	}

	// And a good file after the broken one is taken.
	third := ca.Server(t, dir, "third")
	third.InstallAs(t, certFile, keyFile)
	waitForCert(t, addr, client, third)
}

func TestClientCAReloads(t *testing.T) {
	dir := t.TempDir()
	ca1 := tlstest.NewCA(t, dir, "one")
	ca2 := tlstest.NewCA(t, dir, "two")
	server := ca1.Server(t, dir, "server")
	caFile := filepath.Join(dir, "clients-ca.pem")
	pem1, _ := os.ReadFile(ca1.File)
	tlstest.WriteFile(t, caFile, pem1)
	r, err := tlsconf.New(tlsconf.Files{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: caFile, Key: "test.tls"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := echoServer(t, r.ServerConfig())
	dev1, dev2 := ca1.Client(t, dir, "dev1"), ca2.Client(t, dir, "dev2")
	try := func(leaf *tlstest.Leaf) error {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca1.Pool, ServerName: "localhost", Certificates: []tls.Certificate{leaf.TLS}})
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3 reports a refused client certificate on the first read.
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("x\n")); err != nil {
			return err
		}
		_, err = bufio.NewReader(c).ReadString('\n')
		return err
	}
	if err := try(dev1); err != nil {
		t.Fatalf("client of CA one refused: %v", err)
	}
	if err := try(dev2); err == nil {
		t.Fatal("client of CA two accepted before the CA file names it")
	}
	pem2, _ := os.ReadFile(ca2.File)
	tlstest.WriteFile(t, caFile, append(pem1, pem2...))
	deadline := time.Now().Add(10 * time.Second)
	for try(dev2) != nil {
		if time.Now().After(deadline) {
			t.Fatal("client CA file change not picked up")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestOnlyAEADSuites(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "suites")
	server := ca.Server(t, dir, "server")
	r, err := tlsconf.New(tlsconf.Files{CertFile: server.CertFile, KeyFile: server.KeyFile, Key: "test.tls"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := echoServer(t, r.ServerConfig())
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"tls1.2 AES-GCM", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"}, true},
		{"tls1.2 CHACHA20", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"}, true},
		{"tls1.3", []string{"-tls1_3"}, true},
		{"tls1.2 CBC-SHA1", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"}, false},
		{"tls1.2 CBC-SHA256", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"}, false},
		{"tls1.1", []string{"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := tlstest.OpenSSL(t, addr, append(tc.args, "-servername", "localhost")...)
			if ok != tc.ok {
				t.Fatalf("openssl s_client %v: handshake ok=%v, want %v\n%s", tc.args, ok, tc.ok, out)
			}
			if ok && !strings.Contains(out, "Cipher is") {
				t.Fatalf("no cipher in openssl output:\n%s", out)
			}
		})
	}
}

func TestNewNamesTheKey(t *testing.T) {
	_, err := tlsconf.New(tlsconf.Files{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem", Key: "mqtt.tls"}, nil)
	if err == nil || !strings.Contains(err.Error(), "mqtt.tls") {
		t.Fatalf("error %v does not name mqtt.tls", err)
	}
}

func TestFingerprint(t *testing.T) {
	der := []byte("not really a certificate")
	got := tlsconf.Fingerprint(der)
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(got) {
		t.Fatalf("fingerprint %q is not 32 colon-separated hex bytes", got)
	}
	sum := sha256.Sum256(der)
	if strings.ReplaceAll(got, ":", "") != strings.ToUpper(hex.EncodeToString(sum[:])) {
		t.Fatalf("fingerprint %q is not the SHA-256 of the DER", got)
	}
}
