package metrics

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fleetgate/fleetgate/broker"
	"github.com/fleetgate/fleetgate/router"
)

// TestStartsAtZero: every series an alert takes increase() or rate() of
// exists at 0 before its first event (errors by every reason, error records
// and drops by every configured rule and reason). A series that first
// appears at 1 is invisible to increase(): FleetgateMessagesDropped would
// miss the first drop after a start.
func TestStartsAtZero(t *testing.T) {
	m := New()
	m.KnownRules([]string{"device-reports", "no-dlq"})
	reasons := router.PermanentReasons()
	for _, r := range slices.Concat(reasons, router.TransientReasons(), router.RefusalReasons()) {
		if got := testutil.ToFloat64(m.errors.WithLabelValues(r)); got != 0 {
			t.Errorf("errors{reason=%q} = %v", r, got)
		}
	}
	// ToFloat64 would create a missing child: count the children instead.
	want := 2 * len(reasons)
	if n := testutil.CollectAndCount(m.dropped); n != want {
		t.Errorf("fleetgate_messages_dropped_total has %d series at start, want %d (2 rules x %d reasons)", n, want, len(reasons))
	}
	if n := testutil.CollectAndCount(m.errorRecords); n != want {
		t.Errorf("fleetgate_error_records_total has %d series at start, want %d", n, want)
	}
	if n := testutil.CollectAndCount(m.errors); n != len(reasons)+len(router.TransientReasons())+len(router.RefusalReasons()) {
		t.Errorf("fleetgate_errors_total has %d series at start", n)
	}
	if n := testutil.CollectAndCount(m.refusals); n != len(broker.Refusals()) || n == 0 {
		t.Errorf("fleetgate_mqtt_refusals_total has %d series at start, want %d (broker.Refusals)", n, len(broker.Refusals()))
	}
	for _, r := range broker.Refusals() {
		if got := testutil.ToFloat64(m.refusals.WithLabelValues(r.Stage, r.Reason)); got != 0 {
			t.Errorf("mqtt_refusals_total{stage=%q,reason=%q} = %v", r.Stage, r.Reason, got)
		}
	}
	m.KnownTopics([]string{"message-log", "message-dlq"})
	if n := testutil.CollectAndCount(m.produced); n != 2 {
		t.Errorf("fleetgate_records_produced_total has %d series after KnownTopics, want 2", n)
	}
	if n := testutil.CollectAndCount(m.ackLatency); n != 3 {
		t.Errorf("fleetgate_ack_latency_seconds has %d series at start, want 3 (one per source)", n)
	}
	m.Dropped("no-dlq", router.ReasonUnknownTopic)
	if n := testutil.CollectAndCount(m.dropped); n != want {
		t.Errorf("a drop of a known rule and reason made a new series: %d series", n)
	}
	if got := testutil.ToFloat64(m.dropped.WithLabelValues("no-dlq", router.ReasonUnknownTopic)); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
}
