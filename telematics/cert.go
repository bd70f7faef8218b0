package telematics

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// selfSignedValidity is how long a generated certificate is valid. It is
// made anew at every start, so a year is only a bound for pinned clients.
const selfSignedValidity = 365 * 24 * time.Hour

// loadCertificate returns the configured key pair or, with none configured,
// a new self-signed one.
func loadCertificate(cfg Config) (cert tls.Certificate, selfSigned bool, err error) {
	if cfg.TLS.CertFile == "" {
		cert, err = newSelfSigned(time.Now())
		if err != nil {
			return cert, true, fmt.Errorf("telematics: generate self-signed certificate: %w", err)
		}
		return cert, true, nil
	}
	cert, err = tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		return cert, false, fmt.Errorf("telematics.tls.cert_file %s / telematics.tls.key_file %s: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
	}
	return cert, false, nil
}

// newSelfSigned makes an ECDSA P-256 certificate for localhost, 127.0.0.1,
// ::1 and the host name, valid from an hour ago (clock skew) for a year.
func newSelfSigned(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	dns := []string{"localhost"}
	if host, err := os.Hostname(); err == nil && host != "" && !strings.EqualFold(host, "localhost") {
		dns = append(dns, host)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "fleetgate telematics (self-signed)", Organization: []string{"fleetgate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// fingerprint returns the SHA-256 fingerprint of a DER certificate as
// colon-separated upper-case hex, the form `openssl x509 -fingerprint
// -sha256` prints, for pinning and for comparing with the start-up log.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	b.Grow(len(h) + len(sum) - 1)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
