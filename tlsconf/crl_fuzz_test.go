package tlsconf

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/tlsconf/tlstest"
)

// FuzzParseCRLs feeds parseCRLs arbitrary file contents (seeded with a valid
// PEM list of a CA, its DER form, and a list of another CA): it never
// panics, and a file it accepts holds only lists the CA signed.
func FuzzParseCRLs(f *testing.F) {
	dir := f.TempDir()
	fleet, oth := tlstest.NewCA(f, dir, "fleet"), tlstest.NewCA(f, dir, "other")
	ca, key, other, otherKey := fleet.Cert, fleet.Key, oth.Cert, oth.Key
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
