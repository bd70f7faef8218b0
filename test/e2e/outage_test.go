package e2e

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// outage is how long Kafka stays down in TestKafkaOutage: twice the
// gateway's delivery timeout, so that messages waiting for Kafka fail.
const outage = 20 * time.Second

// TestKafkaOutage stops the only Kafka broker for 20 s under MQTT and HTTPS
// load and restarts it. While Kafka is down nothing is acknowledged: a QoS 1
// publish gets no PUBACK (an MQTT 3.1.1 client is disconnected after
// kafka.delivery_timeout, an MQTT 5 client gets a PUBACK with an error
// reason code), a legacy request gets 503 with Retry-After. The gateway's
// memory stays bounded meanwhile. After the restart the terminals re-send
// what was not acknowledged, and fleetsim verify finds every acknowledged
// message in Kafka, in order per device.
func TestKafkaOutage(t *testing.T) {
	needTools(t, "mosquitto_pub", "curl")
	kc := kafkatest.StartT(t, kafkatest.Options{Nodes: 1})
	if err := createTopics(kc, 1, nil); err != nil {
		t.Fatal(err)
	}
	const deliveryTimeout = 10 * time.Second
	// A small in-flight budget, so that the memory bound is the gateway's
	// and not the load's.
	g := startGateway(t, kc, gatewayConfig{DeliveryTimeout: deliveryTimeout,
		Extra: "limits: {max_inflight_messages: 2000, max_inflight_bytes: 4194304}\n"})
	rss := sampleRSS(g.Pid, 200*time.Millisecond)
	defer rss.Stop()

	run := newRunID()
	began := time.Now()
	sim := startSim(t, "--mqtt", g.MQTTAddr, "--devices", "20", "--inflight", "4", "--reconnect",
		"--https", g.HTTPSAddr, "--sts-devices", "2", "--csa-devices", "2", "--http-timeout", "30s",
		"--rate", "300", "--duration", "45s", "--drain", "45s", "--run-id", run, "--prefix", "KO-")
	// QoS 0 traffic has no PUBACK to withhold: only the in-flight budget
	// keeps it from piling up in memory while Kafka is away.
	flood := startSim(t, "--mqtt", g.MQTTAddr, "--devices", "5", "--qos", "0", "--reconnect", "--size", "1000",
		"--rate", "1000", "--duration", "45s", "--drain", "5s", "--run-id", run+"-qos0", "--prefix", "KO0-")
	waitRecords(t, kc, 0, 600, 30*time.Second, reportTopics...)
	probe := dialPaho(t, g.MQTTAddr, "KO-PROBE-311")
	warm := time.Now()

	if err := kc.Stop(1); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	t.Logf("Kafka stopped at +%s (stop took %s)", down.Sub(began).Round(time.Millisecond), down.Sub(warm).Round(time.Millisecond))

	// Probes while Kafka is down, each with a real client.
	var wg sync.WaitGroup
	var p311 probeResult
	var p5 toolResult
	var p5err, curlErr error
	var curlStatus int
	var curlHeaders string
	var curlTook time.Duration
	wg.Go(func() {
		p311 = publishProbe(probe, `{"type":"log","device_no":"KO-PROBE-311","seq":1}`, outage)
	})
	host, port, _ := strings.Cut(g.MQTTAddr, ":")
	wg.Go(func() {
		p5, p5err = runCmd(outage+10*time.Second, "", "mosquitto_pub", "-V", "mqttv5", "-h", host, "-p", port,
			"-i", "KO-PROBE-5", "-t", "report", "-q", "1", "-m", `{"type":"log","device_no":"KO-PROBE-5","seq":1}`)
	})
	curlDir := t.TempDir()
	wg.Go(func() {
		t0 := time.Now()
		curlStatus, _, curlHeaders, curlErr = curlPostErr(curlDir, g.HTTPSAddr, "/log", "application/json", legacyTestdata("sts-log.json"))
		curlTook = time.Since(t0)
	})
	time.Sleep(time.Until(down.Add(outage)))
	restart := time.Now()
	if err := kc.Restart(1); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	t.Logf("Kafka restarted at +%s, ready after %s", restart.Sub(began).Round(time.Millisecond), up.Sub(restart).Round(time.Millisecond))
	wg.Wait()
	if err := errors.Join(p5err, curlErr); err != nil {
		t.Fatal(err)
	}

	// Nothing acknowledged while Kafka was down.
	if p311.acked && p311.at.Before(restart) {
		t.Errorf("MQTT 3.1.1: PUBACK while Kafka was down (%s)", p311)
	} else {
		t.Logf("MQTT 3.1.1 probe: %s", p311)
	}
	if !p311.acked && p311.took > deliveryTimeout+5*time.Second {
		t.Errorf("MQTT 3.1.1: the failed publish was not answered (disconnect) within kafka.delivery_timeout %s: %s", deliveryTimeout, p311)
	}
	// mosquitto_pub exits 0 either way; it reports an error reason code as
	// "Warning: Publish 1 failed: <reason>".
	p5out := strings.TrimSpace(p5.Stderr + p5.Stdout)
	p5acked := p5.Code == 0 && !strings.Contains(p5out, "failed")
	switch {
	case p5acked && down.Add(p5.Took).Before(restart):
		t.Errorf("MQTT 5: mosquitto_pub got a successful PUBACK while Kafka was down (after %s): %q", p5.Took, p5out)
	case p5acked:
		t.Logf("MQTT 5 probe: acknowledged only after the restart (%s)", p5.Took.Round(time.Millisecond))
	default:
		t.Logf("MQTT 5 probe: mosquitto_pub exit %d after %s: %q", p5.Code, p5.Took.Round(time.Millisecond), p5out)
		if p5.Took > deliveryTimeout+5*time.Second {
			t.Errorf("MQTT 5: no error reason code within kafka.delivery_timeout %s (took %s)", deliveryTimeout, p5.Took)
		}
	}
	if curlStatus == 200 && down.Add(curlTook).Before(restart) {
		t.Errorf("HTTPS: 200 while Kafka was down")
	} else if curlStatus != 503 || !strings.Contains(strings.ToLower(curlHeaders), "retry-after:") {
		t.Errorf("HTTPS while Kafka was down: status %d after %s, headers:\n%s\nwant 503 with Retry-After", curlStatus, curlTook, curlHeaders)
	} else {
		t.Logf("HTTPS probe: 503 with Retry-After after %s", curlTook.Round(time.Millisecond))
	}

	sum := sim.wait(3 * time.Minute)
	flood.wait(time.Minute)
	t.Logf("fleetsim run:%s", sum.brief())
	simVerify(t, kc, sim)
	acked, unacked, resent := sum.total()
	if acked == 0 || resent == 0 {
		t.Errorf("the load saw no re-send (acked %d, resent %d): the outage did not bite", acked, resent)
	}
	if unacked != 0 {
		t.Errorf("%d messages never acknowledged although Kafka came back %s before the end of the drain", unacked,
			sim.finishedAt.Sub(up).Round(time.Second))
	}

	rss.Stop()
	before, _ := rss.Max(began, down)
	during, n := rss.Max(down, up)
	after, _ := rss.Max(up, time.Now())
	t.Logf("gateway RSS: %s peak before the outage, %s during (%d samples), %s after", mib(before), mib(during), n, mib(after))
	if limit := before + 64<<10; during > limit {
		t.Errorf("gateway RSS grew to %s while Kafka was down, over %s (peak before + 64 MiB)", mib(during), mib(limit))
	}
}
