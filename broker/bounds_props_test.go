package broker

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
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

// TestQueueCapsCountProperties: an offline session's queue cap counts the
// properties a message carries, not only its payload.
func TestQueueCapsCountProperties(t *testing.T) {
	const perSession = 300 << 10
	b := startBroker(t, autoPipeline{}, func(c *Config) {
		c.MaxQueuedMessages = 1000
		c.MaxQueuedBytes = perSession
	})
	addr := b.Addr("tcp")
	sub, _ := dialConnect(t, addr, packets.Packet{ProtocolVersion: 5,
		Properties: packets.Properties{SessionExpiryInterval: 600, SessionExpiryIntervalFlag: true},
		Connect:    packets.ConnectParams{ClientIdentifier: "QP-sub", Keepalive: 30}})
	sub.subscribeQoS("qp/#", 1)
	sub.conn.Close()
	waitOffline(t, b, "QP-sub")

	pub, _ := dialConnect(t, addr, packets.Packet{ProtocolVersion: 5,
		Connect: packets.ConnectParams{ClientIdentifier: "QP-pub", Keepalive: 30, Clean: true}})
	for i := uint16(1); i <= 40; i++ {
		pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName: "qp/t", PacketID: i, Payload: []byte("x"), Properties: bigProps(20 << 10)})
		expectAck(t, pub, i)
	}
	time.Sleep(300 * time.Millisecond) // the fan-out follows each PUBACK
	cl, ok := b.server.Clients.Get("QP-sub")
	if !ok {
		t.Fatal("session gone")
	}
	var held int64
	for _, pk := range cl.State.Inflight.GetAll(false) {
		held += int64(len(pk.Payload) + len(pk.TopicName) + len(pk.Properties.CorrelationData) +
			len(pk.Properties.ResponseTopic) + len(pk.Properties.ContentType))
	}
	t.Logf("held %d messages, %d bytes", len(cl.State.Inflight.GetAll(false)), held)
	if held > perSession {
		t.Fatalf("the offline session holds %d bytes of messages, cap mqtt.max_queued_bytes %d", held, perSession)
	}
}

// waitOffline polls until clientID's session is held but disconnected.
func waitOffline(t *testing.T, b *Broker, clientID string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if cl, ok := b.server.Clients.Get(clientID); ok && cl.Closed() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s not offline", clientID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
