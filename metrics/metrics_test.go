package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fleetgate/fleetgate/broker"
	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/telematics"
)

// Metrics is the one observer of every part.
var (
	_ router.Observer     = (*Metrics)(nil)
	_ broker.Observer     = (*Metrics)(nil)
	_ telematics.Observer = (*Metrics)(nil)
	_ kafka.Observer      = (*Metrics)(nil)
)

type fakeBudget struct{ msgs, bytes int64 }

func (f fakeBudget) InUse() (int64, int64)  { return f.msgs, f.bytes }
func (f fakeBudget) Limits() (int64, int64) { return 100, 4096 }

func TestCounts(t *testing.T) {
	m := New()
	m.WatchInflight(fakeBudget{3, 300})
	m.WatchReadiness(func() error { return nil }, func() error { return nil })

	m.Message("mqtt")
	m.Message("mqtt")
	m.Message("sts")
	m.Unmatched("csa")
	m.ErrorRecord("device-reports", "eval_error")
	m.Dropped("no-dlq", "unknown_topic")
	m.Failed("mqtt")
	m.Refused(router.ReasonInflightLimit)
	m.Produced("message-log", 3*time.Millisecond)
	m.Produced("message-log", 4*time.Millisecond)
	m.Acked("mqtt", 5*time.Millisecond)
	m.ClientConnected()
	m.ClientConnected()
	m.ClientDisconnected()
	m.ClientRefused()
	m.Resent()
	m.Responded(200)
	m.Responded(503)
	m.RulesReloaded(true)
	m.RulesReloaded(false)
	m.RulesReloaded(false)

	cases := []struct {
		name string
		got  float64
		want float64
	}{
		{"received mqtt", testutil.ToFloat64(m.received.WithLabelValues("mqtt")), 2},
		{"received sts", testutil.ToFloat64(m.received.WithLabelValues("sts")), 1},
		{"unmatched csa", testutil.ToFloat64(m.unmatched.WithLabelValues("csa")), 1},
		{"errors eval_error", testutil.ToFloat64(m.errors.WithLabelValues("eval_error")), 1},
		{"errors unknown_topic", testutil.ToFloat64(m.errors.WithLabelValues("unknown_topic")), 1},
		{"errors kafka_unavailable", testutil.ToFloat64(m.errors.WithLabelValues(router.ReasonKafkaUnavailable)), 1},
		{"errors inflight_limit", testutil.ToFloat64(m.errors.WithLabelValues(router.ReasonInflightLimit)), 1},
		{"error records", testutil.ToFloat64(m.errorRecords.WithLabelValues("device-reports", "eval_error")), 1},
		{"dropped", testutil.ToFloat64(m.dropped.WithLabelValues("no-dlq", "unknown_topic")), 1},
		{"produced", testutil.ToFloat64(m.produced.WithLabelValues("message-log")), 2},
		{"connections", testutil.ToFloat64(m.connections), 1},
		{"connects", testutil.ToFloat64(m.connects), 2},
		{"auth failures", testutil.ToFloat64(m.authFailures), 1},
		{"resends", testutil.ToFloat64(m.resends), 1},
		{"responses 503", testutil.ToFloat64(m.responses.WithLabelValues("503")), 1},
		{"reloads failure", testutil.ToFloat64(m.reloads.WithLabelValues("failure")), 2},
		{"reloads success", testutil.ToFloat64(m.reloads.WithLabelValues("success")), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	want := `
# HELP fleetgate_inflight_messages Messages between arrival and the end of their Kafka produce, all inputs.
# TYPE fleetgate_inflight_messages gauge
fleetgate_inflight_messages 3
# HELP fleetgate_inflight_bytes_limit limits.max_inflight_bytes.
# TYPE fleetgate_inflight_bytes_limit gauge
fleetgate_inflight_bytes_limit 4096
# HELP fleetgate_ready 1 when /readyz answers 200: listeners up, Kafka reachable, not shutting down.
# TYPE fleetgate_ready gauge
fleetgate_ready 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"fleetgate_inflight_messages", "fleetgate_inflight_bytes_limit", "fleetgate_ready"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.ackLatency); n != 3 {
		t.Fatalf("ack latency series: %d, want 3 (mqtt, sts, csa from the start)", n)
	}
}

// TestLint runs Prometheus' own naming and help checks over every series.
func TestLint(t *testing.T) {
	m := New()
	m.WatchInflight(fakeBudget{})
	m.WatchReadiness(func() error { return nil }, func() error { return nil })
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "fleetgate_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// TestSeriesAreBounded: at start, before any traffic, the gateway exposes
// a fixed set of series; the labels that grow with traffic are listed.
func TestSeriesAreBounded(t *testing.T) {
	m := New()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"source": true, "reason": true, "rule": true, "topic": true, "code": true, "result": true, "stage": true}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "fleetgate_") {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if !allowed[l.GetName()] {
					t.Errorf("%s has label %q outside the bounded set", mf.GetName(), l.GetName())
				}
			}
		}
	}
}

// TestProducedNewTopic: a topic not known at start gets its series on its
// first record.
func TestProducedNewTopic(t *testing.T) {
	m := New()
	m.KnownTopics([]string{"message-log"})
	m.Produced("message-gps", time.Millisecond)
	m.Produced("message-gps", time.Millisecond)
	m.Produced("message-log", time.Millisecond)
	for topic, want := range map[string]float64{"message-gps": 2, "message-log": 1} {
		if got := testutil.ToFloat64(m.produced.WithLabelValues(topic)); got != want {
			t.Errorf("produced %s: %v, want %v", topic, got, want)
		}
	}
}

// BenchmarkPerMessageSeries is what the metrics cost each MQTT message
// stored: received, produced and the ack latency.
func BenchmarkPerMessageSeries(b *testing.B) {
	m := New()
	m.KnownTopics([]string{"message-log"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Message("mqtt")
			m.Produced("message-log", time.Millisecond)
			m.Acked("mqtt", time.Millisecond)
		}
	})
}
