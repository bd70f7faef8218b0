package broker

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// bigProps are MQTT 5 publish properties a client chooses the size of,
// besides the payload: what a hostile terminal would fill instead of it.
func bigProps(n int) packets.Properties {
	return packets.Properties{
		CorrelationData: bytes.Repeat([]byte("c"), n),
		ResponseTopic:   "resp/" + string(bytes.Repeat([]byte("r"), n)),
		ContentType:     string(bytes.Repeat([]byte("t"), n)),
	}
}

// TestRetainedCapsCountProperties: a retained message of a one-byte
// payload carrying 3 x 20 KiB of properties is as large as its packet;
// the guard counted only topic, payload and user properties, so 1,000 such
// messages held ~60 MiB under a 1 MiB cap.
func TestRetainedCapsCountProperties(t *testing.T) {
	obs := newLimitObserver()
	b := startBroker(t, autoPipeline{}, func(c *Config) {
		c.Retained = RetainedConfig{Enabled: true, MaxMessages: 1000, MaxMessageBytes: 1024, MaxTotalBytes: 1 << 20}
	}, WithObserver(obs))
	c, _ := dialConnect(t, b.Addr("tcp"), packets.Packet{ProtocolVersion: 5,
		Connect: packets.ConnectParams{ClientIdentifier: "RP", Keepalive: 30, Clean: true}})
	for i := 1; i <= 5; i++ {
		c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true},
			TopicName: fmt.Sprintf("rp/%d", i), Payload: []byte("x"), Properties: bigProps(20 << 10)})
	}
	deadline := time.Now().Add(3 * time.Second)
	for obs.drops(ReasonRetainedTooLarge) < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := obs.drops(ReasonRetainedTooLarge); n != 5 {
		m, bytes := b.Retained()
		t.Fatalf("%d retained_too_large counted, want 5; Retained() = %d messages, %d bytes (mochi holds %d)",
			n, m, bytes, len(b.server.Topics.Retained.GetAll()))
	}
	if m, _ := b.Retained(); m != 0 {
		t.Fatalf("Retained() = %d messages, want 0", m)
	}
}

// TestQueueCapsCountProperties: a session's queue counts the properties
// a queued message carries. (Today's republish drops them, so the broker
// test above cannot reach this; the accounts are checked directly.)
func TestQueueCapsCountProperties(t *testing.T) {
	const perSession = 100 << 10
	q := newQueueAccounts(1000, perSession, nil, new(int64), nopLimitObserver{}, zap.NewNop())
	cl := &mqtt.Client{ID: "QP"}
	cl.State.Inflight = mqtt.NewInflights()
	for i := uint16(1); i <= 10; i++ {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: i,
			TopicName: "qp/t", Payload: []byte("x"), Properties: bigProps(20 << 10)}
		cl.State.Inflight.Set(pk)
		q.added(cl, pk)
	}
	msgs, held, _ := q.usage()
	if held > perSession || msgs > 1 {
		t.Fatalf("the session holds %d messages, %d bytes counted; each is over 60 KiB, cap %d", msgs, held, perSession)
	}
	if n := cl.State.Inflight.Len(); n != 1 {
		t.Fatalf("mochi's store holds %d messages, want the newest only", n)
	}
}
