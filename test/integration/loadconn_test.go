package integration

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/test/mqttwire"
)

// loadConn is a raw MQTT 5 connection for load tests: it publishes QoS 1
// messages paced at a target rate, never more unacknowledged than its
// window (what a well-behaved client does with the broker's Receive
// Maximum), and tallies every PUBACK by reason code. Its memory does not
// grow with the messages it sends.
type loadConn struct {
	conn   net.Conn
	r      *bufio.Reader
	window chan struct{} // a token per unacknowledged message

	mu      sync.Mutex
	pending map[uint16]bool
	sent    int
	acked   int          // PUBACK reason 0
	failed  map[byte]int // PUBACK reason code >= 0x80 -> count
	closed  bool         // the broker closed the connection

	readDone chan struct{}
}

func dialLoad(t *testing.T, addr, clientID string, window int) *loadConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &loadConn{conn: conn, r: bufio.NewReader(conn), window: make(chan struct{}, window),
		pending: map[uint16]bool{}, failed: map[byte]int{}, readDone: make(chan struct{})}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Keepalive: 60, Clean: true}}
	b, err := mqttwire.Encode(pk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if fh, body, err := c.readPacket(); err != nil || fh.Type != packets.Connack || len(body) < 2 || body[1] != 0 {
		t.Fatalf("connect %s: type %d err %v", clientID, fh.Type, err)
	}
	conn.SetReadDeadline(time.Time{})
	go c.readLoop()
	return c
}

func (c *loadConn) readPacket() (packets.FixedHeader, []byte, error) {
	return mqttwire.ReadFrame(c.r)
}

func (c *loadConn) readLoop() {
	defer close(c.readDone)
	for {
		fh, body, err := c.readPacket()
		if err != nil {
			c.mu.Lock()
			c.closed = true
			c.mu.Unlock()
			return
		}
		if fh.Type != packets.Puback || len(body) < 2 {
			continue
		}
		id := binary.BigEndian.Uint16(body)
		reason := byte(0)
		if len(body) > 2 {
			reason = body[2]
		}
		c.mu.Lock()
		if c.pending[id] {
			delete(c.pending, id)
			if reason == 0 {
				c.acked++
			} else {
				c.failed[reason]++
			}
			<-c.window
		}
		c.mu.Unlock()
	}
}

// run publishes to topic at rate messages a second until stop closes,
// payloads made by payload(seq). It returns how many it was asked to
// offer (rate × time, whether or not the gateway let it) and how many it
// sent.
func (c *loadConn) run(stop <-chan struct{}, rate int, topic string, payload func(seq int) []byte) (offered, sent int) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	due := func() int { return int(time.Since(start).Seconds() * float64(rate)) }
	var buf bytes.Buffer
	for seq := 0; ; {
		select {
		case <-stop:
			return due(), seq
		case <-tick.C:
		}
		for n := due(); seq < n; seq++ {
			select {
			case c.window <- struct{}{}:
			case <-stop:
				return due(), seq
			}
			id := uint16(seq%65535 + 1)
			c.mu.Lock()
			c.pending[id] = true
			c.sent++
			c.mu.Unlock()
			buf.Reset()
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, ProtocolVersion: 5,
				TopicName: topic, PacketID: id, Payload: payload(seq)}
			if err := pk.PublishEncode(&buf); err != nil {
				panic(err)
			}
			if _, err := c.conn.Write(buf.Bytes()); err != nil {
				return due(), seq
			}
		}
	}
}

// settle waits until every sent message is answered or d passes, and
// returns the tally.
func (c *loadConn) settle(d time.Duration) (sent, acked int, failed map[byte]int, unanswered int) {
	deadline := time.Now().Add(d)
	for {
		c.mu.Lock()
		sent, acked, unanswered = c.sent, c.acked, len(c.pending)
		failed = map[byte]int{}
		for k, v := range c.failed {
			failed[k] = v
		}
		closed := c.closed
		c.mu.Unlock()
		if unanswered == 0 || closed || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *loadConn) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("sent %d acked %d failed %v pending %d closed %v", c.sent, c.acked, c.failed, len(c.pending), c.closed)
}
