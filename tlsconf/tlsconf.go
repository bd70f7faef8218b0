// Package tlsconf builds the server TLS configurations of fleetgate's
// listeners (MQTT over TLS, MQTT over secure WebSocket, the legacy HTTPS
// endpoint): TLS 1.2 or later with AEAD cipher suites only, and a
// certificate, key, optional client CA and optional revocation lists that
// are read again when their files change, so a certificate rotation or a
// revocation needs no restart.
//
// The files are checked at most once per CheckInterval, during a TLS
// handshake (os.Stat follows symbolic links, so a Kubernetes Secret's
// "..data" link swap is seen). A change that does not load (a half-written
// file, a key that does not match the certificate) keeps the last good
// certificate and is logged; the next change is tried again. Connections
// already established keep the certificate they were opened with.
package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Files names the PEM files of one listener. CertFile and KeyFile are
// required; ClientCAFile, when set, turns on mutual TLS (a client without a
// certificate signed by one of its CAs is refused in the handshake).
type Files struct {
	CertFile     string
	KeyFile      string
	ClientCAFile string
	// CRLFile, when set, holds certificate revocation lists of the client
	// CAs (PEM "X509 CRL" blocks, or one DER CRL): a client certificate
	// one lists is refused in the handshake (ErrRevoked). It needs
	// ClientCAFile, is reloaded with the other files, and each CRL must be
	// signed by a CA of ClientCAFile.
	CRLFile string
	// Key is the configuration key prefix that names these files in
	// errors and logs, e.g. "mqtt.tls".
	Key string
}

// CheckInterval is how often, at most, the files are checked for a change.
const CheckInterval = time.Second

// cipherSuites are the TLS 1.2 suites offered: ECDHE key exchange with an
// AEAD cipher only. Go's default list also has CBC suites with SHA-1 MACs
// (TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA and others), which are refused here.
// TLS 1.3 suites are all AEAD and not configurable.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Base returns a server configuration with fleetgate's protocol floor and
// cipher suites and nothing else. Callers add certificates.
func Base() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: cipherSuites}
}

// Static returns a server configuration serving one fixed certificate (the
// legacy endpoint's generated self-signed one).
func Static(cert tls.Certificate) *tls.Config {
	c := Base()
	c.Certificates = []tls.Certificate{cert}
	return c
}

// Reloader serves the current certificate and client CA of a Files set. It
// is safe for concurrent use.
type Reloader struct {
	files Files
	log   *zap.Logger
	now   func() time.Time

	mu        sync.Mutex
	checked   time.Time // last time the files were stat'ed
	signature string    // stat of the files last loaded or tried
	current   *tls.Config
	revoked   revocations // of current; nil without crl_file
	leafSum   string
	reloads   int
}

// CheckCRL reports a crl_file without a client_ca_file, naming the keys:
// the lists apply to client certificates only. New checks it; a
// configuration's validation can ask before anything is loaded.
func (f Files) CheckCRL() error {
	if f.CRLFile != "" && f.ClientCAFile == "" {
		return fmt.Errorf("%s.crl_file is set without %s.client_ca_file: revocation lists apply to client certificates; set both, or neither", f.Key, f.Key)
	}
	return nil
}

// New loads f (an error names f.Key and the file at fault) and returns a
// reloader serving it. log may be nil.
func New(f Files, log *zap.Logger) (*Reloader, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, fmt.Errorf("%s.cert_file and %s.key_file are both required", f.Key, f.Key)
	}
	if err := f.CheckCRL(); err != nil {
		return nil, err
	}
	r := &Reloader{files: f, log: log, now: time.Now}
	sig, err := r.stat()
	if err != nil {
		return nil, err
	}
	cfg, rv, sum, err := r.load()
	if err != nil {
		return nil, err
	}
	r.signature, r.current, r.revoked, r.leafSum, r.checked = sig, cfg, rv, sum, r.now()
	return r, nil
}

// ServerConfig returns the configuration to give a TLS listener: every
// handshake gets the reloader's current certificate and client CA.
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	c := Base()
	c.NextProtos = nextProtos
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cfg := r.config()
		if len(nextProtos) > 0 {
			cfg = cfg.Clone()
			cfg.NextProtos = nextProtos
		}
		return cfg, nil
	}
	return c
}

// Fingerprint returns the SHA-256 fingerprint of the current leaf
// certificate, colon-separated upper-case hex as `openssl x509
// -fingerprint -sha256` prints it.
func (r *Reloader) Fingerprint() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leafSum
}

// Reloads returns how many times a changed set of files was loaded.
func (r *Reloader) Reloads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloads
}

// Check reads the files again when CheckInterval has passed and they
// changed, as a handshake does; a caller that acts on a change (Revoked)
// calls it on a timer, so that a change is seen without a handshake, and
// compares Reloads before and after.
func (r *Reloader) Check() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
}

// Revoked says whether a revocation list in force revokes a certificate of
// an established connection's verified chains (an error wrapping
// ErrRevoked), or nil. Without crl_file it is always nil.
func (r *Reloader) Revoked(cs tls.ConnectionState) error {
	r.mu.Lock()
	rv := r.revoked
	r.mu.Unlock()
	return rv.verify(cs)
}

// config returns the current configuration, first reloading the files when
// CheckInterval has passed and they changed.
func (r *Reloader) config() *tls.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	return r.current
}

// refresh reloads the files when CheckInterval has passed and they
// changed. Under r.mu.
func (r *Reloader) refresh() {
	now := r.now()
	if now.Sub(r.checked) < CheckInterval {
		return
	}
	r.checked = now
	sig, err := r.stat()
	if err != nil {
		if sig != r.signature {
			r.signature = sig
			r.log.Error("tls files unreadable; keeping the last good certificate", zap.String("key", r.files.Key), zap.Error(err))
		}
		return
	}
	if sig == r.signature {
		return
	}
	r.signature = sig // tried once per change, good or bad
	cfg, rv, sum, err := r.load()
	if err != nil {
		r.log.Error("tls files changed but do not load; keeping the last good certificate", zap.String("key", r.files.Key), zap.Error(err))
		return
	}
	r.current, r.revoked, r.leafSum = cfg, rv, sum
	r.reloads++
	r.log.Info("tls certificate reloaded", zap.String("key", r.files.Key), zap.String("cert_sha256", sum))
}

// stat returns a signature of the files' sizes and modification times
// (and, on Linux, inodes and status change times: see fileIdentity).
// On error the signature names the error, so one failure is logged once.
func (r *Reloader) stat() (string, error) {
	var b strings.Builder
	for _, f := range []struct{ key, name string }{
		{"cert_file", r.files.CertFile}, {"key_file", r.files.KeyFile}, {"client_ca_file", r.files.ClientCAFile},
		{"crl_file", r.files.CRLFile},
	} {
		if f.name == "" {
			continue
		}
		fi, err := os.Stat(f.name)
		if err != nil {
			return "error:" + err.Error(), fmt.Errorf("%s.%s: %w", r.files.Key, f.key, err)
		}
		fmt.Fprintf(&b, "%s:%d:%d%s;", f.name, fi.Size(), fi.ModTime().UnixNano(), fileIdentity(fi))
	}
	return b.String(), nil
}

// load reads the files into a per-handshake configuration and the
// revocation lists it checks.
func (r *Reloader) load() (*tls.Config, revocations, string, error) {
	key := r.files.Key
	cert, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%s.cert_file %s / %s.key_file %s: %w", key, r.files.CertFile, key, r.files.KeyFile, err)
	}
	c := Base()
	c.Certificates = []tls.Certificate{cert}
	var cas []*x509.Certificate
	if r.files.ClientCAFile != "" {
		pem, err := os.ReadFile(r.files.ClientCAFile)
		if err != nil {
			return nil, nil, "", fmt.Errorf("%s.client_ca_file: %w", key, err)
		}
		if cas = parseCerts(pem); len(cas) == 0 {
			return nil, nil, "", fmt.Errorf("%s.client_ca_file: %s holds no PEM certificate", key, r.files.ClientCAFile)
		}
		pool := x509.NewCertPool()
		for _, ca := range cas {
			pool.AddCert(ca)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	var rv revocations
	if r.files.CRLFile != "" { // New made sure ClientCAFile is set
		var stale []string
		if rv, stale, err = loadCRLs(r.files.CRLFile, cas, r.now()); err != nil {
			return nil, nil, "", fmt.Errorf("%s.crl_file: %w", key, err)
		}
		for _, s := range stale {
			r.log.Warn("tls: a revocation list is past its next update; it still applies, publish a fresh one",
				zap.String("key", key+".crl_file"), zap.String("crl", s))
		}
		c.VerifyConnection = rv.verify
	}
	return c, rv, Fingerprint(cert.Certificate[0]), nil
}

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as
// colon-separated upper-case hex, the form `openssl x509 -fingerprint
// -sha256` prints.
func Fingerprint(der []byte) string {
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
