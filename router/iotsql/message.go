package iotsql

import (
	"encoding/base64"
	"strings"
	"time"
)

// Message is one incoming message as the rule engine sees it, whatever transport
// brought it. Payload must not be modified after the message is handed to the engine.
type Message struct {
	// Source names the input: "mqtt", "sts" or "csa".
	Source string
	// Topic is the MQTT topic the message was published to (for legacy input,
	// telematics.topic).
	Topic string
	// ClientID is the MQTT client id, or the device number for legacy input.
	ClientID string
	// Principal is the authenticated identity (username or certificate subject),
	// empty when anonymous.
	Principal string
	// Payload is the raw message body, normally a JSON object.
	Payload []byte
	// Received is when the gateway read the message; timestamp() returns it in ms.
	Received time.Time
	// SourceIP is the sender's IP address without port (sourceip()); empty
	// when the transport does not say.
	SourceIP string
	// TraceID identifies the message (traceid()). When it is empty, an MQTT
	// message gets a random UUID, the same for the whole evaluation.
	TraceID string
	// MQTT holds the MQTT 5 PUBLISH properties (get_mqtt_property); zero
	// for MQTT 3.1.1 and legacy input.
	MQTT MQTTProperties
}

// MQTTProperties are the MQTT 5 PUBLISH properties that rules can read.
type MQTTProperties struct {
	// PayloadFormat is the payload format indicator (0: unspecified bytes,
	// 1: UTF-8 text), meaningful when HasPayloadFormat.
	PayloadFormat    byte
	HasPayloadFormat bool
	// ContentType, ResponseTopic and CorrelationData are the properties of
	// those names; empty when absent.
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	// UserProperties are the user properties in the order sent.
	UserProperties []UserProperty
}

// UserProperty is one MQTT 5 user property.
type UserProperty struct {
	Key, Value string
}

// Functions of the message's metadata (the older ones, topic(), clientid()
// and principal(), are in funcs.go).

func messageFuncs() []*funcDef {
	return []*funcDef{
		{name: "sourceip", call: fnSourceIP},
		{name: "traceid", call: fnTraceID},
		{name: "get_mqtt_property", minArgs: 1, maxArgs: 1, call: fnGetMQTTProperty, check: checkGetMQTTProperty},
		{name: "get_user_properties", minArgs: 1, maxArgs: 1, call: fnGetUserProperties},
	}
}

// sourceip() is the sender's IP address as a String, Undefined when the
// transport did not give one.
func fnSourceIP(env *Env, _ *callExpr) (any, error) {
	if env.msg.SourceIP == "" {
		return undef, nil
	}
	return env.msg.SourceIP, nil
}

// traceid() is the message's trace id: the transport's, or for an MQTT
// message without one a random UUID fixed for the evaluation (the SELECT
// and every template see the same); Undefined for other input, as AWS
// gives it only for MQTT messages.
func fnTraceID(env *Env, _ *callExpr) (any, error) {
	if env.msg.TraceID != "" {
		return env.msg.TraceID, nil
	}
	if env.msg.Source != "mqtt" {
		return undef, nil
	}
	if env.traceID == "" {
		env.traceID = newUUID()
	}
	return env.traceID, nil
}

// mqttProperties are the names get_mqtt_property takes (AWS's).
var mqttProperties = []string{"format_indicator", "content_type", "response_topic", "correlation_data"}

func checkGetMQTTProperty(c *callExpr) (int, string) {
	if s, isStr, lit := literalString(c, 0); lit {
		for _, p := range mqttProperties {
			if isStr && strings.EqualFold(s, p) {
				return 0, ""
			}
		}
		return 0, "get_mqtt_property: the name must be one of " + strings.Join(mqttProperties, ", ")
	}
	return 0, ""
}

// get_mqtt_property(name) reads an MQTT 5 property of the message:
// format_indicator ("UNSPECIFIED_BYTES" or "UTF8_DATA"), content_type,
// response_topic (Strings) and correlation_data (base64 of its bytes, as
// AWS gives binary data). An absent property, an unknown name or a message
// without MQTT 5 properties gives Undefined.
func fnGetMQTTProperty(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	name, ok := v.(string)
	if !ok {
		return undef, nil
	}
	p := &env.msg.MQTT
	switch strings.ToLower(name) {
	case "format_indicator":
		if p.HasPayloadFormat {
			if p.PayloadFormat == 1 {
				return "UTF8_DATA", nil
			}
			return "UNSPECIFIED_BYTES", nil
		}
	case "content_type":
		if p.ContentType != "" {
			return p.ContentType, nil
		}
	case "response_topic":
		if p.ResponseTopic != "" {
			return p.ResponseTopic, nil
		}
	case "correlation_data":
		if p.CorrelationData != nil {
			return base64.StdEncoding.EncodeToString(p.CorrelationData), nil
		}
	}
	return undef, nil
}

// get_user_properties(key) is the Array of the values of the MQTT 5 user
// properties named key (AWS's function of that name), Undefined when there
// is none.
func fnGetUserProperties(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	key, ok := v.(string)
	if !ok {
		return undef, nil
	}
	var out []any
	for _, p := range env.msg.MQTT.UserProperties {
		if p.Key == key {
			out = append(out, p.Value)
		}
	}
	if out == nil {
		return undef, nil
	}
	return out, nil
}
