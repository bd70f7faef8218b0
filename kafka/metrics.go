package kafka

import (
	"reflect"

	"github.com/rcrowley/go-metrics"
)

// discardMetrics is a go-metrics registry that keeps nothing: sarama
// records histograms and meters for every request and record (sample
// reservoirs behind a mutex, about 3% of the gateway's CPU with the
// embedded broker), and nothing reads them; the gateway's own Prometheus
// series say what an operator needs. Unlike metrics.UseNilMetrics it is
// not process-wide state. Safe for concurrent use (it has no state).
type discardMetrics struct{}

// GetOrRegister implements metrics.Registry: the no-op metric of the kind
// asked for. sarama asks with a constructor (metrics.NewMeter, a func
// returning a Histogram, ...) and asserts the kind of the result.
func (discardMetrics) GetOrRegister(_ string, i any) any {
	if m, ok := noopMetrics[reflect.TypeOf(i)]; ok {
		return m
	}
	return i // a metric itself, or a kind go-metrics does not define
}

// noopMetrics is go-metrics' no-op metric by the type of the constructor
// that asks for its kind.
var noopMetrics = map[reflect.Type]any{
	reflect.TypeFor[func() metrics.Meter]():        metrics.NilMeter{},
	reflect.TypeFor[func() metrics.Histogram]():    metrics.NilHistogram{},
	reflect.TypeFor[func() metrics.Counter]():      metrics.NilCounter{},
	reflect.TypeFor[func() metrics.Gauge]():        metrics.NilGauge{},
	reflect.TypeFor[func() metrics.GaugeFloat64](): metrics.NilGaugeFloat64{},
	reflect.TypeFor[func() metrics.Timer]():        metrics.NilTimer{},
}

// Each implements metrics.Registry: there is nothing to visit.
func (discardMetrics) Each(func(string, any)) {}

// Get implements metrics.Registry: nothing is registered.
func (discardMetrics) Get(string) any { return nil }

// GetAll implements metrics.Registry.
func (discardMetrics) GetAll() map[string]map[string]any { return nil }

// Register implements metrics.Registry: the metric is dropped.
func (discardMetrics) Register(string, any) error { return nil }

// RunHealthchecks implements metrics.Registry.
func (discardMetrics) RunHealthchecks() {}

// Unregister implements metrics.Registry.
func (discardMetrics) Unregister(string) {}

// UnregisterAll implements metrics.Registry.
func (discardMetrics) UnregisterAll() {}
