package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleetgate/fleetgate/tlsconf/tlstest"
)

// startBrokerLogged is startBroker with the broker's log lines kept.
func startBrokerLogged(t *testing.T, mutate func(*Config), opts ...Option) (*Broker, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	return startBrokerLog(t, newFakePipeline(), zap.New(core), mutate, opts...), logs
}

// startBrokerLog starts a broker on 127.0.0.1:0 logging to log.
func startBrokerLog(t *testing.T, p Pipeline, log *zap.Logger, mutate func(*Config), opts ...Option) *Broker {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DeliveryTimeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg, p, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	return b
}

// waitRefusalLogged polls for the "mqtt connection refused" line of reason
// naming remote.
func waitRefusalLogged(t *testing.T, logs *observer.ObservedLogs, reason, remote string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, e := range logs.FilterMessage("mqtt connection refused").All() {
			f := e.ContextMap()
			if f["reason"] == reason && f["remote"] == remote {
				return
			}
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, e := range logs.FilterMessage("mqtt connection refused").All() {
				seen = append(seen, fmt.Sprint(e.ContextMap()))
			}
			t.Fatalf("no refusal %s from %s logged; logged: %v", reason, remote, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRefusalsBeforeConnectAreLogged: each refusal before CONNECT, on
// every listener, is counted by reason and logged with the remote address
// (before: counted only, so an operator could not tell who). A request on
// the WebSocket listener that is no WebSocket upgrade is counted too.
func TestRefusalsBeforeConnectAreLogged(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "refuse")
	server := ca.Server(t, dir, "server")
	obs := newLimitObserver()
	b, logs := startBrokerLogged(t, func(c *Config) {
		c.TLSListen = "127.0.0.1:0"
		c.WSListen = "127.0.0.1:0"
		c.WSSListen = "127.0.0.1:0"
		c.WSAllowedOrigins = []string{"https://console.example.com"}
		c.TLS = TLSConfig{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.File}
		c.ConnectTimeout = 300 * time.Millisecond
	}, WithObserver(obs))

	dial := func(listener string) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", b.Addr(listener))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	silent := dial("tcp") // no CONNECT
	waitRefusalLogged(t, logs, reasonConnectTimeout, silent.LocalAddr().String())

	for _, l := range []string{"tls", "wss"} {
		c := dial(l) // a ClientHello-looking byte stream that is none
		fmt.Fprintf(c, "\x16\x03\x01\x00\x05hello")
		waitRefusalLogged(t, logs, reasonTLSHandshake, c.LocalAddr().String())
	}

	origin := dial("ws")
	fmt.Fprintf(origin, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\nOrigin: https://console.example.com.evil.net\r\n\r\n")
	waitRefusalLogged(t, logs, reasonWSOrigin, origin.LocalAddr().String())

	plain := dial("ws") // a plain HTTP GET, no upgrade
	fmt.Fprintf(plain, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	waitRefusalLogged(t, logs, reasonWSUpgrade, plain.LocalAddr().String())

	huge := dial("ws")
	fmt.Fprintf(huge, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n", strings.Repeat("a", 2*maxUpgradeBytes))
	waitRefusalLogged(t, logs, reasonWSUpgrade, huge.LocalAddr().String())

	drip := dial("ws") // slowloris: a header byte at a time, never done
	go func() {
		for _, ch := range []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
			if _, err := drip.Write([]byte{ch}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	waitRefusalLogged(t, logs, reasonConnectTimeout, drip.LocalAddr().String())
	if !closedWithin(drip, 2*time.Second) {
		t.Fatal("a dripped upgrade request outlived mqtt.connect_timeout")
	}

	for reason, want := range map[string]int{reasonConnectTimeout: 2, reasonTLSHandshake: 2, reasonWSOrigin: 1, reasonWSUpgrade: 2} {
		waitCount(t, reason+" refusals", func() int { return obs.refusedConns(reason) }, want)
	}
}

// TestRevokedCertificateRefused: with mqtt.tls.crl_file, a device whose
// certificate the CA's list revokes is refused in the TLS handshake on the
// TLS and the secure WebSocket listener, counted and logged as
// certificate_revoked with its remote address; a device of the same CA
// whose certificate is not listed connects.
func TestRevokedCertificateRefused(t *testing.T) {
	pki := tlstest.NewRevocation(t, t.TempDir())
	ca, stolen, kept := pki.CA, pki.Stolen, pki.Kept
	other := ca.Client(t, t.TempDir(), "STS-00000003")
	obs := newLimitObserver()
	b, logs := startBrokerLogged(t, func(c *Config) {
		c.TLSListen = "127.0.0.1:0"
		c.WSSListen = "127.0.0.1:0"
		c.TLS = TLSConfig{CertFile: pki.Server.CertFile, KeyFile: pki.Server.KeyFile, ClientCAFile: ca.File, CRLFile: pki.CRLFile}
	}, WithObserver(obs))
	dial := func(listener string, leaf *tlstest.Leaf) *tls.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", b.Addr(listener), &tls.Config{RootCAs: ca.Pool, ServerName: "localhost", Certificates: []tls.Certificate{leaf.TLS}})
		if err != nil {
			t.Fatalf("handshake on %s: %v", listener, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for _, l := range []string{"tls", "wss"} {
		c := dial(l, stolen)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("%s: a revoked certificate's connection was not ended by the server: %v", l, err)
		}
		waitRefusalLogged(t, logs, reasonCertRevoked, c.LocalAddr().String())
	}
	waitCount(t, "certificate_revoked refusals", func() int { return obs.refusedConns(reasonCertRevoked) }, 2)

	connect := func(leaf *tlstest.Leaf, id string) *tls.Conn {
		t.Helper()
		conn := dial("tls", leaf)
		c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: 4}
		c.write(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: id, Keepalive: 30, Clean: true},
		})
		if ack := c.read(3 * time.Second); ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
			t.Fatalf("CONNACK of %s, whose certificate is not revoked: type %d code %#x", id, ack.FixedHeader.Type, ack.ReasonCode)
		}
		return conn
	}
	conn := connect(kept, "STS-00000002")
	if n := obs.refusedConns(reasonTLSHandshake); n != 0 {
		t.Errorf("%d tls_handshake refusals; want the revoked ones counted as certificate_revoked only", n)
	}

	// The same certificate over secure WebSocket, where it is checked at
	// the handshake but names no principal.
	wsd := &websocket.Dialer{Subprotocols: []string{"mqtt"}, TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "localhost", Certificates: []tls.Certificate{kept.TLS}}}
	wss := dialWS(t, "wss://"+b.Addr("wss")+"/mqtt", wsd, nil)
	if ack := wss.connect("WSS-KEPT", 30); ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("CONNACK over wss, certificate not revoked: type %d code %#x", ack.FixedHeader.Type, ack.ReasonCode)
	}

	// Revoked while connected: the list changes, the connections end
	// within a second or two, without a handshake; another stays.
	otherConn := connect(other, "STS-00000003")
	ca.CRL(t, pki.CRLFile, time.Hour, stolen, kept)
	if !closedWithin(conn, 5*time.Second) {
		t.Fatal("the connection of a certificate revoked while it was open is still open 5 s after the list changed")
	}
	if !closedWithin(wss.conn, 5*time.Second) {
		t.Fatal("over secure WebSocket, the connection of a certificate revoked while it was open is still open 5 s after the list changed")
	}
	byID := map[any]map[string]any{}
	for _, e := range logs.FilterMessage("mqtt refused").FilterField(zap.String("reason", refuseCertRevoked)).All() {
		byID[e.ContextMap()["client_id"]] = e.ContextMap()
	}
	if e := byID["STS-00000002"]; len(byID) != 2 || e["principal"] != "STS-00000002" || e["remote"] != conn.LocalAddr().String() || byID["WSS-KEPT"] == nil {
		t.Errorf("certificate_revoked log lines of the sessions: %v; want one for each, naming client id, principal and remote address", byID)
	}
	if n := obs.accessCount(stageSession + "/" + refuseCertRevoked); n != 2 {
		t.Errorf("%d session/certificate_revoked refusals; want 2", n)
	}
	if closedWithin(otherConn, 1500*time.Millisecond) {
		t.Error("the connection of a certificate not revoked was closed too")
	}
	if u := obs.unlisted(); len(u) > 0 {
		t.Errorf("refusals not in Refusals(): %v", u)
	}
}

// TestFailedStartLeavesNoRevocationWatcher: a Start that fails (here its
// TLS address is taken) starts no revocation-list watcher that would run
// until a Shutdown nobody calls.
func TestFailedStartLeavesNoRevocationWatcher(t *testing.T) {
	pki := tlstest.NewRevocation(t, t.TempDir())
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = startError(t, func(c *Config) {
		c.TLSListen = taken.Addr().String()
		c.TLS = TLSConfig{CertFile: pki.Server.CertFile, KeyFile: pki.Server.KeyFile, ClientCAFile: pki.CA.File, CRLFile: pki.CRLFile}
	})
	if err == nil || !strings.Contains(err.Error(), "mqtt.tls_listen") {
		t.Fatalf("Start on a taken address: %v; want an mqtt.tls_listen error", err)
	}
	time.Sleep(50 * time.Millisecond) // a goroutine started is running by now
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "watchRevocations") {
		t.Fatal("a failed Start left the revocation watcher running")
	}
}
