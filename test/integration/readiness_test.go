package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/config"
)

// TestReadinessFollowsWrites: every produce is refused with
// NOT_ENOUGH_REPLICAS while metadata answers (issue 10's min.insync.replicas
// case on the embedded broker). Under load /readyz must turn 503 within
// kafka.readiness_window and stay so while nothing is stored, and be 200
// again once writes succeed; the message held meanwhile is stored and
// acknowledged, not lost.
func TestReadinessFollowsWrites(t *testing.T) {
	const window = 2 * time.Second
	g := startAdminGateway(t, func(c *config.Config) {
		c.Kafka.ReadinessWindow = window
		c.Kafka.DeliveryTimeout = 30 * time.Second
	})
	admin := "http://" + g.AdminAddr()
	c := connect(t, g.MQTTAddr(), "D1")
	publish(t, c, "report", report("log", "D1", 1))
	if status, body := getStatus(t, admin+"/readyz"); status != 200 {
		t.Fatalf("/readyz with Kafka writing: %d %q", status, body)
	}

	recover := refuseProduce(g.Embedded().Cluster())
	refused := time.Now()
	tok := c.Publish("report", 1, false, report("log", "D1", 2))
	body := waitStatus(t, admin+"/readyz", 503, window+5*time.Second)
	t.Logf("/readyz 503 %s after writes began failing: %s", time.Since(refused).Round(time.Millisecond), body)
	if !strings.Contains(body, "none stored") {
		t.Errorf("/readyz body %q does not say writes fail", body)
	}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if status, body := getStatus(t, admin+"/readyz"); status != 503 {
			t.Fatalf("/readyz %d %q while every write fails", status, body)
		}
	}
	if tok.WaitTimeout(10 * time.Millisecond) {
		t.Fatalf("PUBACK while Kafka refused the write (err %v)", tok.Error())
	}

	recover()
	waitStatus(t, admin+"/readyz", 200, 15*time.Second)
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("no PUBACK after Kafka took writes again: %v", tok.Error())
	}
	if recs := consume(t, g.KafkaBrokers(), "message-log", 2); len(recs) != 2 {
		t.Fatalf("message-log holds %d records, want 2", len(recs))
	}
}
