// Package metrics counts what the gateway does, for Prometheus. Metrics
// implements the small observer interfaces that router, broker, telematics,
// kafka and gateway declare, so none of them imports Prometheus.
//
// Every series is prefixed fleetgate_ and every label has a bounded set of
// values: sources (mqtt, sts, csa), configured rule names, the short reason
// words of the error headers, HTTP status codes, and Kafka topics that exist
// in the cluster (the producer refuses any other before it gets here). No
// label ever carries a device id, a client id or a topic taken from a
// payload. docs/operations.md says what each series means.
package metrics

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fleetgate/fleetgate/broker"
	"github.com/fleetgate/fleetgate/router"
)

const namespace = "fleetgate"

var sources = []string{"mqtt", "sts", "csa"}

// latencyBuckets span a healthy acks=all round trip (a few ms) to a
// delivery timeout (30 s).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics holds the gateway's series in a registry of its own, so that
// several gateways in one test process do not collide. Its methods are safe
// for concurrent use and cheap: the series counted for every message are
// looked up once (bySource, producedBy), the others by label each time.
type Metrics struct {
	reg *prometheus.Registry

	bySource   map[string]sourceSeries // the known sources; read-only after New
	producedBy sync.Map                // topic -> prometheus.Counter of produced

	received       *prometheus.CounterVec
	unmatched      *prometheus.CounterVec
	errors         *prometheus.CounterVec
	errorRecords   *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	produced       *prometheus.CounterVec
	produceLatency prometheus.Histogram
	ackLatency     *prometheus.HistogramVec
	connections    prometheus.Gauge
	connects       prometheus.Counter
	disconnects    prometheus.Counter
	authFailures   prometheus.Counter
	refusals       *prometheus.CounterVec
	resends        prometheus.Counter
	responses      *prometheus.CounterVec
	reloads        *prometheus.CounterVec
	lookups        *lookupSeries // lookup.go
	bounds         boundsMetrics // bounds.go
}

// sourceSeries are the per-message series of one source.
type sourceSeries struct {
	received, unmatched prometheus.Counter
	ackLatency          prometheus.Observer
}

// New returns the gateway's metrics, with Go runtime and process series
// (go_*, process_*) registered beside them.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "messages_received_total",
			Help: "Messages handed to the rule engine, by source (mqtt, sts, csa).",
		}, []string{"source"}),
		unmatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "messages_unmatched_total",
			Help: "Messages no rule selected (acknowledged, nothing produced), by source.",
		}, []string{"source"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "errors_total",
			Help: "Failures by reason: a rule's permanent failure (the message goes to the error action) or a message not acknowledged (kafka_unavailable, delivery_timeout, inflight_limit).",
		}, []string{"reason"}),
		errorRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "error_records_total",
			Help: "Original payloads stored by a rule's error action, by rule and reason.",
		}, []string{"rule", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "messages_dropped_total",
			Help: "Messages acknowledged although a rule failed them and no error action could store them, by rule and reason.",
		}, []string{"rule", "reason"}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "records_produced_total",
			Help: "Records Kafka acknowledged, by topic.",
		}, []string{"topic"}),
		produceLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "kafka_produce_latency_seconds",
			Help:    "Time from handing a record to the producer to Kafka's acknowledgement (stored records only).",
			Buckets: latencyBuckets,
		}),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "ack_latency_seconds",
			Help:    "Time from reading a message to acknowledging it (PUBACK/PUBREC, HTTP 200), by source; its count is the acknowledged messages.",
			Buckets: latencyBuckets,
		}, []string{"source"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "mqtt_connections",
			Help: "MQTT clients connected now.",
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "mqtt_connects_total",
			Help: "MQTT connections established.",
		}),
		disconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "mqtt_disconnects_total",
			Help: "MQTT connections ended, for any reason.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "mqtt_auth_failures_total",
			Help: "MQTT connections refused by authentication.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "mqtt_refusals_total",
			Help: "MQTT refusals by authentication or policy, by stage (connect, publish, subscribe) and reason (docs/security.md).",
		}, []string{"stage", "reason"}),
		resends: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "mqtt_resends_total",
			Help: "QoS 1/2 re-sends (DUP) answered from their first copy instead of being stored again.",
		}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "telematics_responses_total",
			Help: "Responses of the legacy HTTPS endpoint, by status code.",
		}, []string{"code"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rule_reloads_total",
			Help: "Rule reloads by result (success, failure); a failed reload keeps the previous rules.",
		}, []string{"result"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.received, m.unmatched, m.errors, m.errorRecords, m.dropped, m.produced,
		m.produceLatency, m.ackLatency, m.connections, m.connects, m.disconnects,
		m.authFailures, m.resends, m.responses, m.reloads,
	)
	m.reg.MustRegister(m.refusals)
	m.bySource = make(map[string]sourceSeries, len(sources))
	for _, s := range sources {
		m.bySource[s] = sourceSeries{
			received:   m.received.WithLabelValues(s),
			unmatched:  m.unmatched.WithLabelValues(s),
			ackLatency: m.ackLatency.WithLabelValues(s),
		}
	}
	// Every reason starts at zero so that rates and alerts see the
	// series before the first error: a counter whose series appears at 1
	// is invisible to increase() and rate().
	for _, r := range slices.Concat(router.PermanentReasons(), router.TransientReasons(), router.RefusalReasons()) {
		m.errors.WithLabelValues(r)
	}
	m.bounds = newBoundsMetrics(m.reg)
	for _, r := range broker.Refusals() {
		m.refusals.WithLabelValues(r.Stage, r.Reason)
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.lookups = newLookupSeries(m.reg)
	return m
}

// KnownRules starts the per-rule series (fleetgate_error_records_total and
// fleetgate_messages_dropped_total) of every rule in names at zero, for every
// permanent-failure reason, so that the first error record or drop of a
// rule after a start or a reload is an increase that alerts see. Call it
// with the rules about to be installed, before they take traffic. Series of
// rules a reload removed stay (at their last value). Safe for concurrent use.
func (m *Metrics) KnownRules(names []string) {
	reasons := router.PermanentReasons()
	for _, rule := range names {
		for _, r := range reasons {
			m.errorRecords.WithLabelValues(rule, r)
			m.dropped.WithLabelValues(rule, r)
		}
	}
}

// KnownTopics starts fleetgate_records_produced_total of every topic in
// topics (those the gateway checked at start, or a reload's new ones) at
// zero, so that a rate over the first records written to a topic is not
// lost. Safe for concurrent use.
func (m *Metrics) KnownTopics(topics []string) {
	for _, t := range topics {
		m.producedOf(t)
	}
}

// producedOf is topic's fleetgate_records_produced_total, looked up by
// label only the first time: topics are the cluster's, a bounded set.
func (m *Metrics) producedOf(topic string) prometheus.Counter {
	if c, ok := m.producedBy.Load(topic); ok {
		return c.(prometheus.Counter)
	}
	c, _ := m.producedBy.LoadOrStore(topic, m.produced.WithLabelValues(topic))
	return c.(prometheus.Counter)
}

// Registry returns the registry to serve (promhttp.HandlerFor).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// InflightSource is what the in-flight gauges read (limits.Budget).
type InflightSource interface {
	InUse() (msgs, bytes int64)
	Limits() (msgs, bytes int64)
}

// WatchInflight registers the in-flight gauges over src: messages and bytes
// held now, and their limits. Call it once.
func (m *Metrics) WatchInflight(src InflightSource) {
	maxMsgs, maxBytes := src.Limits()
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "inflight_messages",
			Help: "Messages between arrival and the end of their Kafka produce, all inputs.",
		}, func() float64 { n, _ := src.InUse(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "inflight_bytes",
			Help: "Payload bytes of the in-flight messages.",
		}, func() float64 { _, n := src.InUse(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "inflight_messages_limit",
			Help: "limits.max_inflight_messages.",
		}, func() float64 { return float64(maxMsgs) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "inflight_bytes_limit",
			Help: "limits.max_inflight_bytes.",
		}, func() float64 { return float64(maxBytes) }),
	)
}

// WatchReadiness registers fleetgate_ready (what /readyz answers) and
// fleetgate_kafka_reachable, each 1 when its check returns nil. The checks
// must be cheap (cached). Call it once.
func (m *Metrics) WatchReadiness(ready, kafka func() error) {
	up := func(check func() error) func() float64 {
		return func() float64 {
			if check() != nil {
				return 0
			}
			return 1
		}
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "ready",
			Help: "1 when /readyz answers 200: listeners up, Kafka reachable, not shutting down.",
		}, up(ready)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "kafka_reachable",
			Help: "1 when a Kafka broker answered the last metadata probe (every few seconds).",
		}, up(kafka)),
	)
}

// Message implements router.Observer.
func (m *Metrics) Message(source string) {
	if s, ok := m.bySource[source]; ok {
		s.received.Inc()
		return
	}
	m.received.WithLabelValues(source).Inc()
}

// Unmatched implements router.Observer.
func (m *Metrics) Unmatched(source string) {
	if s, ok := m.bySource[source]; ok {
		s.unmatched.Inc()
		return
	}
	m.unmatched.WithLabelValues(source).Inc()
}

// ErrorRecord implements router.Observer.
func (m *Metrics) ErrorRecord(rule, reason string) {
	m.errors.WithLabelValues(reason).Inc()
	m.errorRecords.WithLabelValues(rule, reason).Inc()
}

// Dropped implements router.Observer.
func (m *Metrics) Dropped(rule, reason string) {
	m.errors.WithLabelValues(reason).Inc()
	m.dropped.WithLabelValues(rule, reason).Inc()
}

// Failed implements router.Observer: a transient failure, counted as
// kafka_unavailable.
func (m *Metrics) Failed(string) { m.errors.WithLabelValues(router.ReasonKafkaUnavailable).Inc() }

// Produced implements kafka.Observer.
func (m *Metrics) Produced(topic string, latency time.Duration) {
	m.producedOf(topic).Inc()
	m.produceLatency.Observe(latency.Seconds())
}

// Acked implements broker.Observer and telematics.Observer.
func (m *Metrics) Acked(source string, latency time.Duration) {
	if s, ok := m.bySource[source]; ok {
		s.ackLatency.Observe(latency.Seconds())
		return
	}
	m.ackLatency.WithLabelValues(source).Observe(latency.Seconds())
}

// Refused implements broker.Observer and the gateway's ingest observer: a
// message not acknowledged for reason (router.ReasonDeliveryTimeout,
// router.ReasonInflightLimit).
func (m *Metrics) Refused(reason string) { m.errors.WithLabelValues(reason).Inc() }

// ClientConnected implements broker.Observer.
func (m *Metrics) ClientConnected() {
	m.connects.Inc()
	m.connections.Inc()
}

// ClientDisconnected implements broker.Observer.
func (m *Metrics) ClientDisconnected() {
	m.disconnects.Inc()
	m.connections.Dec()
}

// ClientRefused implements broker.Observer.
func (m *Metrics) ClientRefused() { m.authFailures.Inc() }

// AccessRefused implements broker.Observer: fleetgate_mqtt_refusals_total.
func (m *Metrics) AccessRefused(stage, reason string) {
	m.refusals.WithLabelValues(stage, reason).Inc()
}

// Resent implements broker.Observer.
func (m *Metrics) Resent() { m.resends.Inc() }

// Responded implements telematics.Observer.
func (m *Metrics) Responded(status int) { m.responses.WithLabelValues(strconv.Itoa(status)).Inc() }

// RulesReloaded counts a rules reload: ok is whether the new rules were
// installed.
func (m *Metrics) RulesReloaded(ok bool) {
	result := "success"
	if !ok {
		result = "failure"
	}
	m.reloads.WithLabelValues(result).Inc()
}
