package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lookupSeries are the lookup tables' series, labelled by the configured
// table name (a bounded set).
type lookupSeries struct {
	rows        *prometheus.GaugeVec
	hits        *prometheus.CounterVec
	misses      *prometheus.CounterVec
	lastRefresh *prometheus.GaugeVec
	failures    *prometheus.CounterVec
}

func newLookupSeries(reg *prometheus.Registry) *lookupSeries {
	l := &lookupSeries{
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "lookup_rows",
			Help: "Rows held by each lookup table.",
		}, []string{"table"}),
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "lookup_hits_total",
			Help: "lookup() calls that found their key, by table.",
		}, []string{"table"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "lookup_misses_total",
			Help: "lookup() calls whose key is not in the table (the result is Undefined), by table.",
		}, []string{"table"}),
		lastRefresh: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "lookup_last_refresh_timestamp_seconds",
			Help: "When each lookup table last took new content (a file load, a batch of Kafka records), as a Unix time.",
		}, []string{"table"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "lookup_refresh_failures_total",
			Help: "File reloads and Kafka records refused (the table keeps its last good content), and consumer errors, by table.",
		}, []string{"table"}),
	}
	reg.MustRegister(l.rows, l.hits, l.misses, l.lastRefresh, l.failures)
	return l
}

// LookupRows implements lookup.Observer.
func (m *Metrics) LookupRows(table string, rows int) {
	m.lookups.rows.WithLabelValues(table).Set(float64(rows))
	// Seen once, the table's counters exist at zero for rates and alerts.
	m.lookups.hits.WithLabelValues(table)
	m.lookups.misses.WithLabelValues(table)
	m.lookups.failures.WithLabelValues(table)
}

// LookupHit implements lookup.Observer.
func (m *Metrics) LookupHit(table string) { m.lookups.hits.WithLabelValues(table).Inc() }

// LookupMiss implements lookup.Observer.
func (m *Metrics) LookupMiss(table string) { m.lookups.misses.WithLabelValues(table).Inc() }

// LookupRefreshed implements lookup.Observer.
func (m *Metrics) LookupRefreshed(table string, at time.Time) {
	m.lookups.lastRefresh.WithLabelValues(table).Set(float64(at.UnixNano()) / 1e9)
}

// LookupRefreshFailed implements lookup.Observer.
func (m *Metrics) LookupRefreshFailed(table string) { m.lookups.failures.WithLabelValues(table).Inc() }
