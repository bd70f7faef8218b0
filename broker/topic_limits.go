package broker

import (
	"fmt"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/policy"
)

// TopicLimits is mqtt.topics: bounds on what one client can make the
// broker's topic tree hold. mochi's tree costs CPU quadratic in a topic's
// levels and some 600 bytes a level, per subscription and per retained
// message, so without bounds one SUBSCRIBE of a 256 KiB filter under a
// device's own cmd/<id>/# takes minutes of CPU and tens of MiB.
type TopicLimits struct {
	// MaxLevels is the most levels a topic name or filter may have
	// ($share/GROUP/ counts as two). Default 32.
	MaxLevels int `mapstructure:"max_levels"`
	// MaxBytes is the longest topic name or filter, in bytes. Default 1024.
	MaxBytes int `mapstructure:"max_bytes"`
	// MaxSubscriptions is how many subscriptions one client (session) may
	// hold. Default 100.
	MaxSubscriptions int `mapstructure:"max_subscriptions"`
}

func defaultTopicLimits() TopicLimits {
	return TopicLimits{MaxLevels: 32, MaxBytes: 1024, MaxSubscriptions: 100}
}

func (l TopicLimits) validate() error {
	switch {
	case l.MaxLevels < 1 || l.MaxLevels > 1024:
		return fmt.Errorf("mqtt.topics.max_levels: %d is out of range 1..1024", l.MaxLevels)
	case l.MaxBytes < 1 || l.MaxBytes > 65535:
		return fmt.Errorf("mqtt.topics.max_bytes: %d is out of range 1..65535", l.MaxBytes)
	case l.MaxSubscriptions < 1:
		return fmt.Errorf("mqtt.topics.max_subscriptions: %d must be at least 1", l.MaxSubscriptions)
	}
	return nil
}

// topicTooLongRule is the Decision.Rule of a topic beyond the limits.
const topicTooLongRule = "(topic beyond mqtt.topics.max_levels or max_bytes)"

// Reasons of a refusal by the limits (Observer.AccessRefused).
const (
	refuseTopicTooLong      = "topic_too_long"
	refuseSubscriptionLimit = "subscription_limit"
)

// fits tells whether topic is within the limits.
func (l TopicLimits) fits(topic string) bool {
	return len(topic) <= l.MaxBytes && strings.Count(topic, "/") < l.MaxLevels
}

// refusalReason is the Observer reason of a denied decision.
func refusalReason(d policy.Decision) string {
	if d.Rule == topicTooLongRule {
		return refuseTopicTooLong
	}
	return refuseNotAuthorized
}

// refusedFilter replaces a filter beyond mqtt.topics.max_subscriptions:
// mochi refuses it as invalid (SUBACK 0x8F, 0x80 for 3.1.1) before it
// reaches the topic tree or the policy.
const refusedFilter = "#/refused"

// OnSubscribe implements mqtt.Hook: filters that would take the client
// beyond mqtt.topics.max_subscriptions are refused (a filter it already
// holds is a replacement, not a new subscription).
func (h *authHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if cl.Net.Inline {
		return pk
	}
	n := cl.State.Subscriptions.Len()
	var filters packets.Subscriptions
	for i, f := range pk.Filters {
		if _, held := cl.State.Subscriptions.Get(f.Filter); held {
			continue
		}
		if n++; n <= h.cfg.Topics.MaxSubscriptions {
			continue
		}
		if filters == nil {
			filters = append(packets.Subscriptions(nil), pk.Filters...)
		}
		_, id, _ := h.decide(cl, policy.Subscribe, f.Filter)
		h.refused(cl, stageSubscribe, refuseSubscriptionLimit, id.username, id.principal, f.Filter,
			zap.Int("max_subscriptions", h.cfg.Topics.MaxSubscriptions))
		filters[i].Filter = refusedFilter
	}
	if filters != nil {
		pk.Filters = filters
	}
	return pk
}
