package kafka

import (
	"testing"

	"github.com/rcrowley/go-metrics"
)

// TestDiscardMetrics: every kind of metric sarama registers comes back as
// go-metrics' no-op of that kind (sarama asserts the kind), and the
// producer's sarama configuration uses the registry.
func TestDiscardMetrics(t *testing.T) {
	r := discardMetrics{}
	cases := []struct {
		name string
		get  func() any
		want any
	}{
		{"meter", func() any { return metrics.GetOrRegisterMeter("m", r) }, metrics.NilMeter{}},
		{"histogram", func() any { return metrics.GetOrRegisterHistogram("h", r, metrics.NewUniformSample(1)) }, metrics.NilHistogram{}},
		{"counter", func() any { return metrics.GetOrRegisterCounter("c", r) }, metrics.NilCounter{}},
		{"gauge", func() any { return metrics.GetOrRegisterGauge("g", r) }, metrics.NilGauge{}},
		{"timer", func() any { return metrics.GetOrRegisterTimer("t", r) }, metrics.NilTimer{}},
		{"child registry", func() any { return metrics.GetOrRegisterMeter("m", metrics.NewPrefixedChildRegistry(r, "broker-1-")) }, metrics.NilMeter{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.get(); got != c.want {
				t.Fatalf("got %T, want %T", got, c.want)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	sc, err := saramaConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sc.MetricRegistry.(discardMetrics); !ok {
		t.Fatalf("sarama's registry is %T, want discardMetrics", sc.MetricRegistry)
	}
}
