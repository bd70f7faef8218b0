package tlsconf_test

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/tlsconf"
	"github.com/fleetgate/fleetgate/tlsconf/tlstest"
)

// TestRotationBySymlinkSwap: a Kubernetes Secret volume swaps its
// "..data" link to a new directory; the files named through it are
// followed.
func TestRotationBySymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "k8s")
	vol := filepath.Join(dir, "vol")
	install := func(version string, l *tlstest.Leaf) {
		t.Helper()
		d := filepath.Join(vol, "..v"+version)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		l.InstallAs(t, filepath.Join(d, "tls.crt"), filepath.Join(d, "tls.key"))
		tmp := filepath.Join(vol, "..data_tmp")
		if err := os.Symlink("..v"+version, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(vol, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	first := ca.Server(t, dir, "first")
	install("1", first)
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(vol, f)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := tlsconf.New(tlsconf.Files{CertFile: filepath.Join(vol, "tls.crt"), KeyFile: filepath.Join(vol, "tls.key"), Key: "test.tls"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := echoServer(t, r.ServerConfig())
	client := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
	waitForCert(t, addr, client, first)
	second := ca.Server(t, dir, "second")
	install("2", second)
	waitForCert(t, addr, client, second)
}

// TestRotationKeepingModTime: a renewed certificate of the same size put
// in place by a tool that keeps modification times (cp -p, rsync -a, tar
// x) is still a change. Size and mtime alone missed it: the old
// certificate was served until its expiry.
func TestRotationKeepingModTime(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "mtime")
	first := ca.Server(t, dir, "first")
	second := ca.Server(t, dir, "second")
	// The same size: PEM files may end in blank lines.
	n := max(len(first.CertPEM), len(second.CertPEM))
	for _, l := range []*tlstest.Leaf{first, second} {
		l.CertPEM = append(l.CertPEM, bytes.Repeat([]byte("\n"), n-len(l.CertPEM))...)
	}
	if len(first.KeyPEM) != len(second.KeyPEM) {
		t.Fatalf("key files of %d and %d bytes", len(first.KeyPEM), len(second.KeyPEM))
	}
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	first.InstallAs(t, certFile, keyFile)
	stamp := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	r, err := tlsconf.New(tlsconf.Files{CertFile: certFile, KeyFile: keyFile, Key: "test.tls"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := echoServer(t, r.ServerConfig())
	client := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
	waitForCert(t, addr, client, first)

	second.InstallAs(t, certFile, keyFile)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	waitForCert(t, addr, client, second)
}
