package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/config"
)

// sampleRules is a copy of shared/samples/config/rules.yaml; the test checks
// that it still is one when the shared samples are there.
const sampleRules = "testdata/sample-rules.yaml"

// TestRepublishSampleRules runs the sample rules: ADAS events of level 3
// and above reach an MQTT subscriber of alerts/# (and Kafka, like every
// report); level 2 reaches Kafka only.
func TestRepublishSampleRules(t *testing.T) {
	if shared, err := os.ReadFile("../../../shared/samples/config/rules.yaml"); err == nil {
		if copied, _ := os.ReadFile(sampleRules); !bytes.Equal(shared, copied) {
			t.Fatalf("%s differs from shared/samples/config/rules.yaml; copy it again", sampleRules)
		}
	}
	rules, err := config.LoadRulesFile(sampleRules)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, func(c *config.Config) { c.Rules = rules })

	// The control room subscribes before the devices report.
	got := make(chan paho.Message, 10)
	room := connect(t, g.MQTTAddr(), "control-room")
	if tok := room.Subscribe("alerts/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	dev := connect(t, g.MQTTAddr(), "STS-00000123")
	publish(t, dev, "report", []byte(`{"type":"adas","device_no":"STS-00000123","ts":1763780003000,"seq":4,"event":"FCW","level":2}`))
	publish(t, dev, "report", []byte(`{"type":"adas","device_no":"STS-00000123","ts":1763780003500,"seq":5,"event":"LDW","level":3,"extra":"not selected"}`))

	select {
	case m := <-got:
		if m.Topic() != "alerts/STS-00000123" || m.Qos() != 1 {
			t.Fatalf("alert on %s at QoS %d", m.Topic(), m.Qos())
		}
		var alert map[string]any
		if err := json.Unmarshal(m.Payload(), &alert); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"device_no": "STS-00000123", "event": "LDW", "level": 3.0, "ts": 1763780003500.0}
		if len(alert) != len(want) {
			t.Fatalf("alert %s, want the selected fields only", m.Payload())
		}
		for k, v := range want {
			if alert[k] != v {
				t.Fatalf("alert %s: %s = %v, want %v", m.Payload(), k, alert[k], v)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no alert republished for a level 3 ADAS event")
	}
	select {
	case m := <-got:
		t.Fatalf("unexpected second alert on %s: %s", m.Topic(), m.Payload())
	case <-time.After(500 * time.Millisecond):
	}
	// Both events are in Kafka through the device-reports rule.
	if recs := consume(t, g.KafkaBrokers(), "message-adas", 2); len(recs) != 2 {
		t.Fatalf("message-adas holds %d records, want 2", len(recs))
	}
}
