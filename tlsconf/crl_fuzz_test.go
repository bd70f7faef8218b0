package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// FuzzParseCRLs feeds parseCRLs arbitrary file contents (seeded with a valid
// PEM list of a CA, its DER form, and a list of another CA): it never
// panics, and a file it accepts holds only lists the CA signed.
func FuzzParseCRLs(f *testing.F) {
	ca, key := fuzzCA(f, "fleet")
	other, otherKey := fuzzCA(f, "other")
	crl := func(issuer *x509.Certificate, k *ecdsa.PrivateKey) []byte {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(7), RevocationTime: time.Now()}}}, issuer, k)
		if err != nil {
			f.Fatal(err)
		}
		return der
	}
	good := crl(ca, key)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: good}))
	f.Add(good)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl(other, otherKey)}))
	f.Add([]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rv, _, err := parseCRLs(data, []*x509.Certificate{ca}, time.Now())
		if err != nil {
			return
		}
		for issuer := range rv {
			if issuer != string(ca.RawSubject) {
				t.Fatalf("accepted a list issued by %q", issuer)
			}
		}
	})
}

func fuzzCA(f *testing.F, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		f.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		f.Fatal(err)
	}
	return c, key
}
