package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// retainGuard bounds mochi's retained store (mqtt.retained.*).
//
// Every message bound for the store passes it first: QoS 0 publishes and
// the broker's fan-out of stored QoS 1/2 messages in OnPublish, wills in
// OnWill. One it refuses has its retain flag cleared: it is still delivered
// to the subscribers of the moment, and stored in Kafka like any other, but
// not kept. The PUBACK is not affected (the message itself was stored).
// An empty retained message, which deletes a topic's retained message, is
// always let through.
//
// Admission reserves the message's size under the lock, so concurrent
// publishes cannot together pass a cap; OnRetainMessage then sets the
// topic's size from what mochi actually holds (the last of two concurrent
// writes to one topic wins there), and expiry removes it. A will with a
// delay (MQTT 5) is only checked when its client goes: it may never be
// sent (the client comes back in time), so it reserves nothing; when it is
// stored, OnRetainMessage removes it again if it no longer fits. It is
// safe for concurrent use.
type retainGuard struct {
	cfg    RetainedConfig
	topics *mqtt.TopicsIndex
	obs    LimitObserver
	log    *zap.Logger

	mu    sync.Mutex
	sizes map[string]int64 // topic -> bytes of its retained message
	total int64
}

func newRetainGuard(cfg RetainedConfig, topics *mqtt.TopicsIndex, obs LimitObserver, log *zap.Logger) *retainGuard {
	return &retainGuard{cfg: cfg, topics: topics, obs: obs, log: log, sizes: map[string]int64{}}
}

// onPublish returns pk with its retain flag cleared when it may not be kept.
func (g *retainGuard) onPublish(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if !pk.FixedHeader.Retain || pk.Ignore {
		return pk
	}
	if reason := g.admit(pk.TopicName, messageBytes(pk.TopicName, pk.Payload, pk.Properties), len(pk.Payload) == 0); reason != "" {
		pk.FixedHeader.Retain = false
		g.refused(cl, pk.TopicName, len(pk.Payload), reason)
	}
	return pk
}

// onWill returns will without its retain flag when it may not be kept.
func (g *retainGuard) onWill(cl *mqtt.Client, will mqtt.Will) mqtt.Will {
	if !will.Retain {
		return will
	}
	size := messageBytes(will.TopicName, will.Payload, packets.Properties{User: will.User})
	var reason string
	if will.WillDelayInterval > 0 {
		reason = g.check(will.TopicName, size)
	} else {
		reason = g.admit(will.TopicName, size, len(will.Payload) == 0)
	}
	if reason != "" {
		will.Retain = false
		g.refused(cl, will.TopicName, len(will.Payload), reason)
	}
	return will
}

// admit decides whether a retained message of size bytes for topic may be
// kept, and reserves its room if so. It returns the refusal's reason, or "".
func (g *retainGuard) admit(topic string, size int64, empty bool) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if empty {
		g.total -= g.sizes[topic]
		delete(g.sizes, topic)
		return ""
	}
	if reason := g.fits(topic, size); reason != "" {
		return reason
	}
	g.total += size - g.sizes[topic]
	g.sizes[topic] = size
	return ""
}

// check is admit without the reservation.
func (g *retainGuard) check(topic string, size int64) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fits(topic, size)
}

// fits says why a message of size bytes for topic may not be kept, or "".
// g.mu must be held.
func (g *retainGuard) fits(topic string, size int64) string {
	if !g.cfg.Enabled {
		return ReasonRetainDisabled
	}
	if size > g.cfg.MaxMessageBytes {
		return ReasonRetainedTooLarge
	}
	old, exists := g.sizes[topic]
	if !exists && len(g.sizes) >= g.cfg.MaxMessages {
		return ReasonRetainedCount
	}
	if g.total-old+size > g.cfg.MaxTotalBytes {
		return ReasonRetainedBytes
	}
	return ""
}

// stored sets topic's size from mochi's store after a write to it, and
// takes the message out again if it does not fit (a delayed will, which
// reserved nothing).
func (g *retainGuard) stored(topic string) {
	pk, ok := g.topics.Retained.Get(topic)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total -= g.sizes[topic]
	delete(g.sizes, topic)
	if !ok || len(pk.Payload) == 0 {
		return
	}
	n := messageBytes(topic, pk.Payload, pk.Properties)
	if reason := g.fits(topic, n); reason != "" {
		g.topics.RetainMessage(packets.Packet{TopicName: topic}) // an empty message deletes
		g.obs.BrokerDropped(reason)
		g.log.Info("retained message not kept", zap.String("reason", reason), zap.String("mqtt_topic", topic),
			zap.Int("payload_bytes", len(pk.Payload)))
		return
	}
	g.sizes[topic] = n
	g.total += n
}

// expired forgets an expired retained message.
func (g *retainGuard) expired(topic string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total -= g.sizes[topic]
	delete(g.sizes, topic)
}

// usage returns the retained messages and their bytes.
func (g *retainGuard) usage() (msgs, bytes int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return int64(len(g.sizes)), g.total
}

func (g *retainGuard) refused(cl *mqtt.Client, topic string, size int, reason string) {
	g.obs.BrokerDropped(reason)
	if reason == ReasonRetainDisabled {
		return // counted; not worth a line each
	}
	g.log.Info("retained message not kept", zap.String("reason", reason), zap.String("client_id", cl.ID),
		zap.String("remote", cl.Net.Remote), zap.String("mqtt_topic", topic), zap.Int("payload_bytes", size))
}
