package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// TestLaggingFollowersFreshTopics is issue 10's reproduction of acknowledged
// reports landing in message-dlq: a fresh 3-node cluster whose followers
// fetch lazily (replica.fetch.min.bytes 10 MB, replica.fetch.wait.max.ms
// 3 s), so that brokers apply new topics and partitions at different
// moments; the gateway creates the topics itself (kafka.topics.create) and
// terminals start as soon as /readyz is 200. A broker answering
// UNKNOWN_TOPIC_OR_PARTITION for a topic another broker already has must
// delay messages, never send them to the dead-letter topic: fleetsim verify
// finds every acknowledged report in its message-<type> topic, and
// message-dlq holds nothing of the run. Slow (FLEETGATE_SLOW=1).
func TestLaggingFollowersFreshTopics(t *testing.T) {
	needSlow(t)
	kc := kafkatest.StartT(t, kafkatest.Options{Nodes: 3, ExtraBrokerConfig: map[string]string{
		"replica.fetch.min.bytes":   "10000000",
		"replica.fetch.wait.max.ms": "3000",
	}})
	isr := map[string]string{"min.insync.replicas": "2"}
	g := startGateway(t, kc, gatewayConfig{DeliveryTimeout: 15 * time.Second, ReplicationFactor: 3, TopicConfig: isr, Admin: true})
	waitFor(t, 60*time.Second, "/readyz 200", func() error {
		if code, body := readiness(g.AdminAddr); code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	run := newRunID()
	sim := startSim(t, "--mqtt", g.MQTTAddr, "--devices", "50", "--inflight", "2", "--reconnect",
		"--rate", "200", "--duration", "10s", "--drain", "60s", "--run-id", run, "--prefix", "LG-")
	sum := sim.wait(3 * time.Minute)
	t.Logf("fleetsim run: %s", sum.brief())
	simVerify(t, kc, sim)
	dlq := 0
	for _, r := range readTopics(t, kc, "message-dlq") {
		if strings.Contains(string(r.Value), run) {
			dlq++
		}
	}
	if dlq != 0 {
		t.Errorf("message-dlq holds %d records of the run: acknowledged reports sent to the dead-letter topic", dlq)
	}
	for _, l := range g.logLines(0, "unknown_topic") {
		t.Errorf("log: %s", l)
	}
}
