package router

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

// RepublishActionConfig re-publishes the SELECT output to the embedded MQTT
// broker.
type RepublishActionConfig struct {
	Topic string `mapstructure:"topic" yaml:"topic"`
	QoS   byte   `mapstructure:"qos" yaml:"qos"`
}

// Publisher re-publishes a message to the embedded MQTT broker (the
// republish action). The broker package provides one.
type Publisher interface {
	Publish(topic string, payload []byte, qos byte) error
}

type republishAction struct {
	topic *iotsql.Template
	qos   byte
}

func (c *RepublishActionConfig) compile(env actionEnv) (Action, error) {
	if strings.TrimSpace(c.Topic) == "" {
		return nil, &fieldError{"topic", errors.New("a republish action needs a topic")}
	}
	if c.QoS > 1 {
		return nil, &fieldError{"qos", fmt.Errorf("qos %d; republish supports 0 and 1", c.QoS)}
	}
	t, err := env.template(c.Topic)
	if err != nil {
		return nil, &fieldError{"topic", err}
	}
	return &republishAction{topic: t, qos: c.QoS}, nil
}

// Start publishes value at once; a failure goes to the error action with
// reason republish_failed.
func (a *republishAction) Start(out Output, value []byte) {
	topic, err := a.publish(out, value)
	if err != nil {
		out.Fail("republish_failed", err)
		return
	}
	out.Trace(Trace{MQTTTopic: topic, QoS: a.qos, Payload: value})
}

// publish publishes value and returns the MQTT topic it went to.
func (a *republishAction) publish(out Output, value []byte) (string, error) {
	pub := out.Publisher()
	if pub == nil {
		return "", errors.New("republish is not available: no MQTT broker")
	}
	topic, err := a.topic.Eval(out.Env())
	if err != nil {
		return "", fmt.Errorf("republish topic template: %w", err)
	}
	if err := ValidTopicName(topic); err != nil {
		return "", fmt.Errorf("republish topic template: %w", err)
	}
	return topic, pub.Publish(topic, value, a.qos)
}

// ValidTopicName reports why topic cannot be published to over MQTT.
func ValidTopicName(topic string) error {
	if topic == "" {
		return errors.New("MQTT topic is empty")
	}
	for i := 0; i < len(topic); i++ {
		if topic[i] == '+' || topic[i] == '#' || topic[i] == 0 {
			return fmt.Errorf("MQTT topic %q has a wildcard or NUL at %d", topic, i)
		}
	}
	return nil
}
