package broker

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// LimitObserver is told about the broker's bounds at work. If the Observer
// given to WithObserver also implements it, the broker uses it; its methods
// must be safe for concurrent use and cheap.
type LimitObserver interface {
	// BrokerDropped: a retained message was not kept, or a queued message
	// was dropped, for reason (the Reason* constants of bounds.go).
	BrokerDropped(reason string)
	// ConnectionRefused: a connection was closed before CONNECT, for
	// reason (RefusalReasons: connect_timeout, tls_handshake, certificate_revoked, ws_origin,
	// ws_upgrade).
	ConnectionRefused(reason string)
}

// Reasons given to LimitObserver.BrokerDropped.
const (
	// ReasonRetainDisabled: a retained message with mqtt.retained.enabled false.
	ReasonRetainDisabled = "retain_disabled"
	// ReasonRetainedTooLarge: over mqtt.retained.max_message_bytes.
	ReasonRetainedTooLarge = "retained_too_large"
	// ReasonRetainedCount: a new topic beyond mqtt.retained.max_messages.
	ReasonRetainedCount = "retained_count_limit"
	// ReasonRetainedBytes: beyond mqtt.retained.max_total_bytes.
	ReasonRetainedBytes = "retained_bytes_limit"
	// ReasonQueueSession: the oldest queued message of a session dropped at
	// mqtt.max_queued_messages or mqtt.max_queued_bytes.
	ReasonQueueSession = "queue_session_limit"
	// ReasonQueueTotal: the oldest queued message of all sessions dropped
	// at limits.max_queued_messages or limits.max_queued_bytes.
	ReasonQueueTotal = "queue_total_limit"
)

// DropReasons lists every reason given to LimitObserver.BrokerDropped.
var DropReasons = []string{ReasonRetainDisabled, ReasonRetainedTooLarge, ReasonRetainedCount, ReasonRetainedBytes,
	ReasonQueueSession, ReasonQueueTotal, ReasonWriteQueueBytes, ReasonWriteQueueFull}

// boundsHook enforces the keep-alive and session expiry caps, and hosts the
// retained guard and the queue accounting. It is added after the ingest
// hook, so it sees only the publishes that the ingest hook lets mochi
// handle (QoS 0, and the broker's own fan-out and republish). No later
// hook may reject a publish in OnPublish: a publish that a later hook
// rejected would keep the retained room the guard reserved for it (the
// write queue hook, after it, never rejects).
type boundsHook struct {
	mqtt.HookBase
	maxKeepAlive     uint16
	maxSessionExpiry uint32
	retained         *retainGuard
	queues           *queueAccounts
	log              *zap.Logger
}

// ID implements mqtt.Hook.
func (h *boundsHook) ID() string { return "fleetgate-bounds" }

// Provides implements mqtt.Hook.
func (h *boundsHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnPacketRead, mqtt.OnPublish, mqtt.OnWill, mqtt.OnRetainMessage, mqtt.OnRetainedExpired,
		mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnQosDropped, mqtt.OnPublishDropped,
		mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnClientExpired:
		return true
	}
	return false
}

// OnConnect implements mqtt.Hook: a keep-alive of 0 (none) or above
// mqtt.max_keep_alive becomes mqtt.max_keep_alive. mochi then sends it as
// Server Keep Alive in an MQTT 5 CONNACK and, for every version, closes a
// connection silent for 1.5 times it. A 3.1.1 client cannot be told: it is
// held to the maximum all the same.
func (h *boundsHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if ka := pk.Connect.Keepalive; ka == 0 || ka > h.maxKeepAlive {
		cl.State.Keepalive = h.maxKeepAlive
		cl.State.ServerKeepalive = true
	}
	return nil
}

// OnPacketRead implements mqtt.Hook: an MQTT 5 DISCONNECT may set a new
// session expiry, which mochi would keep uncapped.
func (h *boundsHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Disconnect && pk.Properties.SessionExpiryIntervalFlag &&
		pk.Properties.SessionExpiryInterval > h.maxSessionExpiry {
		pk.Properties.SessionExpiryInterval = h.maxSessionExpiry
	}
	return pk, nil
}

// OnPublish implements mqtt.Hook: the retained guard.
func (h *boundsHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	return h.retained.onPublish(cl, pk), nil
}

// OnWill implements mqtt.Hook: the retained guard.
func (h *boundsHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	return h.retained.onWill(cl, will), nil
}

// OnRetainMessage implements mqtt.Hook.
func (h *boundsHook) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, r int64) {
	h.retained.stored(pk.TopicName)
}

// OnRetainedExpired implements mqtt.Hook.
func (h *boundsHook) OnRetainedExpired(filter string) { h.retained.expired(filter) }

// OnQosPublish implements mqtt.Hook.
func (h *boundsHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, resends int) {
	h.queues.added(cl, pk)
}

// OnQosComplete implements mqtt.Hook.
func (h *boundsHook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	h.queues.removed(cl, pk.PacketID)
}

// OnQosDropped implements mqtt.Hook.
func (h *boundsHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	h.queues.removed(cl, pk.PacketID)
}

// OnPublishDropped implements mqtt.Hook: mochi rolled back a queued
// message without saying which.
func (h *boundsHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) { h.queues.resync(cl) }

// OnSessionEstablished implements mqtt.Hook: the session may have
// inherited queued messages.
func (h *boundsHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) { h.queues.resync(cl) }

// OnDisconnect implements mqtt.Hook.
func (h *boundsHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if expire && !cl.IsTakenOver() {
		h.queues.forget(cl)
	}
}

// OnClientExpired implements mqtt.Hook.
func (h *boundsHook) OnClientExpired(cl *mqtt.Client) { h.queues.forget(cl) }

// messageBytes is what a message held by the broker is counted as: topic,
// payload and the properties a client chooses the size of (user
// properties, content type, response topic, correlation data). Counting
// the payload alone let an MQTT 5 client fill a retained message or a
// queue with a one-byte payload and up to mqtt.max_packet_bytes of
// properties.
func messageBytes(topic string, payload []byte, p packets.Properties) int64 {
	n := int64(len(topic) + len(payload) + len(p.ContentType) + len(p.ResponseTopic) + len(p.CorrelationData))
	for _, u := range p.User {
		n += int64(len(u.Key) + len(u.Val))
	}
	return n
}

// WithQueueLimiter makes the messages queued for subscribers in all
// sessions together take room from l (limits.max_queued_*); at its bound
// the oldest queued message of any session is dropped. Default: only the
// per-session caps.
func WithQueueLimiter(l Limiter) Option { return func(op *options) { op.queued = l } }

// newBoundsHook builds the hook of bounds.go for server.
func newBoundsHook(cfg Config, server *mqtt.Server, op options, log *zap.Logger) *boundsHook {
	obs := limitObserverOf(op)
	return &boundsHook{
		maxKeepAlive:     uint16(cfg.MaxKeepAlive / time.Second),
		maxSessionExpiry: uint32(cfg.MaxSessionExpiry / time.Second),
		retained:         newRetainGuard(cfg.Retained, server.Topics, obs, log),
		queues:           newQueueAccounts(cfg.MaxQueuedMessages, cfg.MaxQueuedBytes, op.queued, &server.Info.Inflight, obs, log),
		log:              log,
	}
}

// Retained returns the retained messages held and their bytes (as counted
// against mqtt.retained.*).
func (b *Broker) Retained() (msgs, bytes int64) { return b.bounds.retained.usage() }

// Queued returns the QoS 1/2 messages held for subscribers in all sessions
// and their bytes (as counted against mqtt.max_queued_* and
// limits.max_queued_*).
func (b *Broker) Queued() (msgs, bytes int64) {
	m, n, _ := b.bounds.queues.usage()
	return m, n
}

// limitObserverOf returns the observer of op as a LimitObserver, or one
// that does nothing.
func limitObserverOf(op options) LimitObserver {
	if obs, ok := op.obs.(LimitObserver); ok {
		return obs
	}
	return nopLimitObserver{}
}

type nopLimitObserver struct{}

func (nopLimitObserver) BrokerDropped(string)     {}
func (nopLimitObserver) ConnectionRefused(string) {}
