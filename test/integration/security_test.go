package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/broker"
	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/router"
)

// tool runs an outside command (failing the test with a clear message when
// it is not installed) and returns its combined output and exit code.
func tool(t *testing.T, dir, name string, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is needed (Debian packages mosquitto-clients, mosquitto, apache2-utils, openssl): %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %v: still running after 30s: %s", name, args, out.String())
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), 0
}

// fleetUsers writes a users file made by the real tools: D1 and D2 with
// htpasswd -B (bcrypt), D3 with mosquitto_passwd (PBKDF2-SHA512), and with
// plain, D4 in the old plaintext form (which htpasswd then refuses to edit).
func fleetUsers(t *testing.T, dir string, plain bool) string {
	t.Helper()
	path := filepath.Join(dir, "users")
	if out, code := tool(t, dir, "htpasswd", "-cbB", path, "D1", "pw-D1"); code != 0 {
		t.Fatalf("htpasswd: %s", out)
	}
	if out, code := tool(t, dir, "htpasswd", "-bB", path, "D2", "pw-D2"); code != 0 {
		t.Fatalf("htpasswd: %s", out)
	}
	if out, code := tool(t, dir, "mosquitto_passwd", "-b", path, "D3", "pw-D3"); code != 0 {
		t.Fatalf("mosquitto_passwd: %s", out)
	}
	if plain {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("D4 pw-D4\n")
		f.Close()
	}
	b, _ := os.ReadFile(path)
	if !regexp.MustCompile(`(?m)^D1:\$2y\$.*\n^D2:\$2y\$.*\n^D3:\$7\$.*$`).Match(b) {
		t.Fatalf("users file from the tools:\n%s", b)
	}
	return path
}

// connectAs connects a paho client with a username and password; it
// returns the client, or nil and the error when refused.
func connectAs(t *testing.T, addr, clientID, user, pass string) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectRetry(false).SetWriteTimeout(10 * time.Second).SetOrderMatters(false).
		SetProtocolVersion(4) // or paho retries a refused CONNECT as MQTT 3.1
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		t.Fatalf("connect %s: no CONNACK", clientID)
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// TestDeviceAttacksRefused replays, with real clients, what a hostile
// terminal holding one device's password tried in issue 9: every attempt
// is refused, nothing it sends where it may not reaches Kafka or another
// device, and each refusal is counted.
func TestDeviceAttacksRefused(t *testing.T) {
	dir := t.TempDir()
	users := fleetUsers(t, dir, true)
	g := startAdminGateway(t, func(c *config.Config) {
		c.MQTT.Auth.AllowAnonymous, c.MQTT.Auth.UsersFile, c.MQTT.Auth.EnforceDeviceIdentity = false, users, true
		c.MQTT.Auth.Backoff.Keys = nil // refusals at once: the back-off has its own tests
		// Everything published anywhere would reach Kafka: the policy is
		// what keeps it out.
		c.Rules = append(router.DefaultRules(), router.RuleConfig{Name: "everything-else", SQL: "SELECT * FROM '+/+/#'",
			Actions: []router.ActionConfig{{Kafka: &router.KafkaActionConfig{Topic: "message-other", Key: "${clientid()}"}}}})
	})
	addr := g.MQTTAddr()
	d1, err := connectAs(t, addr, "D1", "D1", "pw-D1")
	if err != nil {
		t.Fatalf("D1 (bcrypt): %v", err)
	}

	// Subscriptions to the fleet's topics: SUBACK 0x80 each.
	for _, f := range []string{"#", "+/+", "$SYS/#", "alerts/#", "report", "cmd/D2/#", "alerts/D2"} {
		tok := d1.Subscribe(f, 1, func(paho.Client, paho.Message) { t.Errorf("D1 received on its refused subscription %s", f) })
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatalf("subscribe %s: no SUBACK", f)
		}
		if code := tok.(*paho.SubscribeToken).Result()[f]; code != 0x80 {
			t.Errorf("D1 subscribe %q: SUBACK %#x, want 0x80", f, code)
		}
	}
	own := make(chan paho.Message, 4)
	if tok := d1.Subscribe("cmd/D1/#", 1, func(_ paho.Client, m paho.Message) { own <- m }); !tok.WaitTimeout(10*time.Second) ||
		tok.(*paho.SubscribeToken).Result()["cmd/D1/#"] != 1 {
		t.Fatal("D1 may subscribe to its own commands")
	}

	// Fake alerts and commands for other devices: acknowledged (3.1.1 has
	// no refusal code), stored nowhere, delivered to nobody.
	d2, err := connectAs(t, addr, "D2", "D2", "pw-D2")
	if err != nil {
		t.Fatal(err)
	}
	d2alerts := make(chan paho.Message, 4)
	d2.Subscribe("alerts/D2", 1, func(_ paho.Client, m paho.Message) { d2alerts <- m }).WaitTimeout(10 * time.Second)
	publish(t, d1, "alerts/D2", []byte(`{"type":"adas","device_no":"D2","level":5}`))
	publish(t, d1, "cmd/D2/unlock", []byte(`{}`))
	if tok := d1.Publish("fleet/D2/gps", 1, true, []byte(`{"retained":"fake"}`)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal("a denied retained publish must still be acknowledged")
	}
	// The connection is kept: D1's own report goes through after them.
	publish(t, d1, "report", report("log", "D1", 1))
	publish(t, d1, "fleet/D1/gps", []byte(`{"lat":1}`))
	if recs := consume(t, g.KafkaBrokers(), "message-log", 1); len(recs) != 1 || recs[0].Key != "D1" {
		t.Fatalf("message-log: %+v", recs)
	}
	if recs := consume(t, g.KafkaBrokers(), "message-other", 1); len(recs) != 1 || recs[0].Key != "D1" {
		t.Fatalf("message-other holds %d records, want only D1's fleet/D1/gps: %+v", len(recs), recs)
	}
	select {
	case m := <-d2alerts:
		t.Fatalf("D2 received a fake alert on %s", m.Topic())
	case <-time.After(300 * time.Millisecond):
	}
	// mosquitto_sub, as an operator would try it with a device's password.
	out, code := tool(t, dir, "mosquitto_sub", "-h", "127.0.0.1", "-p", port(addr), "-i", "D2", "-u", "D2", "-P", "pw-D2",
		"-t", "#", "-C", "1", "-W", "5")
	if !strings.Contains(out, "All subscription requests were denied") {
		t.Errorf("mosquitto_sub -t '#' as D2: exit %d: %s; want the subscription denied", code, out)
	}
	// MQTT 5, as mosquitto_pub -V 5 speaks it: the refusal has its code.
	out, _ = tool(t, dir, "mosquitto_pub", "-V", "5", "-h", "127.0.0.1", "-p", port(addr), "-i", "D2", "-u", "D2", "-P", "pw-D2",
		"-t", "alerts/D1", "-q", "1", "-m", `{"fake":1}`)
	if !strings.Contains(out, "Not authorized") {
		t.Errorf("mosquitto_pub -V 5 to alerts/D1 as D2: %q; want the PUBACK's 'Not authorized'", out)
	}
	// Unknown user, wrong password: refused; the old plaintext form and
	// mosquitto_passwd's hash work.
	for _, c := range []struct {
		user, pass string
		ok         bool
	}{{"D9", "pw-D9", false}, {"D3", "wrong", false}, {"D3", "pw-D3", true}, {"D4", "pw-D4", true}, {"D4", "pw-D5", false}} {
		out, code := tool(t, dir, "mosquitto_pub", "-h", "127.0.0.1", "-p", port(addr), "-i", c.user, "-u", c.user, "-P", c.pass,
			"-t", "report", "-q", "1", "-m", string(report("log", c.user, 2)))
		if (code == 0) != c.ok {
			t.Errorf("mosquitto_pub as %s/%s: exit %d: %s; want accepted %v", c.user, c.pass, code, out, c.ok)
		}
		if !c.ok && !strings.Contains(out, "not authorised") {
			t.Errorf("mosquitto_pub as %s/%s: %s; want 'not authorised'", c.user, c.pass, out)
		}
	}
	// A device taking another's client id with its own password.
	if _, err := connectAs(t, addr, "D2", "D1", "pw-D1"); err == nil {
		t.Error("D1 connected as client id D2")
	}

	waitMetrics(t, g, map[string]float64{
		`fleetgate_mqtt_refusals_total{reason="unknown_user",stage="connect"}`:      1,
		`fleetgate_mqtt_refusals_total{reason="bad_password",stage="connect"}`:      2,
		`fleetgate_mqtt_refusals_total{reason="identity_mismatch",stage="connect"}`: 1,
		`fleetgate_mqtt_refusals_total{reason="not_authorized",stage="publish"}`:    4,
		`fleetgate_mqtt_refusals_total{reason="not_authorized",stage="subscribe"}`:  8,
		`fleetgate_mqtt_auth_failures_total`:                                        4,
	})
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// TestUsersFileReloads: a user added to the users file with htpasswd can
// connect once the file is saved, without a restart; a broken save keeps
// the last good file.
func TestUsersFileReloads(t *testing.T) {
	dir := t.TempDir()
	users := fleetUsers(t, dir, false)
	g := startGateway(t, func(c *config.Config) {
		c.MQTT.Auth.AllowAnonymous, c.MQTT.Auth.UsersFile = false, users
		c.MQTT.Auth.Backoff.Keys = nil
	})
	if _, err := connectAs(t, g.MQTTAddr(), "D7", "D7", "pw-D7"); err == nil {
		t.Fatal("D7 connected before it was added")
	}
	if out, code := tool(t, dir, "htpasswd", "-bB", users, "D7", "pw-D7"); code != 0 {
		t.Fatalf("htpasswd: %s", out)
	}
	waitUntil(t, "D7 accepted after the users file changed", func() bool {
		c, err := connectAs(t, g.MQTTAddr(), "D7", "D7", "pw-D7")
		if c != nil {
			c.Disconnect(0)
		}
		return err == nil
	})
	good, _ := os.ReadFile(users)
	os.WriteFile(users, append(good, "D8:{SHA}bad\n"...), 0o600)
	time.Sleep(1500 * time.Millisecond) // past the watcher's quiet period
	if _, err := connectAs(t, g.MQTTAddr(), "D1", "D1", "pw-D1"); err != nil {
		t.Fatalf("after a broken save, D1 must still connect with the last good file: %v", err)
	}
}

// pkiCommands returns the shell commands docs/security.md gives for making
// the CA, the gateway's certificate and a device certificate.
func pkiCommands(t *testing.T) string { return docCommands(t, "pki") }

// docCommands returns the ```sh block of docs/security.md between
// <!-- begin NAME commands --> and <!-- end NAME commands -->.
func docCommands(t *testing.T, name string) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- begin " + name + " commands -->\\s*```sh\\n(.*?)```\\s*<!-- end " + name + " commands -->").FindSubmatch(doc)
	if m == nil {
		t.Fatalf("docs/security.md: no ```sh block between <!-- begin %s commands --> and <!-- end %s commands -->", name, name)
	}
	return string(m[1])
}

// runDocCommands runs script with bash in dir, with env added.
func runDocCommands(t *testing.T, dir, script string, env ...string) {
	t.Helper()
	cmd := exec.Command("bash", "-euc", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the commands of docs/security.md failed (%v): %v\n%s", env, err, out)
	}
}

// TestDocsOpensslPKI runs the exact openssl commands of docs/security.md,
// serves mutual TLS with what they made, and connects with mosquitto_pub:
// the device certificate works for its own device_no, and cannot be used
// to become another device, even with that device's username and password.
func TestDocsOpensslPKI(t *testing.T) {
	dir := t.TempDir()
	script := pkiCommands(t)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (Debian package openssl)")
	}
	runDocCommands(t, dir, script, "GATEWAY_HOST=localhost", "DEVICE=STS-00000123")
	users := filepath.Join(dir, "users")
	if out, code := tool(t, dir, "htpasswd", "-cbB", users, "STS-00000999", "pw-999"); code != 0 {
		t.Fatal(out)
	}
	g := startGateway(t, func(c *config.Config) {
		c.MQTT.TLSListen = "127.0.0.1:0"
		c.MQTT.TLS.CertFile, c.MQTT.TLS.KeyFile, c.MQTT.TLS.ClientCAFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.pem")
		c.MQTT.Auth.AllowAnonymous, c.MQTT.Auth.UsersFile, c.MQTT.Auth.EnforceDeviceIdentity = false, users, true
		c.MQTT.Auth.Backoff.Keys = nil
	})
	pub := func(clientID string, extra ...string) (string, int) {
		args := append([]string{"-h", "localhost", "-p", port(g.MQTTTLSAddr()), "--cafile", "ca.pem",
			"--cert", "STS-00000123.pem", "--key", "STS-00000123.key", "-i", clientID, "-t", "report", "-q", "1",
			"-m", string(report("log", "STS-00000123", 1))}, extra...)
		return tool(t, dir, "mosquitto_pub", args...)
	}
	if out, code := pub("STS-00000123"); code != 0 {
		t.Fatalf("mosquitto_pub with the device's own certificate: exit %d: %s", code, out)
	}
	if recs := consume(t, g.KafkaBrokers(), "message-log", 1); len(recs) != 1 || recs[0].Key != "STS-00000123" {
		t.Fatalf("message-log: %+v", recs)
	}
	for _, extra := range [][]string{nil, {"-u", "STS-00000999", "-P", "pw-999"}, {"-u", "STS-00000999", "-P", "wrong"}} {
		if out, code := pub("STS-00000999", extra...); code == 0 || !strings.Contains(out, "not authorised") {
			t.Errorf("STS-00000123's certificate as client STS-00000999 %v: exit %d: %s; want refused", extra, code, out)
		}
	}
	// Without a client certificate the TLS handshake itself fails.
	out, code := tool(t, dir, "mosquitto_pub", "-h", "localhost", "-p", port(g.MQTTTLSAddr()), "--cafile", "ca.pem",
		"-i", "STS-00000999", "-u", "STS-00000999", "-P", "pw-999", "-t", "report", "-m", "{}")
	if code == 0 {
		t.Errorf("TLS without a client certificate accepted: %s", out)
	}
}

// TestDocsOpensslRevocation runs the revocation commands of docs/security.md
// against the CA of its PKI commands while the gateway serves mutual TLS
// with mqtt.tls.crl_file: a device whose certificate is revoked is refused
// by mosquitto_pub's next connection (the list is read again, no restart)
// and counted as certificate_revoked; another device's certificate of the
// same CA keeps working.
func TestDocsOpensslRevocation(t *testing.T) {
	dir := t.TempDir()
	pki, revoke := pkiCommands(t), docCommands(t, "revoke")
	runDocCommands(t, dir, pki, "GATEWAY_HOST=localhost", "DEVICE=STS-00000123")
	step3 := strings.Index(pki, "# 3.") // one CA, one server certificate: step 3 for the others
	if step3 < 0 {
		t.Fatal("docs/security.md: the pki commands have no step \"# 3.\" (one certificate per device)")
	}
	for _, dev := range []string{"STS-00000124", "STS-00000999"} {
		runDocCommands(t, dir, pki[step3:], "DEVICE="+dev)
	}
	runDocCommands(t, dir, revoke, "DEVICE=STS-00000999") // a list to start with
	g := startGateway(t, func(c *config.Config) {
		c.MQTT.TLSListen = "127.0.0.1:0"
		c.MQTT.TLS = broker.TLSConfig{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server.key"),
			ClientCAFile: filepath.Join(dir, "ca.pem"), CRLFile: filepath.Join(dir, "crl.pem")}
		c.Admin.Listen = "127.0.0.1:0"
		c.MQTT.Auth.AllowAnonymous, c.MQTT.Auth.EnforceDeviceIdentity = false, true
		c.MQTT.Auth.Backoff.Keys = nil
	})
	pub := func(dev string) (string, int) {
		return tool(t, dir, "mosquitto_pub", "-h", "localhost", "-p", port(g.MQTTTLSAddr()), "--cafile", "ca.pem",
			"--cert", dev+".pem", "--key", dev+".key", "-i", dev, "-t", "report", "-q", "1",
			"-m", string(report("log", dev, 1)))
	}
	if out, code := pub("STS-00000999"); code == 0 {
		t.Fatalf("the certificate revoked at start was accepted: %s", out)
	}
	if out, code := pub("STS-00000123"); code != 0 {
		t.Fatalf("mosquitto_pub with a certificate not revoked: exit %d: %s", code, out)
	}
	runDocCommands(t, dir, revoke, "DEVICE=STS-00000123")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, code := pub("STS-00000123")
		if code != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("STS-00000123 still connects 10 s after its certificate was revoked: %s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if out, code := pub("STS-00000124"); code != 0 {
		t.Fatalf("a certificate not revoked was refused after the list changed: exit %d: %s", code, out)
	}
	m, _ := scrape(t, g)
	if n := m[`fleetgate_mqtt_connections_refused_total{reason="certificate_revoked"}`]; n < 2 {
		t.Errorf("certificate_revoked refusals counted: %v; want at least 2", n)
	}
	recs := consume(t, g.KafkaBrokers(), "message-log", 2)
	for _, r := range recs {
		if r.Key == "STS-00000999" {
			t.Errorf("a record of the revoked device reached Kafka: %+v", r)
		}
	}
}

// TestPolicyFileReloads: the policy file reloads when saved; a broken save
// keeps the last good policy.
func TestPolicyFileReloads(t *testing.T) {
	dir := t.TempDir()
	users := fleetUsers(t, dir, false)
	acl := filepath.Join(dir, "acl.yaml")
	os.WriteFile(acl, []byte(`rules: [{principal: "*", action: subscribe, topics: ["cmd/${clientid}/#"], effect: allow}]`), 0o600)
	g := startGateway(t, func(c *config.Config) {
		c.MQTT.Auth.AllowAnonymous, c.MQTT.Auth.UsersFile, c.MQTT.Auth.EnforceDeviceIdentity, c.MQTT.ACLFile = false, users, true, acl
		c.MQTT.Auth.Backoff.Keys = nil
	})
	d1, err := connectAs(t, g.MQTTAddr(), "D1", "D1", "pw-D1")
	if err != nil {
		t.Fatal(err)
	}
	suback := func(f string) byte {
		tok := d1.Subscribe(f, 1, func(paho.Client, paho.Message) {})
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatalf("subscribe %s: no SUBACK", f)
		}
		return tok.(*paho.SubscribeToken).Result()[f]
	}
	if code := suback("alerts/D1"); code != 0x80 {
		t.Fatalf("alerts/D1 before the reload: SUBACK %#x", code)
	}
	os.WriteFile(acl, []byte(`rules: [{principal: "*", action: subscribe, topics: ["alerts/${clientid}"], effect: allow}]`), 0o600)
	waitUntil(t, "alerts/D1 allowed after the policy file changed", func() bool { return suback("alerts/D1") == 1 })
	os.WriteFile(acl, []byte(`rules: [{principal: "*", action: subscribe, topics: ["alerts/#/x"], effect: allow}]`), 0o600)
	time.Sleep(1500 * time.Millisecond) // past the watcher's quiet period
	if code := suback("alerts/D1"); code != 1 {
		t.Fatalf("after a broken save the last good policy must hold: SUBACK %#x", code)
	}
}
