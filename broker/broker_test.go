package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
)

// fakePipeline holds every message until the test completes it.
type fakePipeline struct {
	mu      sync.Mutex
	got     []*router.Message
	dones   []func(error)
	arrived chan struct{}
}

func newFakePipeline() *fakePipeline { return &fakePipeline{arrived: make(chan struct{}, 1024)} }

func (f *fakePipeline) Process(_ context.Context, msg *router.Message, done func(error)) {
	f.mu.Lock()
	f.got = append(f.got, msg)
	f.dones = append(f.dones, done)
	f.mu.Unlock()
	f.arrived <- struct{}{}
}

// waitFor waits until n messages have arrived in total.
func (f *fakePipeline) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		f.mu.Lock()
		have := len(f.got)
		f.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-f.arrived:
		case <-deadline:
			t.Fatalf("pipeline got %d messages, want %d", have, n)
		}
	}
}

func (f *fakePipeline) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func (f *fakePipeline) complete(i int, err error) {
	f.mu.Lock()
	done := f.dones[i]
	f.mu.Unlock()
	done(err)
}

func startBroker(t *testing.T, p Pipeline, mutate func(*Config), opts ...Option) *Broker {
	t.Helper()
	return startBrokerLog(t, p, zap.NewNop(), mutate, opts...)
}

func TestPubackWaitsForPipelineAndKeepsOrder(t *testing.T) {
	for _, version := range []byte{4, 5} {
		t.Run(fmt.Sprintf("mqtt-v%d", version), func(t *testing.T) {
			p := newFakePipeline()
			b := startBroker(t, p, nil)
			c := dialRaw(t, b.Addr("tcp"), "D1", version)
			const n = 8
			for i := 1; i <= n; i++ {
				c.publish(uint16(i), 1, "report", []byte(fmt.Sprintf(`{"seq":%d}`, i)))
			}
			// All n are in the pipeline at once: the connection is not
			// serialised on one Kafka round trip.
			p.waitFor(t, n)
			if pk := c.read(200 * time.Millisecond); pk.FixedHeader.Type != 0 {
				t.Fatalf("got packet type %d before any message was stored", pk.FixedHeader.Type)
			}
			// Complete in reverse order: acks must still leave in arrival order.
			for i := n - 1; i >= 1; i-- {
				p.complete(i, nil)
			}
			if pk := c.read(200 * time.Millisecond); pk.FixedHeader.Type != 0 {
				t.Fatalf("got an ack (id %d) while message 1 is not stored", pk.PacketID)
			}
			p.complete(0, nil)
			for i := 1; i <= n; i++ {
				pk := c.read(2 * time.Second)
				if pk.FixedHeader.Type != packets.Puback || pk.PacketID != uint16(i) || pk.ReasonCode != 0 {
					t.Fatalf("ack %d: got type %d id %d reason %#x", i, pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
				}
			}
			m := p.got[0]
			if m.Source != "mqtt" || m.Topic != "report" || m.ClientID != "D1" || string(m.Payload) != `{"seq":1}` || m.Received.IsZero() {
				t.Fatalf("message handed to the pipeline: %+v", m)
			}
		})
	}
}

func TestWindowBlocksReading(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, func(c *Config) { c.MaxInflight = 4 })
	c := dialRaw(t, b.Addr("tcp"), "D1", 4)
	for i := 1; i <= 10; i++ {
		c.publish(uint16(i), 1, "report", []byte(`{}`))
	}
	p.waitFor(t, 4)
	time.Sleep(200 * time.Millisecond)
	// 4 queued plus the one whose enqueue blocks the read loop.
	if got := p.count(); got > 4 {
		t.Fatalf("pipeline got %d messages with a window of 4", got)
	}
	p.complete(0, nil)
	if pk := c.read(2 * time.Second); pk.PacketID != 1 {
		t.Fatalf("got ack id %d, want 1", pk.PacketID)
	}
	p.waitFor(t, 5)
	for i := 1; i < 10; i++ {
		p.waitFor(t, i+1)
		p.complete(i, nil)
	}
	for i := 2; i <= 10; i++ {
		if pk := c.read(2 * time.Second); pk.PacketID != uint16(i) {
			t.Fatalf("got ack id %d, want %d", pk.PacketID, i)
		}
	}
}

func TestFailureV5GetsReasonCode(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, nil)
	c := dialRaw(t, b.Addr("tcp"), "D5", 5)
	c.publish(1, 1, "report", []byte(`{}`))
	c.publish(2, 1, "report", []byte(`{}`))
	p.waitFor(t, 2)
	p.complete(0, errors.New("kafka is down"))
	p.complete(1, nil)
	pk := c.read(2 * time.Second)
	if pk.FixedHeader.Type != packets.Puback || pk.PacketID != 1 || pk.ReasonCode != packets.ErrUnspecifiedError.Code {
		t.Fatalf("got type %d id %d reason %#x; want PUBACK 1 with 0x80", pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
	}
	if pk := c.read(2 * time.Second); pk.PacketID != 2 || pk.ReasonCode != 0 {
		t.Fatalf("got id %d reason %#x; want a success PUBACK for 2", pk.PacketID, pk.ReasonCode)
	}
}

func TestFailureV311Disconnects(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, nil)
	c := dialRaw(t, b.Addr("tcp"), "D3", 4)
	c.publish(1, 1, "report", []byte(`{}`))
	c.publish(2, 1, "report", []byte(`{}`))
	p.waitFor(t, 2)
	p.complete(1, nil) // stored, but behind a failed one: must not be acked
	p.complete(0, errors.New("kafka is down"))
	for {
		pk := c.read(2 * time.Second)
		switch pk.FixedHeader.Type {
		case 255:
			return // disconnected, nothing acked
		case packets.Disconnect:
			continue
		default:
			t.Fatalf("got packet type %d id %d; want the connection closed", pk.FixedHeader.Type, pk.PacketID)
		}
	}
}

func TestDeliveryTimeout(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, func(c *Config) { c.DeliveryTimeout = 300 * time.Millisecond })
	c := dialRaw(t, b.Addr("tcp"), "D5", 5)
	c.publish(7, 1, "report", []byte(`{}`))
	p.waitFor(t, 1)
	pk := c.read(3 * time.Second)
	if pk.PacketID != 7 || pk.ReasonCode != packets.ErrUnspecifiedError.Code {
		t.Fatalf("got id %d reason %#x; want PUBACK 7 with 0x80 after the delivery timeout", pk.PacketID, pk.ReasonCode)
	}
	p.complete(0, nil) // late success changes nothing
}

func TestQoS2(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, nil)
	c := dialRaw(t, b.Addr("tcp"), "D2", 4)
	c.publish(9, 2, "report", []byte(`{}`))
	p.waitFor(t, 1)
	if pk := c.read(200 * time.Millisecond); pk.FixedHeader.Type != 0 {
		t.Fatalf("got packet type %d before the message was stored", pk.FixedHeader.Type)
	}
	p.complete(0, nil)
	if pk := c.read(2 * time.Second); pk.FixedHeader.Type != packets.Pubrec || pk.PacketID != 9 {
		t.Fatalf("got type %d id %d; want PUBREC 9", pk.FixedHeader.Type, pk.PacketID)
	}
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: 9})
	if pk := c.read(2 * time.Second); pk.FixedHeader.Type != packets.Pubcomp || pk.PacketID != 9 {
		t.Fatalf("got type %d id %d; want PUBCOMP 9", pk.FixedHeader.Type, pk.PacketID)
	}
}

func TestQoS0IsProcessed(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, nil)
	c := dialRaw(t, b.Addr("tcp"), "D0", 4)
	c.publish(0, 0, "report", []byte(`{"a":1}`))
	p.waitFor(t, 1)
	p.complete(0, nil)
}

func TestShutdownWaitsForInflight(t *testing.T) {
	p := newFakePipeline()
	b := startBroker(t, p, nil)
	c := dialRaw(t, b.Addr("tcp"), "D1", 4)
	c.publish(1, 1, "report", []byte(`{}`))
	p.waitFor(t, 1)
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- b.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	c.publish(2, 1, "report", []byte(`{}`)) // arrives while draining: not taken, not acked
	time.Sleep(100 * time.Millisecond)
	p.complete(0, nil)
	if pk := c.read(2 * time.Second); pk.FixedHeader.Type != packets.Puback || pk.PacketID != 1 {
		t.Fatalf("got type %d id %d; want PUBACK 1 before the shutdown closes the connection", pk.FixedHeader.Type, pk.PacketID)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.count() != 1 {
		t.Fatalf("pipeline got %d messages; the one sent while draining must not be taken", p.count())
	}
}
