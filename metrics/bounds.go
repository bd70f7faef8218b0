package metrics

import "github.com/prometheus/client_golang/prometheus"

// boundsMetrics are the series of the MQTT broker's bounds on its own
// state (retained messages, session queues) and on connections.
type boundsMetrics struct {
	dropped *prometheus.CounterVec
	refused *prometheus.CounterVec
}

// newBoundsMetrics registers the counters; WatchBroker sets their label
// values (broker.DropReasons, broker.RefusalReasons) to zero, handed over
// by the gateway so that this package need not import the broker.
func newBoundsMetrics(reg *prometheus.Registry) boundsMetrics {
	b := boundsMetrics{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "mqtt_broker_dropped_total",
			Help: "Messages the MQTT broker did not keep, by reason: retained messages refused (retain_disabled, retained_too_large, retained_count_limit, retained_bytes_limit; the message itself is still stored and delivered) and queued QoS 1/2 messages for subscribers dropped, oldest first (queue_session_limit, queue_total_limit), and messages not queued for a connected subscriber that does not read fast enough (write_queue_bytes: its QoS 0 bytes at mqtt.max_pending_write_bytes; write_queue_full: its mqtt.max_pending_writes packets taken).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "mqtt_connections_refused_total",
			Help: "MQTT connections closed before CONNECT, by reason: connect_timeout (no CONNECT within mqtt.connect_timeout, TLS handshake and WebSocket upgrade included), tls_handshake (failed TLS handshake), certificate_revoked (a client certificate listed by mqtt.tls.crl_file), ws_origin (WebSocket upgrade from an Origin not in mqtt.ws_allowed_origins), ws_upgrade (a request on a WebSocket listener that is not a valid upgrade).",
		}, []string{"reason"}),
	}
	reg.MustRegister(b.dropped, b.refused)
	return b
}

// BrokerDropped implements broker.LimitObserver.
func (m *Metrics) BrokerDropped(reason string) { m.bounds.dropped.WithLabelValues(reason).Inc() }

// ConnectionRefused implements broker.LimitObserver.
func (m *Metrics) ConnectionRefused(reason string) { m.bounds.refused.WithLabelValues(reason).Inc() }

// BrokerState is what the broker-state gauges read (broker.Broker).
type BrokerState interface {
	Retained() (msgs, bytes int64)
	Queued() (msgs, bytes int64)
}

// WatchBroker registers the broker-state gauges over src, with the limits
// of the queues (limits.max_queued_*) from queued, and sets the counters of
// the given reasons to zero. Call it once.
func (m *Metrics) WatchBroker(src BrokerState, queued InflightSource, dropReasons, refusalReasons []string) {
	for _, r := range dropReasons {
		m.bounds.dropped.WithLabelValues(r)
	}
	for _, r := range refusalReasons {
		m.bounds.refused.WithLabelValues(r)
	}
	maxMsgs, maxBytes := queued.Limits()
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		gauge("mqtt_retained_messages", "Retained messages the broker holds (mqtt.retained.max_messages).",
			func() float64 { n, _ := src.Retained(); return float64(n) }),
		gauge("mqtt_retained_bytes", "Bytes (topic + payload + user properties) of the retained messages (mqtt.retained.max_total_bytes).",
			func() float64 { _, n := src.Retained(); return float64(n) }),
		gauge("mqtt_queued_messages", "QoS 1/2 messages the broker holds for subscribers, all sessions (offline or awaiting PUBACK).",
			func() float64 { n, _ := src.Queued(); return float64(n) }),
		gauge("mqtt_queued_bytes", "Bytes of the queued messages.",
			func() float64 { _, n := src.Queued(); return float64(n) }),
		gauge("mqtt_queued_messages_limit", "limits.max_queued_messages.", func() float64 { return float64(maxMsgs) }),
		gauge("mqtt_queued_bytes_limit", "limits.max_queued_bytes.", func() float64 { return float64(maxBytes) }),
	)
}
