package e2e

import (
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// TestOutageBeyondRetryBudget stops the only Kafka broker under MQTT load
// for 18 s, with each producer (kafka.producer). With sarama, much longer
// than its own retry window: kafka.retry_budget is 1 s (set by
// environment, FLEETGATE_KAFKA_RETRY_BUDGET), so sarama's leader lookups
// give up, its circuit breakers open (three failures) and it hands records
// back failed while later records of the same devices wait in its queues,
// the path that reordered records after outages longer than about 15
// minutes at the default budget. With fleetgate's own batches, leader
// lookups and produce requests fail over and over while a partition's
// batch waits at its head. After the restart fleetsim verify must find
// every acknowledged message, in order per device, and the gateway's log
// must show the failure path was taken.
func TestOutageBeyondRetryBudget(t *testing.T) {
	for _, tc := range []struct{ producer, logged string }{
		{"fleetgate", "a batch failed with a retriable error"},
		{"sarama", "records given back by the producer"},
	} {
		t.Run(tc.producer, func(t *testing.T) {
			t.Setenv("FLEETGATE_KAFKA_PRODUCER", tc.producer)
			outageBeyondRetryBudget(t, tc.logged)
		})
	}
}

func outageBeyondRetryBudget(t *testing.T, logged string) {
	kc := kafkatest.StartT(t, kafkatest.Options{Nodes: 1})
	if err := createTopics(kc, 1, nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLEETGATE_KAFKA_RETRY_BUDGET", "1s")
	g := startGateway(t, kc, gatewayConfig{DeliveryTimeout: 5 * time.Second})
	logFrom := g.logSize()

	run := newRunID()
	sim := startSim(t, "--mqtt", g.MQTTAddr, "--devices", "20", "--inflight", "8", "--reconnect",
		"--rate", "300", "--duration", "30s", "--drain", "60s", "--run-id", run, "--prefix", "RB-")
	waitRecords(t, kc, 0, 600, 30*time.Second, reportTopics...)

	if err := kc.Stop(1); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	// Three failed lookups of 1 s open a breaker for 10 s; 18 s covers a
	// few rounds of failing, half-open and failing again.
	time.Sleep(18 * time.Second)
	if err := kc.Restart(1); err != nil {
		t.Fatal(err)
	}
	t.Logf("Kafka down for %s", time.Since(down).Round(time.Millisecond))

	sum := sim.wait(3 * time.Minute)
	t.Logf("fleetsim run: %s", sum.brief())
	simVerify(t, kc, sim)
	if _, unacked, _ := sum.total(); unacked != 0 {
		t.Errorf("%d messages never acknowledged although Kafka came back", unacked)
	}
	given := g.logLines(logFrom, logged)
	t.Logf("%d log lines %q", len(given), logged)
	if len(given) == 0 {
		t.Errorf("the log has no line %q: the outage did not reach the producer's retry path", logged)
	}
}
