package broker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
)

// recordSink keeps every record.
type recordSink struct {
	mu   sync.Mutex
	recs []*router.Record
}

func (s *recordSink) Produce(_ context.Context, rec *router.Record, done func(error)) error {
	s.mu.Lock()
	s.recs = append(s.recs, rec)
	s.mu.Unlock()
	done(nil)
	return nil
}

func (s *recordSink) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.recs {
		out = append(out, string(r.Value))
	}
	return out
}

// TestRulesReadMQTT5PropertiesAndSourceIP: the broker hands a PUBLISH's
// MQTT 5 properties and the client's address to the rules, which read them
// with get_mqtt_property, get_user_properties and sourceip(); an MQTT 3.1.1
// message has none of the properties.
func TestRulesReadMQTT5PropertiesAndSourceIP(t *testing.T) {
	rules, err := router.Compile([]router.RuleConfig{{
		Name: "props",
		SQL: `SELECT get_mqtt_property('content_type') AS ct, get_mqtt_property('format_indicator') AS fi,
			get_mqtt_property('response_topic') AS rt, get_mqtt_property('correlation_data') AS cd,
			get_user_properties('fleet') AS fleet, sourceip() AS ip FROM 'report'`,
		Actions: []router.ActionConfig{{Kafka: &router.KafkaActionConfig{Topic: "out"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordSink{}
	b := startBroker(t, router.NewEngine(rules, sink, router.Options{}, zap.NewNop()), nil)

	v5 := dialRaw(t, b.Addr("tcp"), "P5", 5)
	v5.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:   "report", PacketID: 1, Payload: []byte(`{}`),
		// The encoder writes the response topic and correlation data only
		// when told to (mochi encodes them for clients that asked).
		Mods: packets.Mods{AllowResponseInfo: true},
		Properties: packets.Properties{PayloadFormat: 1, PayloadFormatFlag: true, ContentType: "application/json",
			ResponseTopic: "reply/P5", CorrelationData: []byte("c1"),
			User: []packets.UserProperty{{Key: "fleet", Val: "north"}, {Key: "fleet", Val: "east"}}},
	})
	if pk := v5.read(5 * time.Second); pk.FixedHeader.Type != packets.Puback || pk.ReasonCode != 0 {
		t.Fatalf("v5: got type %d reason %#x, want a PUBACK", pk.FixedHeader.Type, pk.ReasonCode)
	}
	v4 := dialRaw(t, b.Addr("tcp"), "P4", 4)
	v4.publish(1, 1, "report", []byte(`{}`))
	if pk := v4.read(5 * time.Second); pk.FixedHeader.Type != packets.Puback {
		t.Fatalf("v4: got type %d, want a PUBACK", pk.FixedHeader.Type)
	}
	got := sink.values()
	want := []string{
		`{"ct":"application/json","fi":"UTF8_DATA","rt":"reply/P5","cd":"YzE=","fleet":["north","east"],"ip":"127.0.0.1"}`,
		`{"ip":"127.0.0.1"}`,
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("records\n got %q\nwant %q", got, want)
	}
}

// TestMQTTPropertiesOnlyWhenSent: a PUBLISH without the properties rules
// read costs the message no properties struct.
func TestMQTTPropertiesOnlyWhenSent(t *testing.T) {
	if p := mqttProperties(&packets.Properties{MessageExpiryInterval: 60, TopicAlias: 3}); p != nil {
		t.Errorf("no readable property: %+v, want nil", p)
	}
	p := mqttProperties(&packets.Properties{User: []packets.UserProperty{{Key: "k", Val: "v"}}})
	if p == nil || len(p.UserProperties) != 1 || p.UserProperties[0] != (router.UserProperty{Key: "k", Value: "v"}) || p.HasPayloadFormat {
		t.Errorf("user property only: %+v", p)
	}
	if p := mqttProperties(&packets.Properties{PayloadFormatFlag: true}); p == nil || !p.HasPayloadFormat || p.PayloadFormat != 0 {
		t.Errorf("format indicator 0: %+v", p)
	}
}
