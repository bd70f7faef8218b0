package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/limits"
)

// countingObserver counts what the broker reports.
type countingObserver struct {
	mu                                  sync.Mutex
	connected, disconnected, refusedCon int
	access                              map[string]int // stage/reason -> AccessRefused calls
	acked                               int
	refused                             map[string]int
	resent                              int
}

func newCountingObserver() *countingObserver { return &countingObserver{refused: map[string]int{}} }

func (o *countingObserver) ClientConnected()    { o.mu.Lock(); o.connected++; o.mu.Unlock() }
func (o *countingObserver) ClientDisconnected() { o.mu.Lock(); o.disconnected++; o.mu.Unlock() }
func (o *countingObserver) ClientRefused()      { o.mu.Lock(); o.refusedCon++; o.mu.Unlock() }
func (o *countingObserver) AccessRefused(stage, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.access == nil {
		o.access = map[string]int{}
	}
	o.access[stage+"/"+reason]++
	if !slices.Contains(Refusals(), Refusal{stage, reason}) {
		// Not started at zero by the metrics: an alert misses its first one.
		o.access["UNLISTED "+stage+"/"+reason]++
	}
}

// unlisted returns the refusals reported that Refusals does not list.
func (o *countingObserver) unlisted() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for k := range o.access {
		if strings.HasPrefix(k, "UNLISTED ") {
			out = append(out, k)
		}
	}
	return out
}
func (o *countingObserver) Resent() { o.mu.Lock(); o.resent++; o.mu.Unlock() }
func (o *countingObserver) Acked(source string, latency time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if source == "mqtt" && latency > 0 {
		o.acked++
	}
}
func (o *countingObserver) Refused(reason string) { o.mu.Lock(); o.refused[reason]++; o.mu.Unlock() }

func (o *countingObserver) refusals(reason string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refused[reason]
}

// readUntilClosed returns the packets a client gets until its connection
// closes (closed true) or nothing comes for d.
func readUntilClosed(c *rawClient, d time.Duration) (got []packets.Packet, closed bool) {
	for {
		pk := c.read(d)
		switch pk.FixedHeader.Type {
		case 0:
			return got, false
		case 255:
			return got, true
		}
		got = append(got, pk)
	}
}

func TestLimitPausesReadingUntilRoom(t *testing.T) {
	for _, version := range []byte{4, 5} {
		t.Run(fmt.Sprintf("mqtt-v%d", version), func(t *testing.T) {
			p := newFakePipeline()
			budget := limits.New(limits.Config{MaxInflightMessages: 2, MaxInflightBytes: 1 << 20})
			obs := newCountingObserver()
			b := startBroker(t, p, nil, WithLimiter(budget), WithObserver(obs))
			c := dialRaw(t, b.Addr("tcp"), "D1", version)
			for i := 1; i <= 4; i++ {
				c.publish(uint16(i), 1, "report", []byte(`{"n":1}`))
			}
			p.waitFor(t, 2)
			time.Sleep(200 * time.Millisecond)
			if got := p.count(); got != 2 {
				t.Fatalf("pipeline got %d messages with room for 2", got)
			}
			if m, n := budget.InUse(); m != 2 || n != 14 {
				t.Fatalf("budget holds %d messages %d bytes, want 2 and 14", m, n)
			}
			// Room comes back as the pipeline finishes: the waiting
			// messages go on, nothing is lost, acks stay in order.
			for i := 0; i < 4; i++ {
				p.waitFor(t, i+1)
				p.complete(i, nil)
			}
			for i := 1; i <= 4; i++ {
				pk := c.read(2 * time.Second)
				if pk.FixedHeader.Type != packets.Puback || pk.PacketID != uint16(i) || pk.ReasonCode != 0 {
					t.Fatalf("ack %d: type %d id %d reason %#x", i, pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
				}
			}
			if m, n := budget.InUse(); m != 0 || n != 0 {
				t.Fatalf("budget holds %d messages %d bytes after every message completed", m, n)
			}
			// The observer hears of an ack just after it is written.
			deadline := time.Now().Add(2 * time.Second)
			for {
				obs.mu.Lock()
				acked, connected := obs.acked, obs.connected
				obs.mu.Unlock()
				if acked == 4 && connected == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("observer: %d acked (want 4), %d connected (want 1)", acked, connected)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

func TestNoRoomInTimeFailsTheMessage(t *testing.T) {
	for _, version := range []byte{4, 5} {
		t.Run(fmt.Sprintf("mqtt-v%d", version), func(t *testing.T) {
			p := newFakePipeline()
			budget := limits.New(limits.Config{MaxInflightMessages: 1, MaxInflightBytes: 1 << 20})
			obs := newCountingObserver()
			b := startBroker(t, p, func(c *Config) { c.DeliveryTimeout = 400 * time.Millisecond },
				WithLimiter(budget), WithObserver(obs))
			holder := dialRaw(t, b.Addr("tcp"), "HOLDER", 5)
			holder.publish(1, 1, "report", []byte(`{}`))
			p.waitFor(t, 1) // holds the only room and never completes

			c := dialRaw(t, b.Addr("tcp"), "D2", version)
			c.publish(5, 1, "report", []byte(`{}`))
			if version == 5 {
				pk := c.read(3 * time.Second)
				if pk.FixedHeader.Type != packets.Puback || pk.PacketID != 5 || pk.ReasonCode != packets.ErrQuotaExceeded.Code {
					t.Fatalf("got type %d id %d reason %#x; want PUBACK 5 with reason 0x97 quota exceeded",
						pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
				}
			} else {
				// Disconnected, and nothing acknowledged.
				got, closed := readUntilClosed(c, 3*time.Second)
				if !closed {
					t.Fatal("MQTT 3.1.1 client still connected after its message failed")
				}
				for _, pk := range got {
					if pk.FixedHeader.Type == packets.Puback {
						t.Fatalf("MQTT 3.1.1 client got PUBACK %d for a message that was not stored", pk.PacketID)
					}
				}
			}
			if p.count() != 1 {
				t.Fatalf("a message without room reached the pipeline")
			}
			if n := obs.refusals(reasonInflightLimit); n != 1 {
				t.Fatalf("inflight_limit refusals: %d, want 1", n)
			}
			p.complete(0, nil)
		})
	}
}

func TestQoS0WithoutRoomIsDroppedAndCounted(t *testing.T) {
	p := newFakePipeline()
	budget := limits.New(limits.Config{MaxInflightMessages: 1, MaxInflightBytes: 1 << 20})
	obs := newCountingObserver()
	b := startBroker(t, p, func(c *Config) { c.DeliveryTimeout = 300 * time.Millisecond },
		WithLimiter(budget), WithObserver(obs))
	c := dialRaw(t, b.Addr("tcp"), "D0", 4)
	c.publish(0, 0, "report", []byte(`{"a":1}`))
	c.publish(0, 0, "report", []byte(`{"a":2}`))
	p.waitFor(t, 1)
	deadline := time.Now().Add(3 * time.Second)
	for obs.refusals(reasonInflightLimit) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the QoS 0 message without room was not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.complete(0, nil)
	if m, _ := budget.InUse(); m != 0 {
		t.Fatalf("budget holds %d messages", m)
	}
}

func TestDrainEndsTheWaitForRoomWithoutAnswer(t *testing.T) {
	p := newFakePipeline()
	budget := limits.New(limits.Config{MaxInflightMessages: 1, MaxInflightBytes: 1 << 20})
	b := startBroker(t, p, nil, WithLimiter(budget))
	holder := dialRaw(t, b.Addr("tcp"), "HOLDER", 5)
	holder.publish(1, 1, "report", []byte(`{}`))
	p.waitFor(t, 1)
	c := dialRaw(t, b.Addr("tcp"), "D5", 5)
	c.publish(9, 1, "report", []byte(`{}`)) // waits for room
	time.Sleep(100 * time.Millisecond)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- b.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	p.complete(0, nil) // the holder's message finishes the drain
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	got, closed := readUntilClosed(c, 2*time.Second)
	if !closed {
		t.Fatal("client still connected after the shutdown")
	}
	for _, pk := range got {
		if pk.FixedHeader.Type == packets.Puback {
			t.Fatalf("got PUBACK %d reason %#x for a message refused at shutdown; want no answer", pk.PacketID, pk.ReasonCode)
		}
	}
	if pk := holder.read(time.Second); pk.FixedHeader.Type != packets.Puback || pk.PacketID != 1 || pk.ReasonCode != 0 {
		t.Fatalf("holder: got type %d id %d reason %#x; want its PUBACK", pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
	}
	if p.count() != 1 {
		t.Fatal("the refused message reached the pipeline")
	}
}

// TestNothingAfterARefusedMessageV311: once an MQTT 3.1.1 message got no
// room, later messages of the connection are not taken even when room comes
// back before the connection is cut; one of them could otherwise be stored
// before the refused one is re-sent.
func TestNothingAfterARefusedMessageV311(t *testing.T) {
	p := newFakePipeline()
	budget := limits.New(limits.Config{MaxInflightMessages: 2, MaxInflightBytes: 1 << 20})
	b := startBroker(t, p, func(c *Config) { c.DeliveryTimeout = 400 * time.Millisecond }, WithLimiter(budget))
	holder := dialRaw(t, b.Addr("tcp"), "HOLDER", 5)
	holder.publish(1, 1, "report", []byte(`{}`))
	p.waitFor(t, 1)

	c := dialRaw(t, b.Addr("tcp"), "D3", 4)
	// seq 4 takes the last room and stays in flight, so the connection's
	// ack goroutine is busy with it and does not cut the connection yet.
	c.publish(4, 1, "report", []byte(`{"seq":4}`))
	p.waitFor(t, 2)
	c.publish(5, 1, "report", []byte(`{"seq":5}`))
	c.publish(6, 1, "report", []byte(`{"seq":6}`))
	time.Sleep(600 * time.Millisecond) // 5 got no room in time; 6 is read
	p.complete(0, nil)                 // room again
	time.Sleep(800 * time.Millisecond)
	if n := p.count(); n != 2 {
		t.Fatalf("pipeline got %d messages; seq 6 was taken after seq 5 was refused", n)
	}
	p.complete(1, nil)
}
