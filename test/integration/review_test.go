package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/config"
)

// TestReviewAttacksWithRealClients replays, with mosquitto_pub/sub, paho
// and htpasswd, attacks found in the security review of issue 9 (see
// docs/security.md, "What was tried"):
//   - a QoS 1 PUBLISH to $SYS is answered (it was dropped unanswered, and
//     mosquitto_pub waited for ever);
//   - another principal resuming a persistent session with its client id
//     (enforce_device_identity off) is refused, and does not get the
//     messages queued for it;
//   - removing a user from the users file (htpasswd -D) ends its live
//     connection.
func TestReviewAttacksWithRealClients(t *testing.T) {
	dir := t.TempDir()
	users := fleetUsers(t, dir, false)
	acl := filepath.Join(dir, "acl.yaml")
	os.WriteFile(acl, []byte(`groups: {operators: [D1]}
rules:
  - {group: operators, action: subscribe, topics: ["#"], effect: allow}
  - {principal: D3, action: publish, topics: ["alerts/#"], effect: allow}
  - {principal: "*", action: publish, topics: [report, "fleet/${principal}/#"], effect: allow}
  - {principal: "*", action: subscribe, topics: ["cmd/${principal}/#"], effect: allow}
`), 0o600)
	g := startAdminGateway(t, func(c *config.Config) {
		c.MQTT.Auth.AllowAnonymous, c.MQTT.Auth.UsersFile, c.MQTT.Auth.EnforceDeviceIdentity, c.MQTT.ACLFile = false, users, false, acl
		c.MQTT.Auth.Backoff.Keys = nil
	})
	p := port(g.MQTTAddr())
	pub := func(args ...string) (string, int) {
		return tool(t, dir, "mosquitto_pub", append([]string{"-h", "127.0.0.1", "-p", p}, args...)...)
	}
	if out, code := pub("-i", "D2", "-u", "D2", "-P", "pw-D2", "-t", "$SYS/broker/clients/connected", "-q", "1", "-m", "0"); code != 0 {
		t.Errorf("mosquitto_pub -q 1 to $SYS (3.1.1): exit %d: %s; want an answer", code, out)
	}
	if out, _ := pub("-V", "5", "-i", "D2", "-u", "D2", "-P", "pw-D2", "-t", "$SYS/x", "-q", "1", "-m", "0"); !strings.Contains(out, "Not authorized") {
		t.Errorf("mosquitto_pub -V 5 -q 1 to $SYS: %q; want 'Not authorized'", out)
	}

	// The operator's persistent session, offline, with an alert queued.
	sub := func(user, pass string, extra ...string) (string, int) {
		return tool(t, dir, "mosquitto_sub", append([]string{"-h", "127.0.0.1", "-p", p, "-c", "-i", "console", "-u", user, "-P", pass,
			"-q", "1", "-t", "alerts/#", "-v"}, extra...)...)
	}
	if out, code := sub("D1", "pw-D1", "-W", "1"); code != 27 && code != 0 {
		t.Fatalf("operator's first mosquitto_sub -c: exit %d: %s", code, out)
	}
	if out, code := pub("-i", "D3", "-u", "D3", "-P", "pw-D3", "-t", "alerts/D7", "-q", "1", "-m", `{"secret":1}`); code != 0 {
		t.Fatalf("D3 publishing the alert: exit %d: %s", code, out)
	}
	if out, code := sub("D2", "pw-D2", "-C", "1", "-W", "3"); code == 0 || strings.Contains(out, "secret") || !strings.Contains(out, "not authorised") {
		t.Errorf("D2 resuming the operator's session: exit %d: %q; want refused", code, out)
	}
	if out, code := sub("D1", "pw-D1", "-C", "1", "-W", "5"); code != 0 || !strings.Contains(out, `alerts/D7 {"secret":1}`) {
		t.Errorf("the operator's queued alert: exit %d: %q", code, out)
	}

	// htpasswd -D: D3's live connection ends.
	lost := make(chan struct{})
	opts := paho.NewClientOptions().AddBroker("tcp://" + g.MQTTAddr()).SetClientID("D2").SetUsername("D2").SetPassword("pw-D2").
		SetAutoReconnect(false).SetProtocolVersion(4).SetConnectionLostHandler(func(paho.Client, error) { close(lost) })
	d2 := paho.NewClient(opts)
	if tok := d2.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("D2: %v", tok.Error())
	}
	defer d2.Disconnect(0)
	if out, code := tool(t, dir, "htpasswd", "-D", users, "D2"); code != 0 {
		t.Fatalf("htpasswd -D: %s", out)
	}
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("D2 still connected 10s after htpasswd -D removed it")
	}
	waitMetrics(t, g, map[string]float64{
		`fleetgate_mqtt_refusals_total{reason="not_authorized",stage="publish"}`:     2,
		`fleetgate_mqtt_refusals_total{reason="session_owned",stage="connect"}`:      1,
		`fleetgate_mqtt_refusals_total{reason="credential_revoked",stage="session"}`: 1,
	})
}
