package integration

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/gateway"
)

// startIdentityGateway runs a gateway with authentication and device
// identity enforced on both inputs: MQTT users devA and devB, a legacy
// token bound to STS-1.
func startIdentityGateway(t *testing.T) *gateway.Gateway {
	t.Helper()
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(users, []byte("devA pw-a\ndevB pw-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokens, []byte("sts1 tok-sts1 STS-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startAdminGateway(t, func(c *config.Config) {
		c.MQTT.Auth.AllowAnonymous = false
		c.MQTT.Auth.UsersFile = users
		c.MQTT.Auth.EnforceDeviceIdentity = true
		c.Telematics.Auth.TokensFile = tokens
	})
}

// connect5 connects devA over MQTT 5 with the real paho.golang client.
func connect5(t *testing.T, addr, user, pass string) *paho5.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := paho5.NewClient(paho5.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, &paho5.Connect{ClientID: user, CleanStart: true, KeepAlive: 30,
		UsernameFlag: true, Username: user, PasswordFlag: true, Password: []byte(pass)})
	if err != nil || ca.ReasonCode != 0 {
		t.Fatalf("connect %s: %v %+v", user, err, ca)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho5.Disconnect{}) })
	return c
}

// TestSpoofedDeviceGoesToTheDLQ: devA, authenticated and enforced, publishes
// a report claiming devB. Over MQTT 5 it gets PUBACK 0x87, over 3.1.1 a
// plain PUBACK (stored in the error topic: it must not be re-sent, and the
// connection stays). Either way the report is in message-dlq with reason
// identity_mismatch and headers naming both ids, never in message-log.
func TestSpoofedDeviceGoesToTheDLQ(t *testing.T) {
	g := startIdentityGateway(t)
	spoof := []byte(`{"type":"log","device_no":"devB","ts":1763780000000}`)
	own := []byte(`{"type":"log","device_no":"devA","ts":1763780000001}`)

	c5 := connect5(t, g.MQTTAddr(), "devA", "pw-a")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pr, err := c5.Publish(ctx, &paho5.Publish{Topic: "report", QoS: 1, Payload: spoof})
	if pr == nil || pr.ReasonCode != 0x87 {
		t.Fatalf("MQTT 5 spoofed publish: response %+v, error %v; want PUBACK 0x87", pr, err)
	}
	if pr, err := c5.Publish(ctx, &paho5.Publish{Topic: "report", QoS: 1, Payload: own}); err != nil || pr.ReasonCode != 0 {
		t.Fatalf("MQTT 5 own publish after the refusal: %+v %v", pr, err)
	}
	_ = c5.Disconnect(&paho5.Disconnect{})

	opts := paho.NewClientOptions().AddBroker("tcp://" + g.MQTTAddr()).SetClientID("devA").SetUsername("devA").SetPassword("pw-a").
		SetAutoReconnect(false).SetConnectRetry(false).SetWriteTimeout(10 * time.Second)
	c3 := paho.NewClient(opts)
	if tok := c3.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect 3.1.1: %v", tok.Error())
	}
	t.Cleanup(func() { c3.Disconnect(100) })
	publish(t, c3, "report", spoof) // a PUBACK: stored in the DLQ
	publish(t, c3, "report", own)
	if !c3.IsConnectionOpen() {
		t.Fatal("MQTT 3.1.1 connection closed after the refusal")
	}

	for _, r := range consume(t, g.KafkaBrokers(), "message-log", 2) {
		if r.Key != "devA" || strings.Contains(string(r.Value), "devB") {
			t.Fatalf("message-log holds %q key %q", r.Value, r.Key)
		}
	}
	dlq := consume(t, g.KafkaBrokers(), "message-dlq", 2)
	if len(dlq) != 2 {
		t.Fatalf("message-dlq holds %d records, want 2", len(dlq))
	}
	for _, r := range dlq {
		h := r.Headers
		if string(r.Value) != string(spoof) || !strings.HasPrefix(h["error"], "identity_mismatch: ") || h["principal"] != "devA" ||
			h["claimed_id"] != "devB" || h["client_id"] != "devA" || h["action"] != "identity" || h["source"] != "mqtt" {
			t.Fatalf("DLQ record %q headers %q", r.Value, h)
		}
	}
	waitMetrics(t, g, map[string]float64{
		`fleetgate_errors_total{reason="identity_mismatch"}`:                              2,
		`fleetgate_error_records_total{reason="identity_mismatch",rule="device-reports"}`: 2,
	})
}

// TestLegacyTokenForOtherDevice: the token bound to STS-1 posting STS-2's
// data gets 403 and nothing is stored; with curl against the real HTTPS
// endpoint as an operator would try it.
func TestLegacyTokenForOtherDevice(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("this test needs curl (Debian package curl)")
	}
	g := startIdentityGateway(t)
	dir := t.TempDir()
	body := func(device string) string {
		f := filepath.Join(dir, device+".json")
		b := `{"device_no":"` + device + `","sent_at":1763780000123,"records":[{"kind":"gps","ts":1763779999000,"lat":37.5,"lng":126.9}]}`
		if err := os.WriteFile(f, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	curl := func(token, file string) (string, string) {
		t.Helper()
		args := []string{"-sk", "-o", "-", "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "--data-binary", "@" + file,
			"https://" + g.TelematicsAddr() + "/log"}
		if token != "" {
			args = append(args, "-H", "Authorization: Bearer "+token)
		}
		out, err := exec.Command("curl", args...).Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		s := strings.TrimSpace(string(out))
		i := strings.LastIndexByte(s, '\n')
		return s[i+1:], s[:max(i, 0)]
	}
	if code, resp := curl("tok-sts1", body("STS-2")); code != "403" || !strings.Contains(resp, `"field":"device_no"`) || strings.Contains(resp, "STS-2") {
		t.Fatalf("STS-1's token posting STS-2: %s %s; want 403 with a JSON body that does not echo the device", code, resp)
	}
	start := time.Now()
	if code, _ := curl("", body("STS-1")); code != "401" || time.Since(start) > 5*time.Second {
		t.Fatalf("no token: %s after %v", code, time.Since(start))
	}
	if code, resp := curl("tok-sts1", body("STS-1")); code != "200" {
		t.Fatalf("STS-1's own data: %s %s", code, resp)
	}
	for _, r := range consume(t, g.KafkaBrokers(), "message-gps", 1) {
		if r.Key != "STS-1" {
			t.Fatalf("message-gps holds %q key %q", r.Value, r.Key)
		}
	}
	waitMetrics(t, g, map[string]float64{
		`fleetgate_errors_total{reason="legacy_device_not_allowed"}`: 1,
		`fleetgate_errors_total{reason="legacy_unauthenticated"}`:    1,
		`fleetgate_telematics_responses_total{code="403"}`:           1,
	})
}

// TestSpoofedDeviceWithMosquittoPub: the same attack as an operator would
// try it, with mosquitto_pub over MQTT 5: it is told "not authorized", and
// the report is in the error topic, not in message-log.
func TestSpoofedDeviceWithMosquittoPub(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Fatal("this test needs mosquitto_pub (Debian package mosquitto-clients)")
	}
	g := startIdentityGateway(t)
	host, port, _ := net.SplitHostPort(g.MQTTAddr())
	pub := func(payload string) string {
		out, _ := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-V", "mqttv5", "-i", "devA", "-u", "devA", "-P", "pw-a",
			"-t", "report", "-q", "1", "-d", "-m", payload).CombinedOutput()
		return string(out)
	}
	// mosquitto_pub -d prints "received PUBACK (Mid: 1, RC:135)" and
	// "Publish 1 failed: Not authorized." (0x87 is 135).
	if out := pub(`{"type":"log","device_no":"devB"}`); !strings.Contains(out, "RC:135") || !strings.Contains(out, "Not authorized") {
		t.Fatalf("mosquitto_pub of a spoofed report:\n%s\nwant PUBACK reason 135 (0x87, not authorized)", out)
	}
	if out := pub(`{"type":"log","device_no":"devA"}`); !strings.Contains(out, "RC:0)") {
		t.Fatalf("mosquitto_pub of its own report:\n%s", out)
	}
	if recs := consume(t, g.KafkaBrokers(), "message-log", 1); len(recs) != 1 || recs[0].Key != "devA" {
		t.Fatalf("message-log: %+v", recs)
	}
	if dlq := consume(t, g.KafkaBrokers(), "message-dlq", 1); len(dlq) != 1 || dlq[0].Headers["claimed_id"] != "devB" {
		t.Fatalf("message-dlq: %+v", dlq)
	}
}
