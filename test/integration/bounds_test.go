package integration

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/config"
)

// mosquitto runs a mosquitto client tool with args and returns its output.
// The test fails when the tool is not installed.
func mosquitto(t *testing.T, tool string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed (Debian package mosquitto-clients); this test drives the gateway with it", tool)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	return string(out)
}

// TestOperatorSessionAndRetainedBounded drives the broker's caps with the
// tools an operator uses: a persistent mosquitto_sub session that goes
// away, mosquitto_pub publishing more than its queue holds and retained
// messages over and under the caps. The metrics count every drop, and the
// returning session gets the newest messages only.
func TestOperatorSessionAndRetainedBounded(t *testing.T) {
	g := startAdminGateway(t, func(c *config.Config) {
		c.MQTT.MaxQueuedMessages = 3
		c.MQTT.Retained = config.Default().MQTT.Retained
		c.MQTT.Retained.Enabled = true
		c.MQTT.Retained.MaxMessageBytes = 1024
	})
	host, port, _ := net.SplitHostPort(g.MQTTAddr())
	mqtt := []string{"-h", host, "-p", port, "-q", "1"}

	mosquitto(t, "mosquitto_sub", append(mqtt, "-i", "ops-console", "-c", "-t", "alerts/#", "-E")...)
	for i := 1; i <= 10; i++ {
		mosquitto(t, "mosquitto_pub", append(mqtt, "-i", "pub", "-t", "alerts/D1", "-m", fmt.Sprintf(`{"n":%d}`, i))...)
	}
	mosquitto(t, "mosquitto_pub", append(mqtt, "-i", "pub", "-r", "-t", "alerts/big", "-m", strings.Repeat("x", 2000))...)
	mosquitto(t, "mosquitto_pub", append(mqtt, "-i", "pub", "-r", "-t", "alerts/small", "-m", "ok")...)

	waitMetrics(t, g, map[string]float64{
		`fleetgate_mqtt_broker_dropped_total{reason="queue_session_limit"}`: 9, // 12 messages, 3 kept
		`fleetgate_mqtt_broker_dropped_total{reason="retained_too_large"}`:  1,
		`fleetgate_mqtt_queued_messages`:                                    3,
		`fleetgate_mqtt_retained_messages`:                                  1,
	})

	out := mosquitto(t, "mosquitto_sub", append(mqtt, "-i", "ops-console", "-c", "-t", "alerts/#", "-v", "-C", "3", "-W", "10")...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{`alerts/D1 {"n":10}`, "alerts/big " + strings.Repeat("x", 2000), "alerts/small ok"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the returning session got:\n%s\nwant its 3 newest messages:\n%s", out, strings.Join(want, "\n"))
	}
}
