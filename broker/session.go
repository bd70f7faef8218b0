package broker

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// session is one connection's tickets, answered in arrival order.
//
// No goroutine waits on an idle connection: a ticket's completion (on the
// producer's goroutine) or its deadline (a timer armed only while tickets
// are pending) starts a flusher when the oldest ticket can be answered. The
// flusher takes every ticket that is ready at the head of the queue,
// writes their PUBACKs (PUBRECs) in one write, fans the messages out to
// subscribers, and ends when the head is not ready any more. So acks of
// messages stored together leave in one TCP segment, and one connection
// never has two flushers.
type session struct {
	h   *ingestHook
	cl  *mqtt.Client
	log *clientLog // shared by every connection of this client id
	v5  bool       // MQTT 5: receive quota and reason codes

	mu       sync.Mutex
	ring     []*ticket // pending tickets, a ring of max_inflight; nil until the first
	head     int       // index of the oldest pending ticket in ring
	n        int       // pending tickets
	flushing bool      // a flusher is running
	closed   bool
	timer    *time.Timer // fires at the head's deadline; nil until needed
	armed    bool        // timer is set
	room     chan struct{}

	// failed is set (by the flusher only) once an MQTT 3.1.1 connection
	// has been cut for a failed message: nothing after it may be
	// acknowledged, or the client would re-send the failed one after newer
	// ones.
	failed bool
	// refused is set (by the connection's read goroutine only, in
	// OnPublish) once an MQTT 3.1.1 message got no room under limits.*:
	// later messages of the connection are not taken either, or one of them
	// could be stored before the refused one is re-sent.
	refused bool

	// Flusher-owned scratch space, kept between flushes of a busy
	// connection.
	batch []*ticket
	wbuf  []byte // acks encoded and not yet written (writeAcks)
	wacks int    // how many
}

func newSession(h *ingestHook, cl *mqtt.Client, log *clientLog) *session {
	return &session{h: h, cl: cl, log: log, v5: cl.Properties.ProtocolVersion >= 5, room: make(chan struct{}, 1)}
}

// queued returns the number of pending tickets. Under s.mu.
func (s *session) queued() int { return s.n }

// oldest returns the oldest pending ticket; queued() > 0. Under s.mu.
func (s *session) oldest() *ticket { return s.ring[s.head] }

// pop removes the oldest pending ticket. Under s.mu.
func (s *session) pop() *ticket {
	t := s.ring[s.head]
	s.ring[s.head] = nil
	s.head = (s.head + 1) % len(s.ring)
	s.n--
	return t
}

// enqueue adds t, blocking while max_inflight tickets are pending (MQTT
// 3.1.1: the back-pressure; MQTT 5 clients are held to it by the receive
// quota). It returns false when the session closed meanwhile.
func (s *session) enqueue(t *ticket) bool {
	limit := s.h.b.cfg.MaxInflight
	held := false
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return false
		}
		if s.n < limit {
			if s.ring == nil {
				s.ring = make([]*ticket, limit)
			}
			s.ring[(s.head+s.n)%limit] = t
			s.n++
			if !s.armed && !s.flushing {
				s.arm(t.deadline)
			}
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
		if !held {
			// The wait ends by the oldest ticket's deadline, before t's.
			holdConnection(s.cl, t.deadline)
			held = true
		}
		<-s.room
	}
}

// arm sets the timer to fire at deadline. Under s.mu.
func (s *session) arm(deadline time.Time) {
	d := time.Until(deadline)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.onTimer)
	} else {
		s.timer.Reset(d)
	}
	s.armed = true
}

func (s *session) onTimer() {
	s.mu.Lock()
	s.armed = false
	if !s.startFlush() && !s.closed && !s.flushing && s.queued() > 0 {
		// Armed for a ticket answered since: wait for the new head.
		s.arm(s.oldest().deadline)
	}
	s.mu.Unlock()
}

// kick is called when a ticket completed.
func (s *session) kick() {
	s.mu.Lock()
	s.startFlush()
	s.mu.Unlock()
}

// startFlush starts a flusher if the head ticket can be answered and none
// runs, and reports whether it did. Under s.mu.
func (s *session) startFlush() bool {
	if s.flushing || s.closed || s.queued() == 0 {
		return false
	}
	if t := s.oldest(); !t.isDone() && time.Now().Before(t.deadline) {
		return false
	}
	s.flushing = true
	s.h.wg.Add(1)
	go s.flush()
	return true
}

// takeReady moves the answerable tickets at the head into s.batch. When
// there are none it ends the flusher's turn (re-arming the timer for the
// new head) and returns false.
func (s *session) takeReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batch = s.batch[:0]
	if s.closed {
		s.flushing = false
		return false
	}
	now := time.Now()
	for s.n > 0 {
		if t := s.oldest(); !t.isDone() && now.Before(t.deadline) {
			break
		}
		s.batch = append(s.batch, s.pop())
	}
	if len(s.batch) > 0 {
		select {
		case s.room <- struct{}{}:
		default:
		}
		return true
	}
	s.flushing = false
	if cap(s.wbuf) > maxKeptAckBuffer {
		s.wbuf = nil
	}
	if s.n > 0 && !s.armed {
		s.arm(s.oldest().deadline)
	}
	return false
}

// flush answers ready tickets until none is ready.
func (s *session) flush() {
	defer s.h.wg.Done()
	for s.takeReady() {
		s.answer(s.batch)
	}
}

// answer acknowledges or fails each ticket of batch, in order: every
// answer is encoded into s.wbuf, which writeAcks writes in one write.
func (s *session) answer(batch []*ticket) {
	for i, t := range batch {
		err := t.result()
		s.log.settleIfDone(t)
		switch {
		case s.failed:
		case t.refusal != nil:
			keepRefusalPubrec(s.cl, *t.refusal)
			s.appendPacket(*t.refusal)
		case errors.Is(err, errShuttingDown):
			// Refused without an answer; it was the connection's last
			// message (its read loop waited on it), so order holds.
			s.failed = true
		case isRefusal(err):
			s.refuse(t, err)
		case err != nil:
			s.fail(t, err)
		default:
			s.appendAck(t)
			continue
		}
		batch[i] = nil // not stored: no fan-out
	}
	s.writeAcks()
	s.h.inflight.Add(-int64(len(batch)))
	for _, t := range batch {
		if t != nil && t.fan != nil {
			s.h.b.fanout.publish(s.cl, t)
		}
	}
}

// appendAck encodes t's success PUBACK (PUBREC for QoS 2) into s.wbuf. A
// success ack without properties is the same four bytes in MQTT 3.1.1 and 5.
func (s *session) appendAck(t *ticket) {
	typ := byte(packets.Puback)
	if t.qos == 2 {
		typ = packets.Pubrec
		// mochi answers the client's PUBREL from its inflight store, and
		// gives back the receive quota then.
		keepPubrec(s.cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: t.id})
	} else if s.v5 {
		s.cl.State.Inflight.IncreaseReceiveQuota()
	}
	s.h.obs.Acked("mqtt", time.Since(t.received))
	s.wbuf = append(s.wbuf, typ<<4, 2, byte(t.id>>8), byte(t.id))
	s.wacks++
}

// appendPacket encodes pk, a PUBACK or PUBREC with a reason code or
// properties, into s.wbuf as mochi's Client.WritePacket would for this
// client: in its protocol version, without a reason string that would not
// fit its Maximum Packet Size (MQTT-3.4.2-2), without problem information
// if it asked for none (MQTT-3.1.2-29).
func (s *session) appendPacket(pk packets.Packet) {
	props := &s.cl.Properties
	pk.ProtocolVersion = props.ProtocolVersion
	pk.Mods.MaxSize = props.Props.MaximumPacketSize
	pk.Mods.DisallowProblemInfo = props.Props.RequestProblemInfoFlag && props.Props.RequestProblemInfo == 0
	buf := bytes.NewBuffer(s.wbuf)
	_ = pk.PubackEncode(buf) // PUBACK and PUBREC encode alike, without error
	s.wbuf = buf.Bytes()
	s.wacks++
}

// writeAcks writes the acks encoded in s.wbuf to the connection in one
// write, under the client's lock as mochi's own writes are, and empties
// s.wbuf for reuse.
//
// Every PUBACK (PUBREC) the gateway sends a connection goes through here,
// error and refusal answers included, so they leave in PUBLISH order
// (MQTT-4.6.0-2): the session's one flusher encodes them in ticket order,
// which is arrival order, and each write follows the last. None may go
// through mochi's Client.WritePacket instead: while the client has packets
// queued for it (deliveries to a subscriber), WritePacket keeps what it
// encodes in the client's write buffer until the queue is drained or the
// buffer fills, and a later write here, straight to the socket, overtook
// it (TestAcksInPublishOrderWhileDeliveriesQueued).
//
// What this write may overtake in that buffer is never a PUBACK or PUBREC
// of a message the gateway took: deliveries and mochi's PUBREL, PUBCOMP,
// SUBACK and PINGRESP belong to other flows. Of the answers mochi's
// processPublish writes itself, one can happen in fleetgate, for a client
// protocol error, before the ingest hook sees the message: PUBREC 0x91 for
// a PUBLISH that reuses the packet id of a QoS 2 message whose PUBREL has
// not come. That answer can overtake the acks of earlier messages still on
// their way to Kafka. The others cannot: an ACL denial (authHook.OnACLCheck
// allows every PUBLISH; the policy is asked in OnPublish and answered
// through the session) and an error returned by OnPublish (the ingest hook
// returns only packets.ErrRejectPacket for QoS 1 and 2).
func (s *session) writeAcks() {
	if len(s.wbuf) == 0 {
		return
	}
	if cl := s.cl; !cl.Closed() && cl.Net.Conn != nil {
		cl.Lock()
		n, err := cl.Net.Conn.Write(s.wbuf)
		cl.Unlock()
		info := s.h.b.server.Info
		atomic.AddInt64(&info.BytesSent, int64(n))
		if err == nil {
			atomic.AddInt64(&info.PacketsSent, int64(s.wacks))
		} else {
			s.h.log.Debug("mqtt acks not sent", zap.String("client_id", cl.ID), zap.Error(err))
		}
	}
	s.wbuf, s.wacks = s.wbuf[:0], 0
}

// close ends the session: pending tickets are dropped unanswered (the
// client re-sends them on its next connection).
func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	dropped := s.n
	for s.n > 0 {
		// A ticket still on its way to Kafka stays in the resend log: a
		// re-send from the next connection waits for its real outcome.
		s.log.settleIfDone(s.pop())
	}
	s.h.inflight.Add(-int64(dropped))
	close(s.room)
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
	if !s.v5 {
		s.writeAcks() // the earlier acks go before the connection is cut
		s.failed = true
		s.cl.Stop(err)
		return
	}
	typ := packets.Puback
	if t.qos == 2 {
		typ = packets.Pubrec
	}
	// An error reason ends the QoS 1 and QoS 2 flows alike: the quota
	// comes back now.
	s.cl.State.Inflight.IncreaseReceiveQuota()
	s.appendPacket(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: typ},
		PacketID:    t.id,
		ReasonCode:  code.Code,
		Properties:  packets.Properties{ReasonString: "not stored: " + err.Error()},
	})
}

// maxKeptAckBuffer is the largest ack buffer a session keeps between
// flushes: 64 acks.
const maxKeptAckBuffer = 256
