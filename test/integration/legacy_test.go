package integration

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/gateway"
)

// httpsClient trusts exactly the gateway's generated self-signed
// certificate, pinned by the SHA-256 fingerprint the gateway logs at start
// (what a terminal or an operator with curl --pinnedpubkey would do).
func httpsClient(g *gateway.Gateway) *http.Client {
	return pinnedClient(g.TelematicsCertFingerprint())
}

// pinnedClient trusts only the certificate with this SHA-256 fingerprint.
func pinnedClient(want string) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{
			// The chain cannot verify (self-signed); the pin below replaces it.
			InsecureSkipVerify: true,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return errors.New("no certificate")
				}
				sum := sha256.Sum256(raw[0])
				got := strings.ToUpper(hex.EncodeToString(sum[:]))
				if got != strings.ReplaceAll(want, ":", "") {
					return fmt.Errorf("certificate fingerprint %s, want %s", got, want)
				}
				return nil
			},
		},
	}}
}

func post(t *testing.T, c *http.Client, url, contentType string, body []byte) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := c.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("POST %s: %d with a non-JSON body %q", url, resp.StatusCode, b)
	}
	return resp.StatusCode, m, resp.Header
}

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../legacy/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLegacyRequestsReachTheirTopics(t *testing.T) {
	g := startGateway(t, nil)
	base := "https://" + g.TelematicsAddr()
	c := httpsClient(g)
	for _, r := range []struct {
		path, ctype, file string
		accepted          float64
	}{
		{"/log", "application/json", "sts-log.json", 4},
		{"/boot", "application/json", "sts-boot.json", 1},
		{"/log", "application/x-www-form-urlencoded", "csa-log.form", 2},
		{"/boot", "application/x-www-form-urlencoded; charset=utf-8", "csa-boot.form", 1},
	} {
		status, body, _ := post(t, c, base+r.path, r.ctype, sample(t, r.file))
		if status != 200 || body["accepted"] != r.accepted {
			t.Fatalf("%s %s: %d %v; want 200 accepted %v", r.path, r.file, status, body, r.accepted)
		}
	}
	want := map[string]map[string]int{ // topic -> device -> records
		"message-gps":       {"STS-00000123": 1, "CSA0000042": 1},
		"message-kinematic": {"STS-00000123": 1},
		"message-adas":      {"STS-00000123": 1},
		"message-log":       {"STS-00000123": 1, "CSA0000042": 1},
		"message-boot":      {"STS-00000123": 1, "CSA0000042": 1},
	}
	for topic, devs := range want {
		n := 0
		for _, c := range devs {
			n += c
		}
		got := map[string]int{}
		for _, rec := range consume(t, g.KafkaBrokers(), topic, n) {
			m := rec.json(t)
			if rec.Key != m["device_no"] {
				t.Errorf("%s: key %q for device %v", topic, rec.Key, m["device_no"])
			}
			if _, ok := m["timestamp"].(string); !ok || m["source"] == nil {
				t.Errorf("%s: record without the rule's timestamp or source: %s", topic, rec.Value)
			}
			got[rec.Key]++
		}
		for dev, c := range devs {
			if got[dev] != c {
				t.Errorf("%s: %d records of %s, want %d", topic, got[dev], dev, c)
			}
		}
	}
}

func TestLegacyCertificateIsPinned(t *testing.T) {
	g := startGateway(t, nil)
	other := strings.Repeat("AB:", 31) + "AB"
	if _, err := pinnedClient(other).Post("https://"+g.TelematicsAddr()+"/log", "application/json", strings.NewReader("{}")); err == nil {
		t.Fatal("a client pinned to another certificate got through: the pin is not checked")
	}
}

func TestLegacyBadRequestProducesNothing(t *testing.T) {
	g := startGateway(t, nil)
	c := httpsClient(g)
	status, body, _ := post(t, c, "https://"+g.TelematicsAddr()+"/log", "application/json", sample(t, "sts-log-bad-lat.json"))
	if status != 400 || body["error"] == nil {
		t.Fatalf("got %d %v; want 400 with an error", status, body)
	}
	if n := len(consume(t, g.KafkaBrokers(), "message-gps", 0)); n != 0 {
		t.Fatalf("a refused request produced %d records", n)
	}
}

// TestLegacy503WhileKafkaRefuses: no 200 while Kafka cannot store; a retry
// after Kafka recovers is accepted.
func TestLegacy503WhileKafkaRefuses(t *testing.T) {
	g := startGateway(t, func(c *config.Config) { c.Kafka.DeliveryTimeout = 2 * time.Second })
	recover := refuseProduce(g.Embedded().Cluster())
	c := httpsClient(g)
	url := "https://" + g.TelematicsAddr() + "/log"
	status, body, hdr := post(t, c, url, "application/x-www-form-urlencoded", sample(t, "csa-log.form"))
	if status != 503 || hdr.Get("Retry-After") == "" || body["error"] == nil {
		t.Fatalf("got %d %v Retry-After %q; want 503 with Retry-After", status, body, hdr.Get("Retry-After"))
	}
	recover()
	time.Sleep(3 * time.Second) // sarama's retries of the refused batch run out
	status, body, _ = post(t, c, url, "application/x-www-form-urlencoded", sample(t, "csa-log.form"))
	if status != 200 || body["accepted"] != 2.0 {
		t.Fatalf("after recovery: %d %v", status, body)
	}
	consume(t, g.KafkaBrokers(), "message-gps", 1)
}
