package e2e

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/test/mqttwire"
)

// rawMQTT speaks MQTT packet by packet with mochi's codec, so a test can
// choose packet ids and the DUP flag itself, as terminal firmware does.
type rawMQTT struct {
	conn    net.Conn
	r       *bufio.Reader
	version byte
}

// dialMQTT connects with protocol version 4 (3.1.1) or 5, clean session as
// given, and checks the CONNACK. A version 5 client without a clean start
// asks for its session to outlive the connection by 5 minutes (without a
// Session Expiry Interval, MQTT 5 ends the session with the connection).
func dialMQTT(t *testing.T, addr, clientID string, version byte, clean bool) *rawMQTT {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawMQTT{conn: conn, r: bufio.NewReader(conn), version: version}
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: version,
		Connect:         packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Keepalive: 30, Clean: clean},
	}
	if version == 5 && !clean {
		pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = 300, true
	}
	c.write(t, pk)
	ack, err := c.read(10 * time.Second)
	if err != nil || ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("connect %s: %v, packet type %d, reason %#x", clientID, err, ack.FixedHeader.Type, ack.ReasonCode)
	}
	return c
}

func (c *rawMQTT) write(t *testing.T, pk packets.Packet) {
	t.Helper()
	if pk.ProtocolVersion == 0 {
		pk.ProtocolVersion = c.version
	}
	b, err := mqttwire.Encode(pk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// publish sends a QoS 1 PUBLISH to topic report.
func (c *rawMQTT) publish(id uint16, payload []byte, dup bool) {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Dup: dup},
		TopicName: "report", PacketID: id, Payload: payload, ProtocolVersion: c.version}
	if b, err := mqttwire.Encode(pk); err == nil {
		_, _ = c.conn.Write(b)
	}
}

// expectPuback reads the next packet and fails unless it is a successful
// PUBACK for id.
func (c *rawMQTT) expectPuback(t *testing.T, id uint16) {
	t.Helper()
	pk, err := c.read(20 * time.Second)
	if err != nil {
		t.Fatalf("waiting for PUBACK %d: %v", id, err)
	}
	if pk.FixedHeader.Type != packets.Puback || pk.PacketID != id || pk.ReasonCode >= 0x80 {
		t.Fatalf("got packet type %d id %d reason %#x, want a successful PUBACK for %d", pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode, id)
	}
}

func (c *rawMQTT) close() { c.conn.Close() }

// read returns the next packet.
func (c *rawMQTT) read(d time.Duration) (packets.Packet, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	return mqttwire.ReadPacket(c.r, c.version)
}
