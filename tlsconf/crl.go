package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrRevoked is wrapped by the handshake error of a client whose
// certificate (or one of the CAs between it and the client CA) a CRL of
// crl_file lists; test with errors.Is.
var ErrRevoked = errors.New("client certificate revoked")

// revocations are the serial numbers the CRLs of a crl_file revoke, by the
// raw subject of the CA that issued them.
type revocations map[string]map[string]bool

// loadCRLs reads the PEM ("X509 CRL" blocks) or DER CRLs of name. Each must
// be signed by one of cas. A CRL past its next update still applies (its
// serials stay revoked): stale says which, to be logged.
func loadCRLs(name string, cas []*x509.Certificate, now time.Time) (revocations, []string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, nil, err
	}
	rv, stale, err := parseCRLs(data, cas, now)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return rv, stale, nil
}

// parseCRLs is loadCRLs of the file's contents.
func parseCRLs(data []byte, cas []*x509.Certificate, now time.Time) (rv revocations, stale []string, err error) {
	var ders [][]byte
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "X509 CRL" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		ders = [][]byte{data} // DER, as `openssl ca -gencrl -outform DER` writes
	}
	rv = revocations{}
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, nil, fmt.Errorf("holds no CRL in PEM (X509 CRL) or DER form (CRL %d: %w)", i+1, err)
		}
		if err := checkIssuer(crl, cas); err != nil {
			return nil, nil, fmt.Errorf("CRL %d: %w", i+1, err)
		}
		if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
			stale = append(stale, fmt.Sprintf("CRL %d of %q: next update was %s", i+1, crl.Issuer, crl.NextUpdate.UTC().Format(time.RFC3339)))
		}
		serials := rv[string(crl.RawIssuer)]
		if serials == nil {
			serials = map[string]bool{}
			rv[string(crl.RawIssuer)] = serials
		}
		for _, e := range crl.RevokedCertificateEntries {
			serials[e.SerialNumber.String()] = true
		}
	}
	return rv, stale, nil
}

// checkIssuer checks that one of cas signed crl.
func checkIssuer(crl *x509.RevocationList, cas []*x509.Certificate) error {
	named := false
	for _, ca := range cas {
		if string(ca.RawSubject) != string(crl.RawIssuer) {
			continue
		}
		named = true
		if crl.CheckSignatureFrom(ca) == nil {
			return nil
		}
	}
	if named {
		return fmt.Errorf("issued by %q but not signed by its key in client_ca_file", crl.Issuer)
	}
	return fmt.Errorf("issued by %q, which is not a CA of client_ca_file", crl.Issuer)
}

// verify refuses a connection whose verified chain holds a certificate its
// issuer's CRL revokes (tls.Config.VerifyConnection).
func (rv revocations) verify(cs tls.ConnectionState) error {
	for _, chain := range cs.VerifiedChains {
		for i := 0; i+1 < len(chain); i++ {
			c, issuer := chain[i], chain[i+1]
			if rv[string(issuer.RawSubject)][c.SerialNumber.String()] {
				return fmt.Errorf("%w: %q, serial %s, is listed by the CRL of %q", ErrRevoked, c.Subject, c.SerialNumber, issuer.Subject)
			}
		}
	}
	return nil
}

// parseCerts returns the certificates of PEM data, skipping the blocks
// that are none, as x509.CertPool.AppendCertsFromPEM does: the client CA
// pool and the CAs that revocation lists are checked against are the same.
func parseCerts(data []byte) []*x509.Certificate {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return certs
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) != 0 {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			certs = append(certs, c)
		}
	}
}
