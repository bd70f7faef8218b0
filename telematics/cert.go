package telematics

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/tlsconf"
)

// selfSignedValidity is how long a generated certificate is valid. It is
// made anew at every start, so a year is only a bound for pinned clients.
const selfSignedValidity = 365 * 24 * time.Hour

// serverTLS returns the endpoint's TLS configuration (TLS 1.2+, AEAD
// suites only, HTTP/1.1) and a function returning the current
// certificate's fingerprint. With telematics.tls files, their certificate
// is reloaded when they change (tlsconf); without, a new self-signed one
// is served.
func serverTLS(cfg Config, log *zap.Logger) (tc *tls.Config, fingerprint func() string, selfSigned bool, err error) {
	if cfg.TLS.CertFile == "" {
		cert, err := newSelfSigned(time.Now())
		if err != nil {
			return nil, nil, true, fmt.Errorf("telematics: generate self-signed certificate: %w", err)
		}
		tc = tlsconf.Static(cert)
		tc.NextProtos = []string{"http/1.1"}
		sum := tlsconf.Fingerprint(cert.Certificate[0])
		return tc, func() string { return sum }, true, nil
	}
	r, err := tlsconf.New(tlsconf.Files{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, Key: "telematics.tls"}, log)
	if err != nil {
		return nil, nil, false, err
	}
	return r.ServerConfig("http/1.1"), r.Fingerprint, false, nil
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
