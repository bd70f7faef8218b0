package broker

import (
	"errors"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// session is one connection's queue of tickets and the goroutine that
// answers them in order.
type session struct {
	h      *ingestHook
	cl     *mqtt.Client
	log    *clientLog // shared by every connection of this client id
	queue  chan *ticket
	closed chan struct{}
	once   sync.Once
	// failed is set (by the ack goroutine only) once an MQTT 3.1.1
	// connection has been cut for a failed message: nothing after it may be
	// acknowledged, or the client would re-send the failed one after newer
	// ones.
	failed bool
	// refused is set (by the connection's read goroutine only, in
	// OnPublish) once an MQTT 3.1.1 message got no room under limits.*:
	// later messages of the connection are not taken either, or one of them
	// could be stored before the refused one is re-sent.
	refused bool
}

func newSession(h *ingestHook, cl *mqtt.Client, log *clientLog) *session {
	// The ack goroutine holds the oldest ticket while it waits, so the
	// queue holds one fewer: max_inflight tickets in all.
	return &session{h: h, cl: cl, log: log, queue: make(chan *ticket, h.b.cfg.MaxInflight-1), closed: make(chan struct{})}
}

// enqueue adds t, blocking while the window is full. It returns false when
// the session closed meanwhile.
func (s *session) enqueue(t *ticket) bool {
	select {
	case s.queue <- t:
		return true
	default:
	}
	// The wait ends by the oldest ticket's deadline, before t's.
	holdConnection(s.cl, t.deadline)
	select {
	case s.queue <- t:
		return true
	case <-s.closed:
		return false
	}
}

func (s *session) close() { s.once.Do(func() { close(s.closed) }) }

// ackLoop answers tickets in arrival order until the session closes; the
// tickets left then are abandoned unanswered (the client re-sends them).
func (s *session) ackLoop() {
	defer s.h.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var t *ticket
		select {
		case t = <-s.queue:
		case <-s.closed:
			s.abandon()
			return
		}
		err := s.wait(t, timer)
		select {
		case <-t.done:
			s.log.settle(t, t.err == nil)
		default:
			// Still on its way to Kafka (timeout, or this connection
			// closed): a re-send from the next connection will wait for
			// the real outcome.
		}
		switch {
		case errors.Is(err, errSessionClosed):
			s.h.inflight.Add(-1)
			s.abandon()
			return
		case s.failed:
		case t.refusal != nil:
			writeRefusalAck(s.cl, *t.refusal, s.h.log)
		case errors.Is(err, errShuttingDown):
			// Refused without an answer; it was the connection's last
			// message (its read loop waited on it), so order holds.
			s.failed = true
		case err != nil:
			s.fail(t, err)
		default:
			s.ack(t)
		}
		s.h.inflight.Add(-1)
	}
}

var errSessionClosed = errors.New("session closed")

// wait waits for t's records, its deadline, or the end of the session.
func (s *session) wait(t *ticket, timer *time.Timer) error {
	select {
	case <-t.done:
		return t.err
	default:
	}
	timer.Reset(time.Until(t.deadline))
	defer timer.Stop()
	select {
	case <-t.done:
		return t.err
	case <-timer.C:
		select {
		case <-t.done: // completed at the deadline: its own error tells more
			return t.err
		default:
		}
		if t.awaitingRoom.Load() {
			return errInflightLimit
		}
		return errDeliveryTimeout
	case <-s.closed:
		return errSessionClosed
	}
}

// abandon drops the queued tickets of a closed session.
func (s *session) abandon() {
	for {
		select {
		case <-s.queue:
			s.h.inflight.Add(-1)
		default:
			return
		}
	}
}

// ack acknowledges a stored message and fans it out to any subscribers.
func (s *session) ack(t *ticket) {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: t.id}
	if t.qos == 2 {
		pk.FixedHeader.Type = packets.Pubrec
		// mochi answers the client's PUBREL from its inflight store.
		s.cl.State.Inflight.Set(pk)
	}
	if err := s.cl.WritePacket(pk); err != nil {
		s.h.log.Debug("mqtt ack not sent", zap.String("client_id", s.cl.ID), zap.Error(err))
	} else {
		s.h.obs.Acked("mqtt", time.Since(t.received))
	}
	s.h.b.fanOut(t)
}

// fail tells the client that t was not stored: an MQTT 5 client gets a
// PUBACK (PUBREC) with an error reason code (0x97 quota exceeded when the
// gateway had no room for it under limits.*, 0x80 otherwise); an MQTT 3.1.1
// client, which has no such code, is disconnected and re-sends from its
// session.
func (s *session) fail(t *ticket, err error) {
	code := packets.ErrUnspecifiedError
	switch {
	case errors.Is(err, errInflightLimit):
		code = packets.ErrQuotaExceeded
		s.h.obs.Refused(reasonInflightLimit)
	case errors.Is(err, errDeliveryTimeout):
		s.h.obs.Refused(reasonDeliveryTimeout)
	}
	// One line per failure, sampled: under a Kafka outage every in-flight
	// message fails at once.
	s.h.log.Warn("mqtt message not stored; not acknowledged", zap.String("client_id", s.cl.ID),
		zap.String("remote", s.cl.Net.Remote), zap.Uint8("protocol", s.cl.Properties.ProtocolVersion),
		zap.Uint16("packet_id", t.id), zap.String("mqtt_topic", t.topic), zap.Error(err))
	if s.cl.Properties.ProtocolVersion < 5 {
		s.failed = true
		s.cl.Stop(err)
		return
	}
	typ := packets.Puback
	if t.qos == 2 {
		typ = packets.Pubrec
	}
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: typ},
		PacketID:    t.id,
		ReasonCode:  code.Code,
		Properties:  packets.Properties{ReasonString: "not stored: " + err.Error()},
	}
	if werr := s.cl.WritePacket(pk); werr != nil {
		s.h.log.Debug("mqtt error ack not sent", zap.String("client_id", s.cl.ID), zap.Error(werr))
	}
}

// fanOut delivers a stored QoS 1/2 message to the broker's own subscribers,
// which mochi skipped because the hook rejected the packet.
func (b *Broker) fanOut(t *ticket) {
	subs := b.server.Topics.Subscribers(t.topic)
	if !t.retain && len(subs.Subscriptions) == 0 && len(subs.Shared) == 0 && len(subs.InlineSubscriptions) == 0 {
		return
	}
	if err := b.server.Publish(t.topic, t.payload, t.retain, t.qos); err != nil {
		b.log.Warn("mqtt fan-out failed", zap.String("topic", t.topic), zap.Error(err))
	}
}
