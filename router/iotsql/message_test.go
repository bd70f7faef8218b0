package iotsql

import (
	"regexp"
	"strings"
	"testing"
)

func TestMessageFunctions(t *testing.T) {
	mqtt5 := testMessage(`{}`)
	mqtt5.SourceIP = "192.158.1.38"
	mqtt5.MQTT = &MQTTProperties{PayloadFormat: 1, HasPayloadFormat: true, ContentType: "application/json",
		ResponseTopic: "reply/D1", CorrelationData: []byte{0xde, 0xad},
		UserProperties: []UserProperty{{"fleet", "north"}, {"k", "1"}, {"fleet", "east"}}}
	t.Run("mqtt5", func(t *testing.T) {
		runDocCases(t, mqtt5, []docCase{
			{"sourceip()", "192.158.1.38", "AWS: sourceip example"},
			{"get_mqtt_property('content_type')", "application/json", "AWS: get_mqtt_property example"},
			{"get_mqtt_property('format_indicator')", "UTF8_DATA", "AWS: get_mqtt_property example"},
			{"get_mqtt_property('response_topic')", "reply/D1", "AWS: get_mqtt_property example"},
			{"get_mqtt_property('correlation_data')", "3q0=", "AWS: get_mqtt_property example (base64)"},
			{"get_mqtt_property('CONTENT_TYPE')", "application/json", ""},
			{"get_user_properties('fleet')", []any{"north", "east"}, "AWS: get_user_properties"},
			{"get_user_properties('none')", undef, ""},
		})
	})
	t.Run("mqtt311 and legacy", func(t *testing.T) {
		legacy := testMessage(`{"name": "content_type"}`)
		legacy.Source = "sts"
		runDocCases(t, legacy, []docCase{
			{"sourceip()", undef, "no address given"},
			{"get_mqtt_property('content_type')", undef, "no MQTT 5 properties"},
			{"get_mqtt_property('format_indicator')", undef, ""},
			{"get_mqtt_property(name)", undef, "a name computed per message"},
			{"traceid()", undef, "AWS: Undefined when the message was not sent over MQTT"},
		})
		unspecified := testMessage(`{}`)
		unspecified.MQTT = &MQTTProperties{HasPayloadFormat: true}
		runDocCases(t, unspecified, []docCase{{"get_mqtt_property('format_indicator')", "UNSPECIFIED_BYTES", ""}})
	})
	if _, err := ParseQuery("SELECT get_mqtt_property('expiry') FROM 't'"); err == nil || !strings.Contains(err.Error(), "get_mqtt_property: the name must be one of format_indicator, content_type, response_topic, correlation_data") {
		t.Errorf("unknown property: %v", err)
	}
}

// TestTraceID: traceid() is a UUID for an MQTT message, the same in the
// SELECT and the templates of one evaluation, a new one for each message.
func TestTraceID(t *testing.T) {
	q, err := ParseQuery("SELECT traceid() AS a, traceid() AS b FROM 't'")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ParseTemplate("${traceid()}")
	if err != nil {
		t.Fatal(err)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 3 {
		env := NewEnv(testMessage(`{}`))
		out, _, err := q.Eval(env)
		if err != nil {
			t.Fatal(err)
		}
		m := decodeObject(t, out)
		id, _ := m["a"].(string)
		if !uuid.MatchString(id) || m["b"] != id {
			t.Fatalf("traceid() = %v and %v", m["a"], m["b"])
		}
		if s, _ := tmpl.Eval(env); s != id {
			t.Errorf("template traceid() = %q, SELECT %q", s, id)
		}
		if seen[id] {
			t.Errorf("trace id %s repeated", id)
		}
		seen[id] = true
	}
}
