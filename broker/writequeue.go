package broker

import (
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ReasonWriteQueueBytes: a QoS 0 message not queued for a connected
// subscriber whose writer already holds mqtt.max_pending_write_bytes.
const ReasonWriteQueueBytes = "write_queue_bytes"

// ReasonWriteQueueFull: a message mochi did not queue for a connected
// subscriber because its queue of mqtt.max_pending_writes packets was full.
const ReasonWriteQueueFull = "write_queue_full"

// writeQueueHook caps, per connection, the bytes of QoS 0 messages waiting
// in mochi's outbound queue (mqtt.max_pending_write_bytes). mochi bounds
// that queue only in packets (mqtt.max_pending_writes), each a full copy
// of the message: a subscriber that stays connected but does not read
// would hold max_pending_writes x max_packet_bytes. QoS 1/2 messages are
// left alone: they are in the session's inflight store, which queue.go
// caps in bytes.
//
// mochi has no hook when it queues a packet for a client, but it asks
// OnACLCheck(cl, pk.TopicName, false) just before, on the publisher's
// goroutine, for the packet between OnPublish and OnPublished. OnPublish
// gives each message a topic string of its own and registers it under the
// string's address; the delivery check (authHook.OnACLCheck calling
// admit) finds the message by that address, so a SUBSCRIBE filter check,
// which carries another string, is never taken for a delivery. A
// delivery that would take the connection's queue past the cap is refused
// (mochi does not queue it) and counted; an admitted one is charged, and
// uncharged when mochi hands it to the writer (OnPacketEncode) or drops
// it (OnPublishDropped). Retained messages sent on SUBSCRIBE are neither
// charged nor refused: their total is capped by
// mqtt.retained.max_total_bytes.
type writeQueueHook struct {
	mqtt.HookBase
	max    int64
	maxQos byte
	topics *mqtt.TopicsIndex
	obs    LimitObserver

	mu      sync.Mutex
	pending map[*byte]*outgoing // by the address of the message's topic

	queued sync.Map // *mqtt.Client -> *atomic.Int64: bytes charged
}

// outgoing is a message being handed to its subscribers.
type outgoing struct {
	bytes int64
	qos   byte            // of the message, after the server maximum
	subs  map[string]byte // QoS of each subscriber's subscription; nil for a QoS 0 message
}

func newWriteQueueHook(max int64, maxQos byte, topics *mqtt.TopicsIndex, obs LimitObserver) *writeQueueHook {
	return &writeQueueHook{max: max, maxQos: maxQos, topics: topics, obs: obs, pending: map[*byte]*outgoing{}}
}

// ID implements mqtt.Hook.
func (h *writeQueueHook) ID() string { return "fleetgate-write-queue" }

// Provides implements mqtt.Hook.
func (h *writeQueueHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPublish, mqtt.OnPublished, mqtt.OnPacketEncode, mqtt.OnPublishDropped, mqtt.OnDisconnect:
		return true
	}
	return false
}

// queuedBytes is what a message waiting for a writer is counted as: its
// payload and the properties a client chooses the size of. The topic is
// left out: an alias may replace it in the queued copy.
func queuedBytes(pk *packets.Packet) int64 { return messageBytes("", pk.Payload, pk.Properties) }

// OnPublish implements mqtt.Hook. It must be the last hook with OnPublish
// (mochi fans out the packet it returns, with the topic registered here)
// and it never rejects one (see boundsHook).
func (h *writeQueueHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.TopicName == "" {
		return pk, nil
	}
	pk.TopicName = strings.Clone(pk.TopicName)
	o := &outgoing{bytes: queuedBytes(&pk), qos: min(pk.FixedHeader.Qos, h.maxQos)}
	if o.qos > 0 {
		// A QoS 1/2 message reaches a QoS 0 subscription as QoS 0.
		o.subs = map[string]byte{}
		subs := h.topics.Subscribers(pk.TopicName)
		for id, s := range subs.Subscriptions {
			o.subs[id] = s.Qos
		}
		for _, group := range subs.Shared {
			for id, s := range group {
				o.subs[id] = max(o.subs[id], s.Qos)
			}
		}
	}
	key := unsafe.StringData(pk.TopicName)
	h.mu.Lock()
	h.pending[key] = o
	h.mu.Unlock()
	return pk, nil
}

// OnPublished implements mqtt.Hook: the message is in every subscriber's
// queue.
func (h *writeQueueHook) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	if pk.TopicName == "" {
		return
	}
	key := unsafe.StringData(pk.TopicName)
	h.mu.Lock()
	delete(h.pending, key)
	h.mu.Unlock()
}

// lookup returns the bytes of the message being published on topic if cl
// gets it as QoS 0; ok is false for anything else.
func (h *writeQueueHook) lookup(cl *mqtt.Client, topic string) (n int64, ok bool) {
	if topic == "" {
		return 0, false
	}
	h.mu.Lock()
	o := h.pending[unsafe.StringData(topic)]
	h.mu.Unlock()
	if o == nil || (o.qos > 0 && o.subs[cl.ID] > 0) {
		return 0, false
	}
	return o.bytes, true
}

func (h *writeQueueHook) account(cl *mqtt.Client) *atomic.Int64 {
	if v, ok := h.queued.Load(cl); ok {
		return v.(*atomic.Int64)
	}
	v, _ := h.queued.LoadOrStore(cl, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// admit decides the delivery of the message on topic to subscriber cl and
// charges it; false: over the cap, counted, not to be queued. Checks that
// are not a QoS 0 delivery of a registered message are admitted as they
// are.
func (h *writeQueueHook) admit(cl *mqtt.Client, topic string) bool {
	n, ok := h.lookup(cl, topic)
	if !ok || cl.Closed() {
		return true // a closed connection's account is gone (OnDisconnect)
	}
	a := h.account(cl)
	for {
		cur := a.Load()
		if cur+n > h.max {
			h.obs.BrokerDropped(ReasonWriteQueueBytes)
			return false
		}
		if a.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// release uncharges n bytes of cl's queue, never below zero: the write
// of an uncharged QoS 0 packet (a retained one sent on SUBSCRIBE) must not
// make room beyond the cap for others.
func (h *writeQueueHook) release(cl *mqtt.Client, n int64) {
	v, ok := h.queued.Load(cl)
	if !ok {
		return
	}
	a := v.(*atomic.Int64)
	for {
		cur := a.Load()
		next := max(cur-n, 0)
		if a.CompareAndSwap(cur, next) {
			return
		}
	}
}

// OnPacketEncode implements mqtt.Hook: mochi's writer took a packet from
// the queue.
func (h *writeQueueHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Publish && pk.FixedHeader.Qos == 0 {
		h.release(cl, queuedBytes(&pk))
	}
	return pk
}

// OnPublishDropped implements mqtt.Hook: mochi's queue for cl was full
// (mqtt.max_pending_writes), so the admitted message was not queued: it is
// counted, and its bytes are given back.
func (h *writeQueueHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.obs.BrokerDropped(ReasonWriteQueueFull)
	if n, ok := h.lookup(cl, pk.TopicName); ok {
		h.release(cl, n)
	}
}

// OnDisconnect implements mqtt.Hook: the connection's queue goes with it.
func (h *writeQueueHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) { h.queued.Delete(cl) }

// usage returns the bytes charged to the connected subscribers' queues.
func (h *writeQueueHook) usage() (total int64) {
	h.queued.Range(func(_, v any) bool {
		total += v.(*atomic.Int64).Load()
		return true
	})
	return total
}

// PendingWriteBytes returns the bytes of QoS 0 messages waiting for the
// writers of all connections, as counted against
// mqtt.max_pending_write_bytes. It is safe for concurrent use.
func (b *Broker) PendingWriteBytes() int64 { return b.writes.usage() }
