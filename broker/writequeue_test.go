package broker

import (
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// TestWriteQueueBytesCapped is the case: three subscribers to "#"
// that stay connected but never read (their TCP window full) while 300
// messages of 100 KiB are published, QoS 0 and QoS 1 (which a QoS 0
// subscription takes as QoS 0). Without the cap mochi queues 256 copies
// for each (75 MiB); with mqtt.max_pending_write_bytes at 1 MiB each
// holds at most 1 MiB, the rest is counted as write_queue_bytes, and a
// subscriber that reads still gets every message.
func TestWriteQueueBytesCapped(t *testing.T) {
	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			const (
				capBytes = 1 << 20
				n        = 300
				stuck    = 3
			)
			obs := newLimitObserver()
			b := startBroker(t, autoPipeline{}, func(c *Config) { c.MaxPendingWriteBytes = capBytes }, WithObserver(obs))
			addr := b.Addr("tcp")
			for i := 0; i < stuck; i++ {
				c := dialRaw(t, addr, fmt.Sprintf("stuck-%d", i), 4)
				// A small receive buffer, so that the window fills after
				// a few messages instead of megabytes of kernel buffers.
				if err := c.conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
					t.Fatal(err)
				}
				c.subscribeQoS("#", 0)
			}
			reader := dialRaw(t, addr, "reader", 4)
			reader.subscribeQoS("#", 0)
			heap0 := heapInUse()

			pub := dialRaw(t, addr, "publisher", 4)
			payload := bytes.Repeat([]byte("v"), 100<<10)
			for i := 1; i <= n; i++ {
				pub.publish(uint16(i), qos, fmt.Sprintf("fleet/%03d", i), payload)
				if qos > 0 {
					expectAck(t, pub, uint16(i))
				}
				// The reader reads each message before the next is sent.
				pk := reader.read(5 * time.Second)
				if pk.FixedHeader.Type != packets.Publish || pk.TopicName != fmt.Sprintf("fleet/%03d", i) || len(pk.Payload) != len(payload) {
					t.Fatalf("reader: message %d: got type %d topic %q (%d bytes)", i, pk.FixedHeader.Type, pk.TopicName, len(pk.Payload))
				}
			}
			heap1 := heapInUse()

			for i := 0; i < stuck; i++ {
				cl, ok := b.server.Clients.Get(fmt.Sprintf("stuck-%d", i))
				if !ok {
					t.Fatalf("stuck-%d was disconnected", i)
				}
				if q := b.writes.account(cl).Load(); q <= 0 || q > capBytes {
					t.Errorf("stuck-%d: %d bytes queued, want 1..%d", i, q, capBytes)
				}
			}
			// Each message written is uncharged: the reader's queue is empty.
			if cl, ok := b.server.Clients.Get("reader"); !ok || b.writes.account(cl).Load() != 0 {
				t.Errorf("reader: %d bytes still charged after reading everything", b.writes.account(cl).Load())
			}
			// The kernel takes some messages of each; the queues at most
			// 10 of 100 KiB; the rest of 300 is dropped.
			if d := obs.drops(ReasonWriteQueueBytes); d < stuck*(n-100) {
				t.Errorf("%d write_queue_bytes drops, want at least %d", d, stuck*(n-100))
			}
			if grow := heap1 - heap0; grow > 20<<20 {
				t.Errorf("heap grew by %.1f MiB; the cap allows %d x 1 MiB", float64(grow)/(1<<20), stuck)
			}
			t.Logf("heap %+.1f MiB, queued %d bytes in all, %d drops", float64(heap1-heap0)/(1<<20),
				b.PendingWriteBytes(), obs.drops(ReasonWriteQueueBytes))
		})
	}
}

func TestWriteQueueBytesConfig(t *testing.T) {
	c := DefaultConfig()
	c.MaxPendingWriteBytes = int64(c.MaxPacketBytes) - 1
	if err := c.Validate(); err == nil || !bytes.Contains([]byte(err.Error()), []byte("mqtt.max_pending_write_bytes")) {
		t.Fatalf("Validate: %v, want an error naming mqtt.max_pending_write_bytes", err)
	}
	c.MaxPendingWriteBytes = int64(c.MaxPacketBytes)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteQueueReleasesPacketDrops: when mochi's queue is full in packets
// (mqtt.max_pending_writes) before it is in bytes, the message mochi drops
// is counted (write_queue_full) and gives its bytes back; otherwise the account would fill up to the byte
// cap with messages that are not queued.
func TestWriteQueueReleasesPacketDrops(t *testing.T) {
	const size = 1 << 10
	obs := newLimitObserver()
	b := startBroker(t, autoPipeline{}, func(c *Config) { c.MaxPendingWrites = 16 }, WithObserver(obs))
	addr := b.Addr("tcp")
	sub := dialRaw(t, addr, "stuck", 4)
	if err := sub.conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	sub.subscribeQoS("#", 0)
	pub := dialRaw(t, addr, "publisher", 4)
	pub.subscribeQoS("done", 0)
	payload := bytes.Repeat([]byte("v"), size)
	for i := 0; i < 20000; i++ {
		pub.publish(0, 0, "fleet/x", payload)
	}
	// The publisher's packets are handled in order: "done" comes back
	// after every fan-out.
	pub.publish(0, 0, "done", nil)
	if pk := pub.read(20 * time.Second); pk.FixedHeader.Type != packets.Publish || pk.TopicName != "done" {
		t.Fatalf("got type %d, want the PUBLISH of done", pk.FixedHeader.Type)
	}
	dropped := atomic.LoadInt64(&b.server.Info.MessagesDropped)
	if dropped == 0 {
		t.Fatal("mochi dropped nothing: the subscriber's queue never filled")
	}
	// Every message mochi dropped is counted for /metrics.
	if d := obs.drops(ReasonWriteQueueFull); int64(d) != dropped {
		t.Errorf("%d write_queue_full drops counted, mochi dropped %d", d, dropped)
	}
	cl, _ := b.server.Clients.Get("stuck")
	// 16 queued and one being written.
	if q := b.writes.account(cl).Load(); q > 17*size {
		t.Errorf("%d bytes charged; mochi holds at most 17 messages of %d", q, size)
	}
}

// BenchmarkWriteQueueQoS0 is what the write-queue hook costs a QoS 0
// PUBLISH (OnPublish and OnPublished: a topic copy, a registration under
// the hook's mutex), from publishers on every core at once.
func BenchmarkWriteQueueQoS0(b *testing.B) {
	h := newWriteQueueHook(1<<20, 2, mqtt.NewTopicsIndex(), newLimitObserver())
	payload := bytes.Repeat([]byte("v"), 300)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		pk := packets.Packet{TopicName: fmt.Sprintf("fleet/%d/gps", n.Add(1)), Payload: payload}
		for pb.Next() {
			out, _ := h.OnPublish(nil, pk)
			h.OnPublished(nil, out)
		}
	})
}
