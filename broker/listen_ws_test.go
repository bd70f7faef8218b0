package broker

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/tlsconf/tlstest"
)

// limitObserver records what the broker reports through LimitObserver.
type limitObserver struct {
	countingObserver
	lmu     sync.Mutex
	dropped map[string]int
	refused map[string]int
}

func newLimitObserver() *limitObserver {
	return &limitObserver{countingObserver: *newCountingObserver(), dropped: map[string]int{}, refused: map[string]int{}}
}

func (o *limitObserver) BrokerDropped(reason string) {
	o.lmu.Lock()
	o.dropped[reason]++
	o.lmu.Unlock()
}

func (o *limitObserver) ConnectionRefused(reason string) {
	o.lmu.Lock()
	o.refused[reason]++
	o.lmu.Unlock()
}

func (o *limitObserver) drops(reason string) int {
	o.lmu.Lock()
	defer o.lmu.Unlock()
	return o.dropped[reason]
}

func (o *limitObserver) refusedConns(reason string) int {
	o.lmu.Lock()
	defer o.lmu.Unlock()
	return o.refused[reason]
}

// closedWithin reports whether the server closes c within d (c never
// writes).
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		ne, ok := err.(net.Error)
		return !(ok && ne.Timeout())
	}
}

func dialWS(t *testing.T, url string, d *websocket.Dialer, header http.Header) *rawClient {
	t.Helper()
	ws, _, err := d.Dial(url, header)
	if err != nil {
		t.Fatalf("WebSocket handshake with %s: %v", url, err)
	}
	t.Cleanup(func() { ws.Close() })
	var conn net.Conn = &wsConn{Conn: ws}
	return &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: 4}
}

func (c *rawClient) connect(clientID string, keepalive uint16) packets.Packet {
	c.t.Helper()
	c.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: c.version,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Keepalive: keepalive, Clean: true},
	})
	return c.read(3 * time.Second)
}

// TestWebSocketConnectTimeout: a socket that never upgrades, and one that
// upgrades but never sends CONNECT, are both closed at mqtt.connect_timeout
// (the issue: 4,000 of them stayed open for over a minute); a client that
// sent CONNECT stays.
func TestWebSocketConnectTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	obs := newLimitObserver()
	b := startBroker(t, newFakePipeline(), func(c *Config) {
		c.WSListen = "127.0.0.1:0"
		c.ConnectTimeout = timeout
	}, WithObserver(obs))
	addr := b.Addr("ws")
	good := dialWS(t, "ws://"+addr+"/mqtt", &websocket.Dialer{Subprotocols: []string{"mqtt"}}, nil)
	if ack := good.connect("WSGOOD", 30); ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("CONNACK: type %d code %#x", ack.FixedHeader.Type, ack.ReasonCode)
	}

	const n = 50
	var silent, upgraded []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
		ws, _, err := (&websocket.Dialer{Subprotocols: []string{"mqtt"}}).Dial("ws://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		upgraded = append(upgraded, ws.UnderlyingConn())
	}
	began := time.Now()
	for i := 0; i < n; i++ {
		if !closedWithin(silent[i], 5*time.Second) {
			t.Fatalf("a WebSocket socket that never sent the upgrade is open 5s after a %s connect timeout", timeout)
		}
		if !closedWithin(upgraded[i], 5*time.Second) {
			t.Fatalf("a WebSocket connection that never sent CONNECT is open 5s after a %s connect timeout", timeout)
		}
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("silent WebSocket connections closed after %s, want about %s", d, timeout)
	}
	good.publish(1, 0, "report", []byte(`{}`))
	if pk := good.read(time.Second); pk.FixedHeader.Type == 255 {
		t.Fatal("a connected WebSocket client was cut by the connect timeout")
	}
	waitCount(t, "connect_timeout refusals", func() int { return obs.refusedConns(reasonConnectTimeout) }, 2*n)
}

// waitCount polls until count() reaches want, and fails if it passes it.
func waitCount(t *testing.T, what string, count func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for count() < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := count(); got != want {
		t.Fatalf("%d %s counted, want %d", got, what, want)
	}
}

// TestRefusalsBeforeConnectAreCounted: on the TCP and TLS listeners, a
// connection that sends no CONNECT in time and a failed TLS handshake are
// counted by reason; a client that just connects and leaves (a load
// balancer's health check) is not.
func TestRefusalsBeforeConnectAreCounted(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "count")
	server := ca.Server(t, dir, "server")
	obs := newLimitObserver()
	b := startBroker(t, newFakePipeline(), func(c *Config) {
		c.TLSListen = "127.0.0.1:0"
		c.TLS = TLSConfig{CertFile: server.CertFile, KeyFile: server.KeyFile}
		c.ConnectTimeout = 300 * time.Millisecond
	}, WithObserver(obs))
	for _, addr := range []string{b.Addr("tcp"), b.Addr("tls")} {
		silent, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		probe, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		probe.Close()
	}
	if _, ok := tlstest.OpenSSL(t, b.Addr("tls"), "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA", "-servername", "localhost"); ok {
		t.Fatal("CBC suite accepted")
	}
	waitCount(t, "connect_timeout refusals", func() int { return obs.refusedConns(reasonConnectTimeout) }, 2)
	waitCount(t, "tls_handshake refusals", func() int { return obs.refusedConns(reasonTLSHandshake) }, 1)
}

// TestWebSocketUpgradeTooLarge: an endless upgrade request is cut at
// maxUpgradeBytes, not read until the deadline.
func TestWebSocketUpgradeTooLarge(t *testing.T) {
	b := startBroker(t, newFakePipeline(), func(c *Config) { c.WSListen = "127.0.0.1:0" })
	c, err := net.Dial("tcp", b.Addr("ws"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n", strings.Repeat("a", 2*maxUpgradeBytes))
	if !closedWithin(c, 3*time.Second) {
		t.Fatal("an oversized upgrade request was not refused")
	}
}

func TestWebSocketOriginAllowList(t *testing.T) {
	obs := newLimitObserver()
	b := startBroker(t, newFakePipeline(), func(c *Config) {
		c.WSListen = "127.0.0.1:0"
		c.WSAllowedOrigins = []string{"https://console.example.com"}
	}, WithObserver(obs))
	url := "ws://" + b.Addr("ws") + "/"
	d := &websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 3 * time.Second}
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"https://console.example.com", true},
		{"HTTPS://Console.Example.com/", true},
		{"", true}, // a terminal sends no Origin
		{"https://evil.example.net", false},
		{"http://console.example.com", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		ws, resp, err := d.Dial(url, h)
		if tc.ok {
			if err != nil {
				t.Fatalf("origin %q refused: %v", tc.origin, err)
			}
			ws.Close()
			continue
		}
		if err == nil {
			ws.Close()
			t.Fatalf("origin %q accepted", tc.origin)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q: %v, want 403", tc.origin, err)
		}
	}
	// The refusal is counted once the 403 is written, which the client may
	// read first.
	for deadline := time.Now().Add(5 * time.Second); obs.refusedConns(reasonWSOrigin) < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := obs.refusedConns(reasonWSOrigin); n != 2 {
		t.Fatalf("%d origin refusals counted, want 2", n)
	}
}

// TestSecureWebSocket: wss serves mqtt.tls's certificate with the AEAD-only
// suites, and picks up a new certificate without a restart.
func TestSecureWebSocket(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "wss")
	first := ca.Server(t, dir, "first")
	p := newFakePipeline()
	b := startBroker(t, p, func(c *Config) {
		c.WSSListen = "127.0.0.1:0"
		c.TLS = TLSConfig{CertFile: first.CertFile, KeyFile: first.KeyFile}
	})
	addr := b.Addr("wss")
	d := &websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second,
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}}
	c := dialWS(t, "wss://"+addr+"/mqtt", d, nil)
	if ack := c.connect("WSS1", 30); ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("CONNACK over wss: type %d code %#x", ack.FixedHeader.Type, ack.ReasonCode)
	}
	c.publish(1, 1, "report", []byte(`{"type":"log"}`))
	p.waitFor(t, 1)
	p.complete(0, nil)
	expectAck(t, c, 1)

	if out, ok := tlstest.OpenSSL(t, addr, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA", "-servername", "localhost"); ok {
		t.Fatalf("wss accepted a CBC-SHA1 suite:\n%s", out)
	}
	if out, ok := tlstest.OpenSSL(t, addr, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384", "-servername", "localhost"); !ok {
		t.Fatalf("wss refused an AEAD suite:\n%s", out)
	}
}

// TestTLSListenerRotation: replacing mqtt.tls's files changes the
// certificate new connections see, without a restart, and a connection
// opened before keeps working.
func TestTLSListenerRotation(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "rot")
	first, second := ca.Server(t, dir, "first"), ca.Server(t, dir, "second")
	certFile, keyFile := dir+"/server.pem", dir+"/server-key.pem"
	first.InstallAs(t, certFile, keyFile)
	p := newFakePipeline()
	b := startBroker(t, p, func(c *Config) {
		c.TLSListen = "127.0.0.1:0"
		c.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile}
	})
	dial := func() (*rawClient, *tls.Conn) {
		conn, err := tls.Dial("tcp", b.Addr("tls"), &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		return &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: 4}, conn
	}
	old, oldConn := dial()
	if oldConn.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatal("not the first certificate")
	}
	if ack := old.connect("ROT1", 30); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", ack.ReasonCode)
	}
	second.InstallAs(t, certFile, keyFile)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, conn := dial()
		if conn.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(second.Cert.SerialNumber) == 0 {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("new TLS connections still get the old certificate 10s after rotation")
		}
		time.Sleep(200 * time.Millisecond)
	}
	old.publish(1, 1, "report", []byte(`{}`))
	p.waitFor(t, 1)
	p.complete(0, nil)
	expectAck(t, old, 1)

	out, ok := tlstest.OpenSSL(t, b.Addr("tls"), "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA", "-servername", "localhost")
	if ok {
		t.Fatalf("mqtt.tls_listen accepted a CBC-SHA1 suite:\n%s", out)
	}
}
