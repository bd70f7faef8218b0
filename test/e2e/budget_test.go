package e2e

import (
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// TestOutageBeyondRetryBudget stops the only Kafka broker under MQTT load
// for much longer than the producer's own retry window: kafka.retry_budget
// is 1 s (set by environment, FLEETGATE_KAFKA_RETRY_BUDGET), so sarama's
// leader lookups give up, its circuit breakers open (three failures) and it
// hands records back failed while later records of the same devices wait in
// its queues, the path that reordered records after outages longer than
// about 15 minutes at the default budget. After the restart fleetsim verify
// must find every acknowledged message, in order per device, and the
// gateway's log must show that records were given back (the budget was
// crossed).
func TestOutageBeyondRetryBudget(t *testing.T) {
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
	given := g.logLines(logFrom, "records given back by the producer")
	t.Logf("%d log lines about records given back by sarama", len(given))
	if len(given) == 0 {
		t.Errorf("the log has no line about records given back: the outage did not cross kafka.retry_budget")
	}
}
