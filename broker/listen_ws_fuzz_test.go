package broker

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// wsUpgradeHead is a valid MQTT WebSocket upgrade request without the
// blank line that ends it, for tests that speak WebSocket on a bare socket.
const wsUpgradeHead = "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n"

// FuzzWebSocketUpgrade feeds arbitrary bytes to the upgrade of an accepted
// connection: it must never panic, must end within the connect timeout,
// and may hand a connection to mochi only for a GET upgrade to websocket.
func FuzzWebSocketUpgrade(f *testing.F) {
	valid := wsUpgradeHead
	for _, s := range []string{
		valid + "\r\n",
		valid + "Origin: https://ok.example\r\n\r\n",
		valid + "Origin: https://evil.example\r\n\r\n",
		valid + "\r\n\x10\x0c\x00\x04MQTT\x04\x02\x00\x1e\x00\x00",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x16\x03\x01\x00\x05hello",
		"GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 100) + "\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	l, err := listenWS("ws", "127.0.0.1:0", 100*time.Millisecond, nil, []string{"https://ok.example"}, func(string, net.Addr, error) {})
	if err != nil {
		f.Fatal(err)
	}
	defer l.ln.Close()
	l.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		server, client := net.Pipe()
		defer client.Close()
		client.SetDeadline(time.Now().Add(2 * time.Second))
		go func() {
			client.Write(data)
			io.Copy(io.Discard, client)
		}()
		began := time.Now()
		ws := l.upgrade(server)
		if d := time.Since(began); d > time.Second {
			t.Fatalf("upgrade took %s with a 100ms connect timeout", d)
		}
		if ws == nil {
			return
		}
		defer ws.Close()
		lower := bytes.ToLower(data)
		if !bytes.HasPrefix(data, []byte("GET ")) || !bytes.Contains(lower, []byte("websocket")) || bytes.Contains(lower, []byte("evil")) {
			t.Fatalf("upgraded %q", data)
		}
	})
}
