package broker

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/router"
)

// A message the engine refused (stored in the error topic, router.Refusal)
// gets PUBACK 0x87 on MQTT 5 and a plain PUBACK on 3.1.1, which keeps its
// connection; the messages after it are acknowledged as usual.
func TestRefusalIsAcknowledgedWithNotAuthorized(t *testing.T) {
	refusal := &router.Refusal{Reason: router.ReasonIdentityMismatch, Principal: "devA", Claimed: "devB"}
	for _, tc := range []struct {
		version byte
		qos     byte
		want    byte
		typ     byte
	}{
		{5, 1, packets.ErrNotAuthorized.Code, packets.Puback},
		{5, 2, packets.ErrNotAuthorized.Code, packets.Pubrec},
		{4, 1, 0, packets.Puback},
		{4, 2, 0, packets.Pubrec},
	} {
		p := newFakePipeline()
		b := startBroker(t, p, nil)
		c := dialRaw(t, b.Addr("tcp"), "devA", tc.version)
		c.publish(1, tc.qos, "report", []byte(`{"device_no":"devB"}`))
		c.publish(2, 1, "report", []byte(`{"device_no":"devA"}`))
		p.waitFor(t, 2)
		p.complete(0, refusal)
		p.complete(1, nil)
		pk := c.read(2 * time.Second)
		if pk.FixedHeader.Type != tc.typ || pk.PacketID != 1 || pk.ReasonCode != tc.want {
			t.Fatalf("v%d qos %d: got type %d id %d reason %#x; want type %d id 1 reason %#x",
				tc.version, tc.qos, pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode, tc.typ, tc.want)
		}
		if tc.version == 5 && pk.Properties.ReasonString != router.ReasonIdentityMismatch {
			t.Fatalf("reason string %q", pk.Properties.ReasonString)
		}
		if pk := c.read(2 * time.Second); pk.FixedHeader.Type != packets.Puback || pk.PacketID != 2 || pk.ReasonCode != 0 {
			t.Fatalf("v%d: got type %d id %d reason %#x; want a success PUBACK for 2", tc.version, pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
		}
	}
}

// TestRefusalsGiveBackReceiveQuota: the receive quota an MQTT 5 message
// takes comes back when the engine refuses it, so that a client whose
// messages are refused more often than mqtt.max_inflight is not
// disconnected for exceeding Receive Maximum (0x93).
func TestRefusalsGiveBackReceiveQuota(t *testing.T) {
	b := startBroker(t, verdictPipeline{}, func(c *Config) { c.MaxInflight = 8 })
	c := dialRaw(t, b.Addr("tcp"), "devA", 5)
	for i := 1; i <= 20; i++ {
		c.publish(uint16(i), 1, "report", []byte("refuse"))
		if pk := c.read(2 * time.Second); pk.FixedHeader.Type != packets.Puback || pk.PacketID != uint16(i) || pk.ReasonCode != packets.ErrNotAuthorized.Code {
			t.Fatalf("refused message %d: got type %d id %d reason %#x; want PUBACK %d 0x87", i, pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode, i)
		}
	}
	c.publish(21, 1, "report", []byte("ok"))
	expectAck(t, c, 21)
}

// verdictPipeline answers each message on a goroutine of its own, by the
// first word of its payload: "fail" (not stored), "refuse" (refused by the
// rule engine), anything else stored.
type verdictPipeline struct{}

func (verdictPipeline) Process(_ context.Context, msg *router.Message, done func(error)) {
	var err error
	switch {
	case bytes.HasPrefix(msg.Payload, []byte("fail")):
		err = errors.New("kafka rejected the record")
	case bytes.HasPrefix(msg.Payload, []byte("refuse")):
		err = &router.Refusal{Reason: router.ReasonIdentityMismatch, Principal: "devA", Claimed: "devB"}
	}
	go done(err)
}
