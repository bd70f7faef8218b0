package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// reconnect closes c and connects again with the same client id, keeping
// the session.
func reconnect(t *testing.T, b *Broker, c *rawClient, id string) *rawClient {
	t.Helper()
	c.conn.Close()
	// mochi handles the old connection's end on its own goroutine; a new
	// connection with the same id takes the session over either way.
	return dialRawSession(t, b.Addr("tcp"), id, 4, false)
}

func expectAck(t *testing.T, c *rawClient, id uint16) {
	t.Helper()
	pk := c.read(3 * time.Second)
	if pk.FixedHeader.Type != packets.Puback || pk.PacketID != id || pk.ReasonCode != 0 {
		t.Fatalf("got type %d id %d reason %#x; want PUBACK %d", pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode, id)
	}
}

func TestResendOfStoredMessageIsNotStoredAgain(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, nil)
	c := dialRawSession(t, b.Addr("tcp"), "R1", 4, false)
	c.publish(6, 1, "report", []byte(`{"seq":6}`))
	p.waitFor(t, 1)
	p.complete(0, nil) // stored; the client "loses" the PUBACK by reconnecting
	time.Sleep(100 * time.Millisecond)
	c = reconnect(t, b, c, "R1")
	c.publishDup(6, 1, "report", []byte(`{"seq":6}`), true)
	expectAck(t, c, 6)
	if n := p.count(); n != 1 {
		t.Fatalf("pipeline got %d messages; the re-send must be answered from the first copy", n)
	}
}

func TestResendWhileFirstCopyInFlightWaitsForIt(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, nil)
	c := dialRawSession(t, b.Addr("tcp"), "R2", 4, false)
	c.publish(1, 1, "report", []byte(`{"seq":1}`))
	c.publish(2, 1, "report", []byte(`{"seq":2}`))
	p.waitFor(t, 2)
	c = reconnect(t, b, c, "R2")
	c.publishDup(1, 1, "report", []byte(`{"seq":1}`), true)
	c.publishDup(2, 1, "report", []byte(`{"seq":2}`), true)
	c.publish(3, 1, "report", []byte(`{"seq":3}`))
	p.waitFor(t, 3)
	if pk := c.read(300 * time.Millisecond); pk.FixedHeader.Type != 0 {
		t.Fatalf("got packet type %d id %d before the first copies were stored", pk.FixedHeader.Type, pk.PacketID)
	}
	p.complete(2, nil)
	p.complete(1, nil)
	p.complete(0, nil)
	expectAck(t, c, 1)
	expectAck(t, c, 2)
	expectAck(t, c, 3)
	if n := p.count(); n != 3 {
		t.Fatalf("pipeline got %d messages, want 3 (no second copy of 1 and 2)", n)
	}
}

func TestResendIsProcessedAgainWhenNeeded(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, nil)
	c := dialRawSession(t, b.Addr("tcp"), "R3", 4, false)
	c.publish(1, 1, "report", []byte(`{"seq":1}`))
	c.publish(2, 1, "report", []byte(`{"seq":2}`))
	p.waitFor(t, 2)
	p.complete(0, errors.New("kafka is down")) // 3.1.1: disconnected, not stored
	p.complete(1, nil)
	c = reconnect(t, b, c, "R3")
	c.publishDup(1, 1, "report", []byte(`{"seq":1}`), true)       // its first copy failed
	c.publishDup(2, 1, "report", []byte(`{"seq":2,"x":1}`), true) // same id, other content
	c.publishDup(9, 1, "report", []byte(`{"seq":9}`), true)       // never seen
	p.waitFor(t, 5)
	for i := 2; i < 5; i++ {
		p.complete(i, nil)
	}
	expectAck(t, c, 1)
	expectAck(t, c, 2)
	expectAck(t, c, 9)
}

func TestCleanSessionForgetsPacketIDs(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, nil)
	c := dialRaw(t, b.Addr("tcp"), "R4", 4) // clean session
	c.publish(1, 1, "report", []byte(`{"seq":1}`))
	p.waitFor(t, 1)
	p.complete(0, nil)
	expectAck(t, c, 1)
	c.conn.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		b.hook.resends.mu.Lock()
		_, known := b.hook.resends.clients["R4"]
		b.hook.resends.mu.Unlock()
		if !known {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the log of a clean-session client outlived its session")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestResendLogRingAndSweep(t *testing.T) {
	r := newResendLog(2, time.Minute)
	c := r.client("X")
	mk := func(id uint16) *ticket { return &ticket{id: id, sum: uint64(id)} }
	t1, t2, t3 := mk(1), mk(2), mk(3)
	c.record(t1)
	c.record(t2)
	c.record(t3) // evicts 1: only max_inflight messages can be unacknowledged
	if first, _ := c.original(1, 1); first != nil {
		t.Fatal("packet id 1 should have left the ring")
	}
	if first, _ := c.original(3, 3); first != t3 {
		t.Fatal("packet id 3 in flight not found")
	}
	t3.complete(nil)
	c.settle(t3, true)
	if first, stored := c.original(3, 3); first != nil || !stored {
		t.Fatal("settled packet id 3 not reported stored")
	}
	if _, stored := c.original(3, 4); stored {
		t.Fatal("a re-send with other content matched")
	}
	r.sweep(time.Now().Add(2 * time.Minute))
	if len(r.clients) != 0 {
		t.Fatal("sweep kept a client past the ttl")
	}
}
