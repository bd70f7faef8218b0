package broker

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"go.uber.org/zap"
)

// fanOut hands stored QoS 1/2 messages to the broker's own subscribers, as
// mochi would have done right after its own PUBACK had the hook not taken
// the message: the whole packet as received (every MQTT 5 property), with
// the message expiry counted from its arrival, and the publisher as its
// origin so that noLocal subscriptions of the publisher skip it. Retained
// messages are kept by the same path.
type fanOut struct {
	server *mqtt.Server
	log    *zap.Logger

	// mochi's InjectPacket takes the origin of a message from the client
	// that injects it. One inline client, renamed after each publisher
	// under mu, carries them all: fan-out only queues packets for the
	// subscribers' writers, so holding mu is short.
	mu sync.Mutex
	cl *mqtt.Client
}

func newFanOut(server *mqtt.Server, log *zap.Logger) *fanOut {
	return &fanOut{server: server, log: log, cl: server.NewClient(nil, mqtt.LocalListener, "", true)}
}

// publish fans t out for publisher cl.
func (f *fanOut) publish(cl *mqtt.Client, t *ticket) {
	pk := *t.fan
	if !pk.FixedHeader.Retain && !f.hasSubscribers(pk.TopicName) {
		return
	}
	if exp := pk.Properties.MessageExpiryInterval; exp > 0 {
		left := time.Duration(exp)*time.Second - time.Since(t.received)
		if left <= 0 {
			return // expired while Kafka stored it: neither delivered nor retained
		}
		pk.Properties.MessageExpiryInterval = uint32((left + time.Second - 1) / time.Second)
	}
	// The alias was the publisher's, resolved on arrival.
	pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = 0, false
	pk.FixedHeader.Dup = false
	f.mu.Lock()
	f.cl.ID = cl.ID
	f.cl.Properties.ProtocolVersion = cl.Properties.ProtocolVersion
	err := f.server.InjectPacket(f.cl, pk)
	f.mu.Unlock()
	if err != nil {
		f.log.Warn("mqtt fan-out failed", zap.String("client_id", cl.ID), zap.String("topic", pk.TopicName), zap.Error(err))
	}
}

func (f *fanOut) hasSubscribers(topic string) bool {
	subs := f.server.Topics.Subscribers(topic)
	return len(subs.Subscriptions) > 0 || len(subs.Shared) > 0 || len(subs.InlineSubscriptions) > 0
}
