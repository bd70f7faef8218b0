package broker

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// errNotAuthorized completes the ticket of a PUBLISH the policy denied.
var errNotAuthorized = packets.ErrNotAuthorized

// answerInOrder queues the answer of a PUBLISH the policy denied (QoS 1
// or 2) on cl's session, so that its flusher writes it after the
// acks of the earlier messages still on their way to Kafka: PUBACKs leave
// in PUBLISH order (MQTT-4.6.0-2). It runs on the connection's read
// goroutine and, like any message, waits while the window is full.
func (h *ingestHook) answerInOrder(cl *mqtt.Client, ack packets.Packet) {
	v, ok := h.sessions.Load(cl)
	if !ok {
		writeRefusalAck(cl, ack, h.log) // no session: nothing earlier waits
		return
	}
	now := time.Now()
	s := v.(*session)
	t := &ticket{s: s, id: ack.PacketID, refusal: &ack, err: errNotAuthorized, received: now, deadline: now}
	t.done.Store(true) // answered already: it only waits for its turn
	h.inflight.Add(1)
	if !s.enqueue(t) {
		h.inflight.Add(-1) // the session closed: the client re-sends it
		return
	}
	s.kick()
}

// writeRefusalAck writes the answer of a denied PUBLISH of a connection
// without a session; with one, the session's flusher writes it
// (session.writeAcks tells why).
func writeRefusalAck(cl *mqtt.Client, ack packets.Packet, log *zap.Logger) {
	keepRefusalPubrec(cl, ack)
	if err := cl.WritePacket(ack); err != nil {
		log.Debug("mqtt refusal ack not sent", zap.String("client_id", cl.ID), zap.Error(err))
	}
}

// keepRefusalPubrec puts ack, the answer of a refused PUBLISH, in mochi's
// inflight store if it is a PUBREC without an error code (MQTT 3.1.1, which
// has none), so that mochi answers the client's PUBREL.
func keepRefusalPubrec(cl *mqtt.Client, ack packets.Packet) {
	if ack.FixedHeader.Type == packets.Pubrec && ack.ReasonCode < packets.ErrUnspecifiedError.Code {
		keepPubrec(cl, ack)
	}
}
