package broker

import (
	"bufio"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/test/mqttwire"
)

// rawClient speaks MQTT packet by packet with mochi's own codec, so tests
// can pipeline publishes and see every ack in the order it arrives, on both
// protocol versions (paho.mqtt.golang speaks only 3.1.1).
type rawClient struct {
	t       *testing.T
	conn    net.Conn
	r       *bufio.Reader
	version byte
}

func dialRaw(t *testing.T, addr, clientID string, version byte) *rawClient {
	t.Helper()
	return dialRawSession(t, addr, clientID, version, true)
}

// dialRawSession connects with clean session (clean start) as given.
func dialRawSession(t *testing.T, addr, clientID string, version byte, clean bool) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: version}
	name := []byte("MQTT")
	if version == 3 {
		name = []byte("MQIsdp")
	}
	c.write(packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: version,
		Connect:         packets.ConnectParams{ProtocolName: name, ClientIdentifier: clientID, Keepalive: 30, Clean: clean},
	})
	ack := c.read(5 * time.Second)
	if ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("connect %s: got packet type %d reason %#x", clientID, ack.FixedHeader.Type, ack.ReasonCode)
	}
	return c
}

func (c *rawClient) write(pk packets.Packet) {
	c.t.Helper()
	if pk.ProtocolVersion == 0 {
		pk.ProtocolVersion = c.version
	}
	b, err := mqttwire.Encode(pk)
	if err != nil {
		c.t.Fatal(err)
	}
	// A broker that stopped reading fails the test instead of hanging it.
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawClient) publish(id uint16, qos byte, topic string, payload []byte) {
	c.t.Helper()
	c.publishDup(id, qos, topic, payload, false)
}

// publishDup publishes with the DUP flag as given (a re-send).
func (c *rawClient) publishDup(id uint16, qos byte, topic string, payload []byte, dup bool) {
	c.t.Helper()
	c.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Dup: dup},
		TopicName:   topic, PacketID: id, Payload: payload,
	})
}

// read returns the next packet, or a packet of type 0 when none came within
// d, or type 255 when the connection closed.
func (c *rawClient) read(d time.Duration) packets.Packet {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	pk, err := mqttwire.ReadPacket(c.r, c.version)
	var ne net.Error
	switch {
	case err == nil:
		return pk
	case errors.Is(err, mqttwire.ErrDecode):
		c.t.Fatal(err)
	case errors.As(err, &ne) && ne.Timeout():
		return packets.Packet{}
	}
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: 255}}
}
