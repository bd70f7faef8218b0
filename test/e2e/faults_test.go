package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// TestLeaderFailover kills (SIGKILL) the Kafka node that leads the most
// partitions of a 3-node cluster (replication factor 3, min.insync.replicas
// 2) while fleetsim loads the gateway over MQTT and HTTPS. The controller
// fences the node after 3 s and moves its leaderships; the gateway's
// producer retries into the new leaders. fleetsim verify then finds every
// acknowledged message in Kafka, in order per device.
func TestLeaderFailover(t *testing.T) {
	kc := kafkatest.StartT(t, kafkatest.Options{Nodes: 3})
	if err := createTopics(kc, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, kc, gatewayConfig{DeliveryTimeout: 15 * time.Second, ReplicationFactor: 3,
		TopicConfig: map[string]string{"min.insync.replicas": "2"}})

	run := newRunID()
	sim := startSim(t, "--mqtt", g.MQTTAddr, "--devices", "30", "--inflight", "4", "--reconnect",
		"--https", g.HTTPSAddr, "--sts-devices", "2", "--csa-devices", "2",
		"--rate", "400", "--duration", "25s", "--drain", "40s", "--run-id", run, "--prefix", "LF-")
	waitRecords(t, kc, 0, 1000, 30*time.Second, reportTopics...)

	// The node leading the most report partitions.
	led := map[int][]topicPartition{}
	for _, topic := range reportTopics {
		for p := int32(0); p < topicPartitions; p++ {
			l, err := kc.LeaderOf(topic, p)
			if err != nil {
				t.Fatal(err)
			}
			led[l] = append(led[l], topicPartition{topic, p})
		}
	}
	victim := 0
	for n, parts := range led {
		if victim == 0 || len(parts) > len(led[victim]) || len(parts) == len(led[victim]) && n < victim {
			victim = n
		}
	}
	before, err := endOffsets(kc, reportTopics...)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := kc.Kill(victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed node %d (SIGKILL), leader of %d of %d report partitions, with %d records stored", victim,
		len(led[victim]), len(reportTopics)*topicPartitions, before)

	waitFor(t, 60*time.Second, "leaderships moved off the killed node", func() error {
		for _, tp := range led[victim] {
			if l, err := kc.LeaderOf(tp.topic, tp.partition); err != nil || l == victim {
				return fmt.Errorf("%s/%d: leader %d, %v", tp.topic, tp.partition, l, err)
			}
		}
		return nil
	})
	moved := time.Since(killed)
	// Records keep coming, through the partitions that moved too.
	waitRecords(t, kc, before, 500, 60*time.Second, reportTopics...)
	t.Logf("leaderships moved %s after the kill; 500 more records stored %s after it", moved.Round(time.Millisecond),
		time.Since(killed).Round(time.Millisecond))

	sum := sim.wait(3 * time.Minute)
	t.Logf("fleetsim run: %s", sum.brief())
	simVerify(t, kc, sim)
	if _, unacked, _ := sum.total(); unacked != 0 {
		t.Errorf("%d messages never acknowledged although the cluster kept a majority", unacked)
	}
}

// TestGatewayRestart sends the gateway SIGTERM in the middle of MQTT and
// HTTPS load and starts it again on the same ports. The gateway finishes or
// refuses what is in flight, flushes and exits 0; the terminals re-send what
// got no acknowledgement to the new process; fleetsim verify finds every
// acknowledged message in Kafka, in order per device, and in the end every
// message was acknowledged.
func TestGatewayRestart(t *testing.T) {
	kc := sharedKafka(t)
	g := startGateway(t, kc, gatewayConfig{DeliveryTimeout: 10 * time.Second})
	base, err := endOffsets(kc, reportTopics...)
	if err != nil {
		t.Fatal(err)
	}
	run := newRunID()
	sim := startSim(t, "--mqtt", g.MQTTAddr, "--devices", "20", "--inflight", "8", "--reconnect",
		"--https", g.HTTPSAddr, "--sts-devices", "2", "--csa-devices", "2",
		"--rate", "400", "--duration", "20s", "--drain", "40s", "--run-id", run, "--prefix", "GR-")
	waitRecords(t, kc, base, 1000, 30*time.Second, reportTopics...)

	logFrom := g.logSize()
	code, took, err := g.stop(syscall.SIGTERM, 40*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGTERM: fleetgate exited with %d after %s", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("fleetgate exited with %d after SIGTERM, want 0", code)
	}
	for _, bad := range []string{"shutdown was not clean", `"level":"error"`, `"level":"fatal"`, "panic"} {
		for _, l := range g.logLines(logFrom, bad) {
			t.Errorf("log: %s", l)
		}
	}
	if len(g.logLines(logFrom, "fleetgate stopped")) == 0 {
		t.Errorf(`the log does not say "fleetgate stopped"`)
	}
	g.start()

	sum := sim.wait(3 * time.Minute)
	t.Logf("fleetsim run: %s", sum.brief())
	simVerify(t, kc, sim)
	acked, unacked, resent := sum.total()
	if unacked != 0 {
		t.Errorf("%d messages never acknowledged although the gateway came back", unacked)
	}
	if resent == 0 {
		t.Errorf("no message was re-sent (acked %d): the restart did not interrupt anything", acked)
	}
}
