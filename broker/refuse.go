package broker

import (
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
)

// isRefusal tells a message the rule engine refused for what it claims
// (router.Refusal: identity_mismatch) from one it failed to store.
func isRefusal(err error) bool {
	_, ok := router.Refused(err)
	return ok
}

// refuse answers a refused message. Its error records are stored, so it is
// acknowledged either way, never re-sent: an MQTT 5 client gets PUBACK
// (PUBREC) 0x87 not authorized with the reason as reason string; an MQTT
// 3.1.1 client, which has no such code, a plain PUBACK (PUBREC). It is not
// fanned out to subscribers. The engine counted it by reason; the log line
// (sampled) adds the connection.
func (s *session) refuse(t *ticket, err error) {
	r, _ := router.Refused(err)
	s.h.log.Info("mqtt message refused", zap.String("reason", r.Reason), zap.String("client_id", s.cl.ID),
		zap.String("principal", r.Principal), zap.String("claimed_id", r.Claimed), zap.String("remote", s.cl.Net.Remote),
		zap.Uint8("protocol", s.cl.Properties.ProtocolVersion), zap.Uint16("packet_id", t.id), zap.String("mqtt_topic", t.topic))
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: t.id}
	if t.qos == 2 {
		pk.FixedHeader.Type = packets.Pubrec
	}
	if s.cl.Properties.ProtocolVersion >= 5 {
		pk.ReasonCode = packets.ErrNotAuthorized.Code
		pk.Properties.ReasonString = r.Reason
	}
	if s.v5 {
		// 0x87 ends the QoS 1 and QoS 2 flows alike: the receive quota
		// OnPublish took comes back now.
		s.cl.State.Inflight.IncreaseReceiveQuota()
	}
	keepRefusalPubrec(s.cl, pk)
	s.appendPacket(pk)
}
