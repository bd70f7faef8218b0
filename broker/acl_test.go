package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

func (c *rawClient) subscribe(id uint16, filters ...string) []byte {
	c.t.Helper()
	return c.subscribeAt(id, 1, filters...)
}

// subscribeAt subscribes to filters at qos and returns the SUBACK's reason
// codes, skipping retained messages that arrive first.
func (c *rawClient) subscribeAt(id uint16, qos byte, filters ...string) []byte {
	c.t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: id}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: qos})
	}
	c.write(pk)
	for {
		ack := c.read(3 * time.Second)
		switch ack.FixedHeader.Type {
		case packets.Suback:
			return ack.ReasonCodes
		case packets.Publish: // a retained message: not what we wait for
			continue
		}
		c.t.Fatalf("SUBSCRIBE %v: got packet type %d, want SUBACK", filters, ack.FixedHeader.Type)
	}
}

// securedBroker starts a broker with authentication on, the users of
// writeUsersFile and enforce_device_identity.
func securedBroker(t *testing.T, p Pipeline, mutate func(*Config), opts ...Option) *Broker {
	t.Helper()
	users := writeUsersFile(t)
	return startBroker(t, p, func(c *Config) {
		noBackoff(c)
		c.Auth.AllowAnonymous, c.Auth.UsersFile, c.Auth.EnforceDeviceIdentity = false, users, true
		if mutate != nil {
			mutate(c)
		}
	}, opts...)
}

func login(t *testing.T, b *Broker, version byte, user, pass string) *rawClient {
	t.Helper()
	c, code := connectRaw(t, b.Addr("tcp"), connectOpts{version: version, clientID: user, user: user, pass: pass})
	if code != 0 {
		t.Fatalf("%s: CONNACK %#x", user, code)
	}
	return c
}

// TestDefaultPolicySubscribe: with authentication on and no policy file,
// the built-in default lets a device subscribe only to its own commands and
// alerts: SUBACK 0x80 (3.1.1) or 0x87 (5) for everything else.
func TestDefaultPolicySubscribe(t *testing.T) {
	obs := &countingObserver{}
	b := securedBroker(t, newFakePipeline(), nil, WithObserver(obs))
	for _, tc := range []struct {
		version      byte
		user, pass   string
		deniedCode   byte
		own, another string
	}{
		{4, "D1", "s3cret", 0x80, "D1", "D2"},
		{5, "D2", "other", 0x87, "D2", "D1"},
	} {
		c := login(t, b, tc.version, tc.user, tc.pass)
		for i, f := range []string{"#", "+/+", "$SYS/#", "alerts/#", "alerts/+", "report", "cmd/#", "cmd/" + tc.another + "/#",
			"alerts/" + tc.another, "$share/g/#", "+/" + tc.own} {
			if codes := c.subscribe(uint16(i+1), f); len(codes) != 1 || codes[0] != tc.deniedCode {
				t.Errorf("v%d %s subscribe %q: SUBACK %v, want [%#x]", tc.version, tc.user, f, codes, tc.deniedCode)
			}
		}
		codes := c.subscribe(100, "cmd/"+tc.own+"/#", "alerts/"+tc.own, "#")
		if len(codes) != 3 || codes[0] != 1 || codes[1] != 1 || codes[2] != tc.deniedCode {
			t.Errorf("v%d own topics and #: SUBACK %v, want [1 1 %#x]", tc.version, codes, tc.deniedCode)
		}
		// The allowed subscriptions deliver.
		if err := b.Publish("alerts/"+tc.own, []byte(`{"a":1}`), 1); err != nil {
			t.Fatal(err)
		}
		if pk := c.read(2 * time.Second); pk.FixedHeader.Type != packets.Publish || pk.TopicName != "alerts/"+tc.own {
			t.Errorf("v%d: got packet type %d topic %q, want its alert", tc.version, pk.FixedHeader.Type, pk.TopicName)
		}
	}
	if u := obs.unlisted(); len(u) > 0 {
		t.Errorf("refusals not in Refusals() (the metrics would not start them at zero): %v", u)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if n := obs.access["subscribe/not_authorized"]; n != 24 {
		t.Errorf("subscribe refusals counted %d, want 24", n)
	}
}

// TestDefaultPolicyPublish: a denied PUBLISH is not stored (nor fanned out,
// nor retained); MQTT 5 gets PUBACK 0x87; MQTT 3.1.1 gets a plain PUBACK
// and keeps its connection.
func TestDefaultPolicyPublish(t *testing.T) {
	obs := &countingObserver{}
	p := newFakePipeline()
	b := securedBroker(t, p, nil, WithObserver(obs))
	v4 := login(t, b, 4, "D1", "s3cret")
	v5 := login(t, b, 5, "D2", "other")

	v5.publish(1, 1, "alerts/D1", []byte(`{"fake":1}`))
	if pk := v5.read(2 * time.Second); pk.FixedHeader.Type != packets.Puback || pk.PacketID != 1 || pk.ReasonCode != packets.ErrNotAuthorized.Code {
		t.Fatalf("v5 denied publish: type %d id %d reason %#x, want PUBACK 1 0x87", pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
	}
	v5.publishRetained(2, 2, "fleet/D1/x", []byte(`{}`))
	if pk := v5.read(2 * time.Second); pk.FixedHeader.Type != packets.Pubrec || pk.ReasonCode != packets.ErrNotAuthorized.Code {
		t.Fatalf("v5 denied QoS 2 publish: type %d reason %#x, want PUBREC 0x87", pk.FixedHeader.Type, pk.ReasonCode)
	}

	v4.publish(1, 1, "alerts/D2", []byte(`{"fake":1}`))
	if pk := v4.read(2 * time.Second); pk.FixedHeader.Type != packets.Puback || pk.PacketID != 1 {
		t.Fatalf("v4 denied publish: type %d id %d, want PUBACK 1", pk.FixedHeader.Type, pk.PacketID)
	}
	v4.publishRetained(2, 1, "alerts/D9", []byte(`{}`))
	expectAck(t, v4, 2)
	v4.publish(3, 2, "cmd/D2/reboot", []byte(`{}`))
	if pk := v4.read(2 * time.Second); pk.FixedHeader.Type != packets.Pubrec || pk.PacketID != 3 {
		t.Fatalf("v4 denied QoS 2 publish: type %d id %d, want PUBREC 3", pk.FixedHeader.Type, pk.PacketID)
	}
	v4.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: 3})
	if pk := v4.read(2 * time.Second); pk.FixedHeader.Type != packets.Pubcomp || pk.PacketID != 3 {
		t.Fatalf("v4 denied QoS 2 publish: type %d id %d, want PUBCOMP 3", pk.FixedHeader.Type, pk.PacketID)
	}
	v4.publish(0, 0, "alerts/D2", []byte(`{}`))

	// The connection is kept, and what the policy allows goes through.
	v4.publish(4, 1, "report", []byte(`{"ok":1}`))
	p.waitFor(t, 1)
	p.complete(0, nil)
	expectAck(t, v4, 4)
	time.Sleep(100 * time.Millisecond)
	if n := p.count(); n != 1 {
		t.Fatalf("pipeline got %d messages; only the allowed one may reach it", n)
	}
	m := p.got[0]
	if m.Topic != "report" || m.Principal != "D1" || m.ClientID != "D1" {
		t.Fatalf("message %+v, want topic report from principal D1", m)
	}
	if msgs := b.server.Topics.Messages("#"); len(msgs) != 0 {
		t.Fatalf("%d retained messages stored from denied publishes (%s ...)", len(msgs), msgs[0].TopicName)
	}
	if u := obs.unlisted(); len(u) > 0 {
		t.Errorf("refusals not in Refusals() (the metrics would not start them at zero): %v", u)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if n := obs.access["publish/not_authorized"]; n != 6 {
		t.Errorf("publish refusals counted %d, want 6", n)
	}
}

func (c *rawClient) publishRetained(id uint16, qos byte, topic string, payload []byte) {
	c.t.Helper()
	c.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Retain: true},
		TopicName:   topic, PacketID: id, Payload: payload,
	})
}

// TestPolicyReloadStopsDeliveries: deliveries are checked against the
// policy in force, so a reload that takes a topic away stops it reaching
// subscriptions made before; a broken file keeps the last good policy.
func TestPolicyReloadStopsDeliveries(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl.yaml")
	write := func(body string) {
		if err := os.WriteFile(acl, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`rules: [{principal: "*", action: subscribe, topics: ["alerts/#"], effect: allow}]`)
	b := securedBroker(t, newFakePipeline(), func(c *Config) { c.ACLFile = acl })
	c := login(t, b, 4, "D1", "s3cret")
	if codes := c.subscribe(1, "alerts/#"); codes[0] != 1 {
		t.Fatalf("SUBACK %v", codes)
	}
	b.Publish("alerts/D7", []byte(`1`), 1)
	if pk := c.read(2 * time.Second); pk.TopicName != "alerts/D7" {
		t.Fatalf("before the reload: got %q", pk.TopicName)
	}
	write(`rules: [{principal: "*", action: subscribe, topics: ["alerts/${clientid}"], effect: allow}]`)
	if err := b.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	b.Publish("alerts/D7", []byte(`2`), 1)
	b.Publish("alerts/D1", []byte(`3`), 1)
	if pk := c.read(2 * time.Second); pk.TopicName != "alerts/D1" {
		t.Fatalf("after the reload: got %q first, want only alerts/D1", pk.TopicName)
	}
	write(`rules: [{principal: "*", action: subscribe, topics: ["alerts/#/x"], effect: allow}]`)
	if err := b.ReloadPolicy(); err == nil {
		t.Fatal("a broken policy file was accepted")
	}
	b.Publish("alerts/D1", []byte(`4`), 1)
	if pk := c.read(2 * time.Second); pk.TopicName != "alerts/D1" {
		t.Fatalf("after a rejected reload the last good policy must hold: got %q", pk.TopicName)
	}
}

// TestUsersReload: a changed users file takes effect for new connections;
// a broken one keeps the last good users.
func TestUsersReload(t *testing.T) {
	b := securedBroker(t, newFakePipeline(), func(c *Config) { c.Auth.EnforceDeviceIdentity = false })
	path := b.cfg.Auth.UsersFile
	if code := connectCode(t, b.Addr("tcp"), "x", "D4", "new"); code == 0 {
		t.Fatal("D4 accepted before it was added")
	}
	os.WriteFile(path, []byte("D4 new\n"), 0o600)
	if err := b.ReloadUsers(); err != nil {
		t.Fatal(err)
	}
	if code := connectCode(t, b.Addr("tcp"), "x", "D4", "new"); code != 0 {
		t.Fatalf("D4 after the reload: CONNACK %#x", code)
	}
	if code := connectCode(t, b.Addr("tcp"), "y", "D1", "s3cret"); code == 0 {
		t.Fatal("D1, removed by the reload, still accepted")
	}
	os.WriteFile(path, []byte("D5:$apr1$x$y\n"), 0o600)
	if err := b.ReloadUsers(); err == nil {
		t.Fatal("a broken users file was accepted")
	}
	if code := connectCode(t, b.Addr("tcp"), "z", "D4", "new"); code != 0 {
		t.Fatalf("after a rejected reload, D4: CONNACK %#x", code)
	}
}

// testPKI is a CA and the files of a server certificate it signed.
type testPKI struct {
	ca                        *x509.Certificate
	caKey                     *ecdsa.PrivateKey
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test fleet CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{ca: ca, caKey: key, caFile: filepath.Join(dir, "ca.pem"), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	srv := p.issue(t, "localhost", []string{"localhost"}, x509.ExtKeyUsageServerAuth)
	p.certFile, p.keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	os.WriteFile(p.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate[0]}), 0o600)
	kb, _ := x509.MarshalECPrivateKey(srv.PrivateKey.(*ecdsa.PrivateKey))
	os.WriteFile(p.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return p
}

func (p *testPKI) issue(t *testing.T, cn string, dns []string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestCertificateIdentity: with mutual TLS the certificate is the identity;
// a username cannot override it (the attack: a device holding devA's
// certificate connects as devB, sending devB's username and password).
func TestCertificateIdentity(t *testing.T) {
	pki := newTestPKI(t)
	users := filepath.Join(t.TempDir(), "users")
	os.WriteFile(users, []byte("devB devB-password\n"), 0o600)
	p := newFakePipeline()
	start := func(which string) *Broker {
		return startBroker(t, p, func(c *Config) {
			noBackoff(c)
			c.TLSListen = "127.0.0.1:0"
			c.TLS = TLSConfig{CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile}
			c.Auth.AllowAnonymous, c.Auth.UsersFile, c.Auth.EnforceDeviceIdentity, c.Auth.CertIdentity = false, users, true, which
		})
	}
	devA := pki.issue(t, "devA", []string{"devA.fleet.example"}, x509.ExtKeyUsageClientAuth)
	dialAs := func(b *Broker, cert tls.Certificate) func() (net.Conn, error) {
		return func() (net.Conn, error) {
			return tls.Dial("tcp", b.Addr("tls"), &tls.Config{RootCAs: pki.pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}})
		}
	}
	b := start("cn")
	cases := []struct {
		name, client, user, pass string
		accepted                 bool
	}{
		{"devA as devB with devB's password", "devB", "devB", "devB-password", false},
		{"devA as devB with an unknown username", "devB", "devX", "x", false},
		{"devA as devB without username", "devB", "", "", false},
		{"devA as itself, with devB's username", "devA", "devB", "devB-password", true},
		{"devA as itself", "devA", "", "", true},
	}
	for _, c := range cases {
		_, code := connectRaw(t, "", connectOpts{dial: dialAs(b, devA), clientID: c.client, user: c.user, pass: c.pass})
		if (code == 0) != c.accepted {
			t.Errorf("%s: CONNACK %#x, accepted want %v", c.name, code, c.accepted)
		}
	}
	// The principal handed to the rules is the certificate's, not the username.
	c, _ := connectRaw(t, "", connectOpts{dial: dialAs(b, devA), clientID: "devA", user: "devB", pass: "devB-password"})
	c.publish(1, 1, "report", []byte(`{}`))
	p.waitFor(t, 1)
	if got := p.got[0].Principal; got != "devA" {
		t.Fatalf("principal %q, want devA (the certificate's)", got)
	}
	p.complete(0, nil)

	// cert_identity: san_dns makes the DNS name the principal.
	b2 := start("san_dns")
	if _, code := connectRaw(t, "", connectOpts{dial: dialAs(b2, devA), clientID: "devA"}); code == 0 {
		t.Error("san_dns: client id devA accepted for principal devA.fleet.example")
	}
	if _, code := connectRaw(t, "", connectOpts{dial: dialAs(b2, devA), clientID: "devA.fleet.example"}); code != 0 {
		t.Errorf("san_dns: CONNACK %#x for the DNS name as client id", code)
	}
	// A certificate without the chosen identity is refused.
	noSAN := pki.issue(t, "devC", nil, x509.ExtKeyUsageClientAuth)
	if _, code := connectRaw(t, "", connectOpts{dial: dialAs(b2, noSAN), clientID: "devC"}); code == 0 {
		t.Error("san_dns: a certificate without DNS names accepted")
	}
}

// TestPersistentSessionIdentity: a persistent session keeps its identity
// while offline, so the policy lets deliveries queue for it; reconnecting
// replaces the identity rather than adding one (bounded by the sessions).
func TestPersistentSessionIdentity(t *testing.T) {
	b := securedBroker(t, newFakePipeline(), nil)
	dial := func() (*rawClient, byte) {
		return connectRaw(t, b.Addr("tcp"), connectOpts{clientID: "D1", user: "D1", pass: "s3cret", noClean: true})
	}
	c, code := dial()
	if code != 0 {
		t.Fatalf("CONNACK %#x", code)
	}
	if codes := c.subscribe(1, "cmd/D1/#"); codes[0] != 1 {
		t.Fatalf("SUBACK %v", codes)
	}
	c.conn.Close()
	waitFor(t, "D1 offline", func() bool { cl, ok := b.server.Clients.Get("D1"); return ok && cl.Closed() })
	b.Publish("cmd/D1/reboot", []byte(`{}`), 1)
	for i := range 5 {
		c, code = dial()
		if code != 0 {
			t.Fatalf("reconnect %d: CONNACK %#x", i, code)
		}
		if i == 0 {
			if pk := c.read(3 * time.Second); pk.FixedHeader.Type != packets.Publish || pk.TopicName != "cmd/D1/reboot" {
				t.Fatalf("the command queued while offline: got type %d topic %q", pk.FixedHeader.Type, pk.TopicName)
			}
		}
		c.conn.Close()
	}
	n := 0
	b.auth.idents.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d identities remembered for one client id", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
