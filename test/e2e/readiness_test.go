package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// envSlow runs the slow fault tests (several minutes each on 2 cores):
// FLEETGATE_SLOW=1 ./test/run -run 'TestReadinessTwoBrokersDown|TestLaggingFollowers' ./test/e2e/
const envSlow = "FLEETGATE_SLOW"

// needSlow skips a slow fault test unless FLEETGATE_SLOW is set.
func needSlow(t *testing.T) {
	t.Helper()
	if os.Getenv(envSlow) == "" {
		t.Skipf("slow fault test: set %s=1 to run it", envSlow)
	}
}

// readiness is the gateway's /readyz status code, or 0 when it does not
// answer.
func readiness(addr string) (int, string) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// readinessWindow is kafka.readiness_window in the readiness tests (set by
// environment, FLEETGATE_KAFKA_READINESS_WINDOW, so that a binary built
// before the key existed can be tested too).
const readinessWindow = 3 * time.Second

// checkReadinessFollowsWrites loads g, breaks writes with fail (metadata
// still answers), and checks that /readyz turns 503 within the window (plus
// the probe interval and slack) and stays 503 while nothing is stored; then
// heals with heal and checks that /readyz is 200 again and that fleetsim
// verify finds every acknowledged message, in order.
func checkReadinessFollowsWrites(t *testing.T, kc *kafkatest.Cluster, g *gateway, prefix string, fail, heal func()) {
	t.Helper()
	waitFor(t, 30*time.Second, "/readyz 200", func() error {
		if code, body := readiness(g.AdminAddr); code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	run := newRunID()
	sim := startSim(t, "--mqtt", g.MQTTAddr, "--devices", "10", "--inflight", "2", "--reconnect",
		"--rate", "100", "--duration", "30s", "--drain", "60s", "--run-id", run, "--prefix", prefix)
	waitRecords(t, kc, 0, 200, 30*time.Second, reportTopics...)

	began := time.Now()
	fail()
	broken := time.Now()
	t.Logf("fault injected in %s", broken.Sub(began).Round(time.Millisecond))
	// With brokers gone the end offsets may not be readable; they are only
	// logged.
	before, beforeErr := endOffsets(kc, reportTopics...)
	// Within the window, the 2 s probe interval and slack for 2 cores.
	limit := readinessWindow + 2*time.Second + 5*time.Second
	waitFor(t, limit, "/readyz 503 after writes started failing", func() error {
		if code, body := readiness(g.AdminAddr); code != 503 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	turned := time.Since(broken)
	_, body := readiness(g.AdminAddr)
	t.Logf("/readyz 503 %s after writes started failing: %s", turned.Round(time.Millisecond), body)
	// It must stay 503 while nothing is stored (the old readiness went
	// back to 200 once metadata answered), and nothing may be stored.
	producedBefore := producedTotal(t, g.AdminAddr)
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if code, body := readiness(g.AdminAddr); code != 503 {
			t.Errorf("/readyz %d %q %s after writes started failing, while no write succeeds", code, body,
				time.Since(broken).Round(time.Millisecond))
			break
		}
	}
	if n := producedTotal(t, g.AdminAddr) - producedBefore; n != 0 {
		t.Errorf("%v records stored while writes were broken and /readyz said 503", n)
	}
	if after, err := endOffsets(kc, reportTopics...); err == nil && beforeErr == nil && after != before {
		t.Logf("%d records stored while writes were broken", after-before)
	}

	heal()
	healed := time.Now()
	waitFor(t, 60*time.Second, "/readyz 200 after writes work again", func() error {
		if code, body := readiness(g.AdminAddr); code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	t.Logf("/readyz 200 %s after the fault was healed", time.Since(healed).Round(time.Millisecond))

	sum := sim.wait(3 * time.Minute)
	t.Logf("fleetsim run: %s", sum.brief())
	simVerify(t, kc, sim)
	if _, unacked, _ := sum.total(); unacked != 0 {
		t.Errorf("%d messages never acknowledged although writes came back", unacked)
	}
}

// TestReadinessTwoBrokersDown is issue 10's case: 3 nodes, replication
// factor 3, min.insync.replicas 2; two brokers stopped (SIGTERM) under
// load leave one broker answering metadata and every write failing.
// /readyz must be 503 within the window and stay so until they are back.
// Slow (FLEETGATE_SLOW=1): a 3-node cluster and two restarts.
func TestReadinessTwoBrokersDown(t *testing.T) {
	needSlow(t)
	kc := kafkatest.StartT(t, kafkatest.Options{Nodes: 3})
	isr := map[string]string{"min.insync.replicas": "2"}
	if err := createTopics(kc, 3, isr); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLEETGATE_KAFKA_READINESS_WINDOW", readinessWindow.String())
	g := startGateway(t, kc, gatewayConfig{DeliveryTimeout: 5 * time.Second, Admin: true, ReplicationFactor: 3, TopicConfig: isr})
	checkReadinessFollowsWrites(t, kc, g, "R2-",
		func() {
			for _, n := range []int{2, 3} {
				if err := kc.Stop(n); err != nil {
					t.Fatal(err)
				}
			}
		},
		func() {
			for _, n := range []int{2, 3} {
				if err := kc.Restart(n); err != nil {
					t.Fatal(err)
				}
			}
		})
}

// producedTotal is the sum of fleetgate_records_produced_total on the
// gateway's /metrics.
func producedTotal(t *testing.T, addr string) float64 {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "fleetgate_records_produced_total") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}
