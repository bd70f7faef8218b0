package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fleetgate/fleetgate/broker"
)

var (
	_ broker.LimitObserver = (*Metrics)(nil)
	_ BrokerState          = (*broker.Broker)(nil)
)

type fakeBroker struct{}

func (fakeBroker) Retained() (int64, int64) { return 2, 2048 }
func (fakeBroker) Queued() (int64, int64)   { return 5, 5000 }

func TestBrokerBounds(t *testing.T) {
	m := New()
	m.WatchBroker(fakeBroker{}, fakeBudget{}, broker.DropReasons, broker.RefusalReasons)
	m.BrokerDropped(broker.ReasonQueueSession)
	m.BrokerDropped(broker.ReasonQueueSession)
	m.ConnectionRefused("ws_origin")
	want := `
# HELP fleetgate_mqtt_queued_bytes Bytes of the queued messages.
# TYPE fleetgate_mqtt_queued_bytes gauge
fleetgate_mqtt_queued_bytes 5000
# HELP fleetgate_mqtt_queued_bytes_limit limits.max_queued_bytes.
# TYPE fleetgate_mqtt_queued_bytes_limit gauge
fleetgate_mqtt_queued_bytes_limit 4096
# HELP fleetgate_mqtt_retained_messages Retained messages the broker holds (mqtt.retained.max_messages).
# TYPE fleetgate_mqtt_retained_messages gauge
fleetgate_mqtt_retained_messages 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"fleetgate_mqtt_queued_bytes", "fleetgate_mqtt_queued_bytes_limit", "fleetgate_mqtt_retained_messages"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.bounds.dropped.WithLabelValues(broker.ReasonQueueSession)); got != 2 {
		t.Fatalf("queue_session_limit = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.bounds.dropped.WithLabelValues(broker.ReasonRetainDisabled)); got != 0 {
		t.Fatalf("retain_disabled = %v, want 0 (present before the first drop)", got)
	}
	if n := testutil.CollectAndCount(m.bounds.dropped); n != len(broker.DropReasons) {
		t.Fatalf("%d drop series, want one per reason (%d)", n, len(broker.DropReasons))
	}
	if got := testutil.ToFloat64(m.bounds.refused.WithLabelValues("ws_origin")); got != 1 {
		t.Fatalf("ws_origin = %v, want 1", got)
	}
}
