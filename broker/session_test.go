package broker

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/test/mqttwire"
)

// countingConn records every Write.
type countingConn struct {
	net.Conn // nil: only Write, Close, SetDeadline and RemoteAddr are called
	mu       sync.Mutex
	writes   [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}
func (c *countingConn) Close() error                { return nil }
func (c *countingConn) SetDeadline(time.Time) error { return nil }
func (c *countingConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}

func (c *countingConn) got() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.writes...)
}

// TestAcksReadyTogetherShareOneWrite: PUBACKs of messages stored together
// leave in one write, in arrival order, and a later one stored first
// waits for the head.
func TestAcksReadyTogetherShareOneWrite(t *testing.T) {
	b := startBroker(t, storingPipeline{}, nil)
	conn := &countingConn{}
	cl := b.server.NewClient(conn, "test", "W1", false)
	s := newSession(b.hook, cl, b.hook.resends.client("W1"))
	const n = 8
	tickets := make([]*ticket, n)
	for i := range tickets {
		tickets[i] = &ticket{s: s, id: uint16(i + 1), qos: 1, received: time.Now(), deadline: time.Now().Add(time.Minute)}
		b.hook.inflight.Add(1)
		if !s.enqueue(tickets[i]) {
			t.Fatal("enqueue failed")
		}
	}
	for i := n - 1; i >= 1; i-- {
		tickets[i].complete(nil)
	}
	time.Sleep(50 * time.Millisecond)
	if w := conn.got(); len(w) != 0 {
		t.Fatalf("%d writes while the first message is not stored", len(w))
	}
	tickets[0].complete(nil)
	deadline := time.Now().Add(3 * time.Second)
	for b.hook.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	w := conn.got()
	var want []byte
	for i := 1; i <= n; i++ {
		want = append(want, 0x40, 2, 0, byte(i))
	}
	if len(w) != 1 || !bytes.Equal(w[0], want) {
		t.Fatalf("writes %x; want one write of the %d PUBACKs in order %x", w, n, want)
	}
}

// TestSessionQueueStaysBounded: a connection that always has a message
// pending (a busy firehose) keeps a queue of max_inflight slots.
func TestSessionQueueStaysBounded(t *testing.T) {
	b := startBroker(t, storingPipeline{}, func(c *Config) { c.MaxInflight = 4 })
	cl := b.server.NewClient(&countingConn{}, "test", "Q1", false)
	s := newSession(b.hook, cl, b.hook.resends.client("Q1"))
	var prev *ticket
	for i := range 1000 {
		tk := &ticket{s: s, id: uint16(i%65535 + 1), qos: 1, received: time.Now(), deadline: time.Now().Add(time.Minute)}
		b.hook.inflight.Add(1)
		if !s.enqueue(tk) {
			t.Fatal("enqueue failed")
		}
		if prev != nil {
			prev.complete(nil) // the older one is stored; tk stays pending
		}
		prev = tk
	}
	prev.complete(nil)
	deadline := time.Now().Add(3 * time.Second)
	for b.hook.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) != 4 || s.n != 0 {
		t.Fatalf("queue of %d slots with %d pending after 1000 messages; want 4 and 0", len(s.ring), s.n)
	}
}

// TestErrorAcksShareTheWrite: the PUBACKs of messages that failed or were
// refused go out in the same write as the success acks around them, in
// arrival order, encoded for the client: reason strings only where it
// wants problem information and where they fit its Maximum Packet Size.
func TestErrorAcksShareTheWrite(t *testing.T) {
	refusal := &router.Refusal{Reason: router.ReasonIdentityMismatch, Principal: "devA", Claimed: "devB"}
	for _, tc := range []struct {
		name       string
		props      func(*packets.Properties)
		withReason bool
	}{
		{"problem info", func(*packets.Properties) {}, true},
		{"no problem info", func(p *packets.Properties) { p.RequestProblemInfoFlag, p.RequestProblemInfo = true, 0 }, false},
		{"maximum packet size", func(p *packets.Properties) { p.MaximumPacketSize = 16 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, storingPipeline{}, nil)
			conn := &countingConn{}
			cl := b.server.NewClient(conn, "test", "E1", false)
			cl.Properties.ProtocolVersion = 5
			tc.props(&cl.Properties.Props)
			s := newSession(b.hook, cl, b.hook.resends.client("E1"))
			outcomes := []error{nil, errors.New("kafka rejected the record"), refusal, nil}
			tickets := make([]*ticket, len(outcomes))
			for i := range tickets {
				tickets[i] = &ticket{s: s, id: uint16(i + 1), qos: 1, received: time.Now(), deadline: time.Now().Add(time.Minute)}
				cl.State.Inflight.DecreaseReceiveQuota()
				b.hook.inflight.Add(1)
				if !s.enqueue(tickets[i]) {
					t.Fatal("enqueue failed")
				}
			}
			for i := len(tickets) - 1; i >= 0; i-- {
				tickets[i].complete(outcomes[i])
			}
			deadline := time.Now().Add(3 * time.Second)
			for b.hook.inflight.Load() > 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			w := conn.got()
			if len(w) != 1 {
				t.Fatalf("%d writes %x; want the 4 acks in one", len(w), w)
			}
			r := bufio.NewReader(bytes.NewReader(w[0]))
			for i, code := range []byte{0, packets.ErrUnspecifiedError.Code, packets.ErrNotAuthorized.Code, 0} {
				pk, err := mqttwire.ReadPacket(r, 5)
				if err != nil {
					t.Fatalf("ack %d of %x: %v", i+1, w[0], err)
				}
				if pk.FixedHeader.Type != packets.Puback || pk.PacketID != uint16(i+1) || pk.ReasonCode != code {
					t.Fatalf("ack %d: type %d id %d reason %#x; want PUBACK %d %#x", i+1, pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode, i+1, code)
				}
				if hasReason := pk.Properties.ReasonString != ""; code != 0 && hasReason != tc.withReason {
					t.Errorf("ack %d: reason string %q; want one: %v", i+1, pk.Properties.ReasonString, tc.withReason)
				}
			}
			if r.Buffered() != 0 {
				t.Fatalf("%d bytes after the 4 acks", r.Buffered())
			}
		})
	}
}
