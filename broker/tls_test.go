package broker

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key, and
// returns their paths and a pool trusting the certificate.
func writeSelfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fleetgate-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLSListenerAcksAfterStore(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t)
	p := newFakePipeline()
	b := startBroker(t, p, func(c *Config) {
		c.TLSListen = "127.0.0.1:0"
		c.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile}
	})
	conn, err := tls.Dial("tcp", b.Addr("tls"), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS handshake with mqtt.tls_listen: %v", err)
	}
	defer conn.Close()
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: 4}
	c.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "T1", Keepalive: 30, Clean: true},
	})
	if ack := c.read(3 * time.Second); ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("CONNACK over TLS: type %d code %#x", ack.FixedHeader.Type, ack.ReasonCode)
	}
	c.publish(1, 1, "report", []byte(`{"type":"log"}`))
	p.waitFor(t, 1)
	p.complete(0, nil)
	expectAck(t, c, 1)
}

func TestTLSListenerNeedsItsFiles(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TLSListen = ":8883"
	if err := cfg.Validate(); err == nil {
		t.Fatal("mqtt.tls_listen without certificate accepted")
	}
}
