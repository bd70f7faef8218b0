package broker

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// wsConn adapts a WebSocket connection to net.Conn for rawClient: MQTT over
// WebSocket carries the byte stream in binary messages.
type wsConn struct {
	*websocket.Conn
	r io.Reader
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r != nil {
			n, err := c.r.Read(p)
			if err != io.EOF {
				return n, err
			}
			c.r = nil
			if n > 0 {
				return n, nil
			}
		}
		_, r, err := c.NextReader()
		if err != nil {
			return 0, err
		}
		c.r = r
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func TestWebSocketListenerAcksAfterStore(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, func(c *Config) { c.WSListen = "127.0.0.1:0" })
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second}
	// mochi starts serving WebSocket on a goroutine of its own: poll until
	// it listens.
	var ws *websocket.Conn
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ws, _, err = d.Dial("ws://"+b.Addr("ws")+"/", nil); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("WebSocket handshake with mqtt.ws_listen: %v", err)
	}
	defer ws.Close()
	var conn net.Conn = &wsConn{Conn: ws}
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: 4}
	c.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "W1", Keepalive: 30, Clean: true},
	})
	if ack := c.read(3 * time.Second); ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("CONNACK over WebSocket: type %d code %#x", ack.FixedHeader.Type, ack.ReasonCode)
	}
	c.publish(1, 1, "report", []byte(`{"type":"log"}`))
	p.waitFor(t, 1)
	// (No "nothing yet" read here: a WebSocket read that times out breaks
	// the connection. The ack order is tested over TCP.)
	p.complete(0, nil)
	expectAck(t, c, 1)
}

func TestWebSocketBusyPortFailsTheStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	err = startError(t, func(c *Config) { c.WSListen = busy.Addr().String() })
	if err == nil || !strings.Contains(err.Error(), "mqtt.ws_listen") {
		t.Fatalf("Start on a busy WebSocket port: %v; want an error naming mqtt.ws_listen", err)
	}
}

// TestWebSocketSmallReadBufferTakesLongLinesAndLargeMessages: the 1 KiB
// read buffer (wsReadBuffer) reads an upgrade request with a header line
// several times its size, and messages of any size, split over frames and
// reads, whole and in order.
func TestWebSocketSmallReadBufferTakesLongLinesAndLargeMessages(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, func(c *Config) { c.WSListen = "127.0.0.1:0" })
	header := http.Header{"Cookie": {"session=" + strings.Repeat("c", 6*wsReadBuffer)}}
	c := dialWS(t, "ws://"+b.Addr("ws")+"/mqtt", &websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second}, header)
	if ack := c.connect("WSBIG", 30); ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("CONNACK after a %d-byte header line: type %d code %#x", len(header["Cookie"][0]), ack.FixedHeader.Type, ack.ReasonCode)
	}
	sizes := []int{10, wsReadBuffer - 20, wsReadBuffer + 1, 20 * wsReadBuffer, 300}
	for i, n := range sizes {
		payload := []byte(`{"pad":"` + strings.Repeat(string(rune('a'+i)), n) + `"}`)
		c.publish(uint16(i+1), 1, "report", payload)
		p.waitFor(t, i+1)
		p.mu.Lock()
		got := p.got[i].Payload
		p.mu.Unlock()
		if !bytes.Equal(got, payload) {
			t.Fatalf("message %d of %d bytes arrived as %d bytes", i+1, len(payload), len(got))
		}
		p.complete(i, nil)
		expectAck(t, c, uint16(i+1))
	}
}

// startError returns the error of Start of a broker with no TCP listener
// and mutate's configuration (New must succeed).
func startError(t *testing.T, mutate func(*Config)) error {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = ""
	mutate(&cfg)
	b, err := New(cfg, newFakePipeline(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return b.Start()
}
