package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
)

// ingestHook hands every PUBLISH to the pipeline.
//
// mochi calls OnPublish on the connection's read goroutine and, unless the
// hook returns packets.ErrRejectPacket, writes the PUBACK right after it. For
// QoS 1 and 2 the hook therefore takes the message, queues a ticket on the
// connection's session and rejects the packet; the session's ack goroutine
// writes PUBACK (PUBREC) in arrival order once each ticket's records are
// stored. The queue's capacity (mqtt.max_inflight) is the connection's
// window: when it is full, OnPublish blocks, and so does reading the socket.
type ingestHook struct {
	mqtt.HookBase
	b        *Broker
	pipeline Pipeline
	log      *zap.Logger

	obs   Observer
	limit Limiter // nil: no process-wide bound

	ctx    context.Context // cancelled by stop: abandons waits for Kafka
	cancel context.CancelFunc
	// drainCtx is cancelled by drain: waits for room give up.
	drainCtx    context.Context
	drainCancel context.CancelFunc
	draining    atomic.Bool
	inflight    atomic.Int64 // tickets taken and not yet answered, all sessions
	resends     *resendLog
	sessions    sync.Map // *mqtt.Client -> *session
	wg          sync.WaitGroup
}

func newIngestHook(b *Broker, p Pipeline, log *zap.Logger, op options) *ingestHook {
	ctx, cancel := context.WithCancel(context.Background())
	drainCtx, drainCancel := context.WithCancel(ctx)
	return &ingestHook{b: b, pipeline: p, log: log, obs: op.obs, limit: op.limit,
		ctx: ctx, cancel: cancel, drainCtx: drainCtx, drainCancel: drainCancel,
		resends: newResendLog(b.cfg.MaxInflight, resendTTL)}
}

// ID implements mqtt.Hook.
func (h *ingestHook) ID() string { return "fleetgate-ingest" }

// Provides implements mqtt.Hook.
func (h *ingestHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnPublish:
		return true
	}
	return false
}

// OnSessionEstablished implements mqtt.Hook: it creates the connection's
// session before mochi reads its first packet. A session costs no
// goroutine until it has a message to answer.
func (h *ingestHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if cl.Net.Inline {
		return
	}
	h.sessions.Store(cl, newSession(h, cl, h.resends.client(cl.ID)))
	h.obs.ClientConnected()
	h.log.Debug("mqtt client connected", zap.String("client_id", cl.ID), zap.String("remote", cl.Net.Remote),
		zap.Uint8("protocol", cl.Properties.ProtocolVersion))
}

// OnDisconnect implements mqtt.Hook. The read loop has ended, so no
// OnPublish for this client runs any more.
func (h *ingestHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if v, ok := h.sessions.LoadAndDelete(cl); ok {
		v.(*session).close()
		h.obs.ClientDisconnected()
	}
	if expire && !cl.IsTakenOver() {
		h.resends.forget(cl.ID) // a clean session starts over: nothing to re-send
	}
	h.log.Debug("mqtt client disconnected", zap.String("client_id", cl.ID), zap.Error(err))
}

// OnPublish implements mqtt.Hook.
func (h *ingestHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // our own republish and fan-out
	}
	principal, ok := h.b.auth.allowPublish(cl, pk)
	if !ok {
		return pk, packets.ErrRejectPacket // denied by the policy and answered (auth.go)
	}
	msg := &router.Message{
		Source:    "mqtt",
		Topic:     pk.TopicName,
		ClientID:  cl.ID,
		Principal: principal,
		Payload:   pk.Payload,
		Received:  time.Now(),
		SourceIP:  router.RemoteIP(cl.Net.Remote),
		MQTT:      mqttProperties(&pk.Properties),
	}
	if pk.FixedHeader.Qos == 0 {
		if !h.draining.Load() {
			h.processQoS0(cl, msg)
		}
		return pk, nil // mochi fans it out to subscribers
	}
	v, ok := h.sessions.Load(cl)
	if !ok || h.draining.Load() {
		return pk, errRejectPacket // no ack: the client re-sends it
	}
	s := v.(*session)
	if s.refused {
		return pk, errRejectPacket // the connection is being cut: see session.refused
	}
	t := &ticket{
		s:        s,
		id:       pk.PacketID,
		qos:      pk.FixedHeader.Qos,
		topic:    pk.TopicName,
		sum:      messageSum(pk.TopicName, pk.Payload),
		received: msg.Received,
		deadline: msg.Received.Add(h.b.cfg.DeliveryTimeout),
	}
	if pk.FixedHeader.Retain || atomic.LoadInt64(&h.b.server.Info.Subscriptions) > 0 {
		// Kept for the fan-out once stored. A packet is 800 bytes: with
		// nobody subscribed (a fleet's usual case) it is not kept.
		kept := pk
		t.fan = &kept
	}
	var first *ticket
	stored := false
	if pk.FixedHeader.Dup {
		first, stored = s.log.original(t.id, t.sum)
	}
	if s.v5 {
		// mochi checks the receive quota before OnPublish and disconnects
		// a client that sends more than Receive Maximum unanswered QoS 1/2
		// messages (0x93), but counts only the messages it acknowledges
		// itself: this one is ours. The ack gives it back (QoS 2: the
		// PUBREL), so the quota is taken before the ticket can be answered.
		cl.State.Inflight.DecreaseReceiveQuota()
	}
	h.inflight.Add(1)
	if !s.enqueue(t) {
		h.inflight.Add(-1)
		return pk, errRejectPacket
	}
	switch {
	case stored:
		// The first copy is in Kafka; only its PUBACK was lost.
		h.obs.Resent()
		t.complete(nil)
	case first != nil:
		// The first copy (from the previous connection) is still on its
		// way to Kafka: answer with its outcome.
		h.obs.Resent()
		go func() {
			<-first.doneChan()
			t.complete(first.err)
		}()
	default:
		s.log.record(t)
		t.awaitingRoom.Store(true)
		if err := h.admit(cl, msg); err != nil {
			s.refused = cl.Properties.ProtocolVersion < 5
			t.complete(err)
			t.awaitingRoom.Store(false)
			break
		}
		t.awaitingRoom.Store(false)
		h.pipeline.Process(h.ctx, msg, func(err error) {
			h.release(msg)
			t.complete(err)
		})
	}
	return pk, errRejectPacket
}

// processQoS0 hands a QoS 0 message to the pipeline. There is no ack to
// withhold, so one that gets no room in time is dropped, counted and logged.
func (h *ingestHook) processQoS0(cl *mqtt.Client, msg *router.Message) {
	if err := h.admit(cl, msg); err != nil {
		if errors.Is(err, errInflightLimit) {
			h.obs.Refused(reasonInflightLimit)
		}
		h.log.Warn("qos 0 message dropped", zap.String("client_id", cl.ID), zap.String("remote", cl.Net.Remote),
			zap.String("mqtt_topic", msg.Topic), zap.Int("payload_bytes", len(msg.Payload)), zap.Error(err))
		return
	}
	h.pipeline.Process(h.ctx, msg, func(err error) {
		h.release(msg)
		if err != nil {
			h.log.Warn("qos 0 message not stored", zap.String("client_id", cl.ID), zap.String("mqtt_topic", msg.Topic), zap.Error(err))
		}
	})
}

// admit takes room for msg under limits.*, waiting while there is none
// until kafka.delivery_timeout after its arrival. It runs on the
// connection's read goroutine, so the wait pauses reading the socket (the
// back-pressure), and it holds no lock meanwhile. It returns
// errInflightLimit when no room came in time, errShuttingDown when the
// broker began draining during the wait. release gives the room back.
func (h *ingestHook) admit(cl *mqtt.Client, msg *router.Message) error {
	if h.limit == nil {
		return nil
	}
	n := int64(len(msg.Payload))
	if h.limit.TryAcquire(1, n) {
		return nil
	}
	deadline := msg.Received.Add(h.b.cfg.DeliveryTimeout)
	holdConnection(cl, deadline)
	ctx, cancel := context.WithDeadline(h.drainCtx, deadline)
	defer cancel()
	if err := h.limit.Acquire(ctx, 1, n); err != nil {
		if h.drainCtx.Err() != nil {
			return errShuttingDown
		}
		return errInflightLimit
	}
	return nil
}

// release gives back the room admit took for msg.
func (h *ingestHook) release(msg *router.Message) {
	if h.limit != nil {
		h.limit.Release(1, int64(len(msg.Payload)))
	}
}

// holdConnection moves the connection's deadline, which mochi sets to 1.5
// keep-alive periods before each read, past until: while the gateway makes
// a terminal wait, the terminal's silence is not its fault, and the
// PUBACKs written meanwhile must not fail on an expired deadline.
func holdConnection(cl *mqtt.Client, until time.Time) {
	if cl.Net.Conn == nil || cl.State.Keepalive == 0 {
		return
	}
	ka := time.Duration(cl.State.Keepalive) * time.Second
	_ = cl.Net.Conn.SetDeadline(until.Add(ka + ka/2))
}

// drain makes the hook refuse new messages (no ack) from now on, and gives
// up waits for room.
func (h *ingestHook) drain() {
	h.draining.Store(true)
	h.drainCancel()
}

// waitIdle returns once every taken message has been answered, or ctx ends.
func (h *ingestHook) waitIdle(ctx context.Context) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for h.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("mqtt: %d messages still waiting for kafka at shutdown (not acknowledged): %w", h.inflight.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// sweepResends forgets clients gone for resendTTL, until stop.
func (h *ingestHook) sweepResends() {
	defer h.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			h.resends.sweep(now)
		case <-h.ctx.Done():
			return
		}
	}
}

// stop ends every session and waits for the flushers.
func (h *ingestHook) stop() {
	h.cancel()
	h.sessions.Range(func(k, v any) bool {
		h.sessions.Delete(k)
		v.(*session).close()
		return true
	})
	h.wg.Wait()
}

// ticket is one QoS 1/2 message waiting for its records to be stored.
type ticket struct {
	s        *session
	id       uint16
	qos      byte
	topic    string
	fan      *packets.Packet // as received, for the fan-out once stored; nil: nobody to get it
	sum      uint64          // messageSum(topic, payload)
	received time.Time
	deadline time.Time
	// awaitingRoom is set while the message waits for room under
	// limits.*: a ticket that times out then failed for lack of room.
	awaitingRoom atomic.Bool
	refusal      *packets.Packet // the answer of a PUBLISH the policy denied (refusal.go)
	err          error           // set before done
	done         atomic.Bool     // completed

	// doneCh is made only for a re-send waiting for this first copy.
	mu     sync.Mutex
	doneCh chan struct{}
}

// complete is the pipeline's done callback.
func (t *ticket) complete(err error) {
	t.err = err
	t.mu.Lock()
	t.done.Store(true)
	if t.doneCh != nil {
		close(t.doneCh)
	}
	t.mu.Unlock()
	if t.s != nil {
		t.s.kick()
	}
}

func (t *ticket) isDone() bool { return t.done.Load() }

// doneChan returns a channel closed once t completed.
func (t *ticket) doneChan() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.doneCh == nil {
		t.doneCh = make(chan struct{})
		if t.done.Load() {
			close(t.doneCh)
		}
	}
	return t.doneCh
}

// result is the outcome of a ticket taken for answering: its own when it
// completed, else the reason its deadline passed.
func (t *ticket) result() error {
	switch {
	case t.isDone():
		return t.err
	case t.awaitingRoom.Load():
		return errInflightLimit
	}
	return errDeliveryTimeout
}

// errRejectPacket is packets.ErrRejectPacket as an error value, boxed
// once: OnPublish returns it for every QoS 1/2 message.
var errRejectPacket error = packets.ErrRejectPacket

// resendTTL is how long a disconnected client's recent packet ids are kept
// for recognising its re-sends.
const resendTTL = 10 * time.Minute

// errDeliveryTimeout fails a message that Kafka did not take in time.
var errDeliveryTimeout = errors.New("kafka did not store the message within kafka.delivery_timeout")

// errInflightLimit fails a message that got no room under limits.* within
// kafka.delivery_timeout.
var errInflightLimit = errors.New("gateway at its in-flight bound (limits.*) for kafka.delivery_timeout")

// errShuttingDown refuses, without an answer, a message that was waiting
// for room when the broker began to drain.
var errShuttingDown = errors.New("broker shutting down")

// mqttProperties are the MQTT 5 PUBLISH properties rules can read
// (get_mqtt_property, get_user_properties); nil when there are none, as
// always for MQTT 3.1.1.
func mqttProperties(p *packets.Properties) *router.MQTTProperties {
	if !p.PayloadFormatFlag && p.ContentType == "" && p.ResponseTopic == "" && p.CorrelationData == nil && len(p.User) == 0 {
		return nil
	}
	out := &router.MQTTProperties{
		PayloadFormat:    p.PayloadFormat,
		HasPayloadFormat: p.PayloadFormatFlag,
		ContentType:      p.ContentType,
		ResponseTopic:    p.ResponseTopic,
		CorrelationData:  p.CorrelationData,
	}
	if len(p.User) > 0 {
		out.UserProperties = make([]router.UserProperty, len(p.User))
		for i, u := range p.User {
			out.UserProperties[i] = router.UserProperty{Key: u.Key, Value: u.Val}
		}
	}
	return out
}
