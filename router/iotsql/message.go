package iotsql

import (
	"crypto/rand"
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
	// MQTT holds the MQTT 5 PUBLISH properties (get_mqtt_property); nil
	// when the PUBLISH had none (always for MQTT 3.1.1 and legacy input),
	// which keeps the Message small on the common path.
	MQTT *MQTTProperties
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

// Functions of the message's metadata: where it came from and how.

func messageFuncs() []*funcDef {
	return []*funcDef{
		{name: "topic", minArgs: 0, maxArgs: 1, call: fnTopic, check: checkTopic},
		{name: "clientid", call: fnClientID},
		{name: "principal", call: fnPrincipal},
		{name: "newuuid", call: fnNewUUID},
		{name: "index", call: fnIndex},
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

// traceid() is the message's trace id, for an MQTT message a random UUID
// fixed for the evaluation (the SELECT and every template see the same);
// Undefined for other input, as AWS gives it only for MQTT messages.
func fnTraceID(env *Env, _ *callExpr) (any, error) {
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
	name, ok, err := stringArg(env, c, 0)
	if err != nil || !ok {
		return undef, err
	}
	p := env.msg.MQTT
	if p == nil {
		return undef, nil
	}
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
	key, ok, err := stringArg(env, c, 0)
	if err != nil || !ok {
		return undef, err
	}
	if env.msg.MQTT == nil {
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

func checkTopic(c *callExpr) (int, string) {
	if len(c.args) == 1 {
		if l, ok := c.args[0].(*litExpr); ok {
			if n, ok := toInt(l.v); !ok || n < 1 {
				return 0, "topic: the level must be a number >= 1"
			}
		}
	}
	return 0, ""
}

// topic() is the message topic; topic(n) its n-th level, 1-based (Undefined when
// there is no such level).
func fnTopic(env *Env, c *callExpr) (any, error) {
	if len(c.args) == 0 {
		return env.msg.Topic, nil
	}
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	n, ok := toInt(v)
	if !ok || n < 1 {
		return undef, nil
	}
	t := env.msg.Topic
	for ; n > 1; n-- {
		i := strings.IndexByte(t, '/')
		if i < 0 {
			return undef, nil
		}
		t = t[i+1:]
	}
	if i := strings.IndexByte(t, '/'); i >= 0 {
		t = t[:i]
	}
	return t, nil
}

// clientid() is the MQTT client id, "n/a" when there is none.
func fnClientID(env *Env, _ *callExpr) (any, error) {
	if env.msg.ClientID == "" {
		return "n/a", nil
	}
	return env.msg.ClientID, nil
}

// principal() is the authenticated identity, Undefined for anonymous clients.
func fnPrincipal(env *Env, _ *callExpr) (any, error) {
	if env.msg.Principal == "" {
		return undef, nil
	}
	return env.msg.Principal, nil
}

// newuuid() is a random (version 4) UUID.
func fnNewUUID(*Env, *callExpr) (any, error) { return newUUID(), nil }

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // never fails (crypto/rand crashes the program instead)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
		j += 2
	}
	return string(b[:])
}

// index() is the 0-based position of the current element under a rule's
// foreach; Undefined elsewhere (fleetgate's own, IoT Core has no foreach).
func fnIndex(env *Env, _ *callExpr) (any, error) {
	if !env.inElem {
		return undef, nil
	}
	return int64(env.elemIdx), nil
}
