package broker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
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
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Pubrel:
		err = pk.PubrelEncode(&buf)
	default:
		err = fmt.Errorf("rawClient cannot write packet type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(buf.Bytes()); err != nil {
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
	hb, err := c.r.ReadByte()
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return packets.Packet{}
		}
		return packets.Packet{FixedHeader: packets.FixedHeader{Type: 255}}
	}
	var fh packets.FixedHeader
	if err := fh.Decode(hb); err != nil {
		c.t.Fatal(err)
	}
	n, err := binary.ReadUvarint(c.r)
	if err != nil {
		c.t.Fatal(err)
	}
	fh.Remaining = int(n)
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		c.t.Fatal(err)
	}
	pk := packets.Packet{FixedHeader: fh, ProtocolVersion: c.version}
	switch fh.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Pubrec:
		err = pk.PubrecDecode(body)
	case packets.Pubcomp:
		err = pk.PubcompDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Disconnect:
	}
	if err != nil {
		c.t.Fatalf("decode packet type %d: %v", fh.Type, err)
	}
	return pk
}
