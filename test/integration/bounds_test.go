package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/test/kfaketest"
)

// mosquitto runs a mosquitto client tool with args and returns its output.
// The test fails when the tool is not installed or exits with an error.
func mosquitto(t *testing.T, tool string, args ...string) string {
	t.Helper()
	return mosquittoExit(t, 0, tool, args...)
}

// mosquittoExit is mosquitto where exit status ok also counts as success
// (mosquitto_sub -W exits 27 at its timeout).
func mosquittoExit(t *testing.T, ok int, tool string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed (Debian package mosquitto-clients); this test drives the gateway with it", tool)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == ok {
		err = nil
	}
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

	// mochi re-sends a session's queue in no fixed order, QoS 1 allows
	// duplicates, and the SUBSCRIBE mosquitto_sub sends again brings the
	// retained message once more: compare the distinct messages.
	out := mosquittoExit(t, 27, "mosquitto_sub", append(mqtt, "-i", "ops-console", "-c", "-t", "alerts/#", "-v", "-W", "2")...)
	got := slices.DeleteFunc(strings.Split(strings.TrimSpace(out), "\n"), func(l string) bool { return l == "Timed out" })
	slices.Sort(got)
	got = slices.Compact(got)
	want := []string{`alerts/D1 {"n":10}`, "alerts/big " + strings.Repeat("x", 2000), "alerts/small ok"}
	if !slices.Equal(got, want) {
		t.Fatalf("the returning session got:\n%s\nwant its 3 newest messages:\n%s", out, strings.Join(want, "\n"))
	}
}

// TestEmbeddedKafkaRetentionKey: kafka.embedded_retention_bytes reaches the
// embedded Kafka broker (kafka/ tests what the broker does with it).
func TestEmbeddedKafkaRetentionKey(t *testing.T) {
	g := startGateway(t, func(c *config.Config) { c.Kafka.EmbeddedRetentionBytes = 3 << 20 })
	if got := kfaketest.BrokerConfig(t, g.Embedded().Addr(), "log.retention.bytes"); got != "3145728" {
		t.Errorf("embedded broker's log.retention.bytes = %q, want 3145728 (kafka.embedded_retention_bytes)", got)
	}
}
