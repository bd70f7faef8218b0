package broker

import (
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// inflightEntry returns ack ready for mochi's in-flight store, where the
// gateway leaves the PUBREC of an inbound QoS 2 message so that mochi
// answers the client's PUBREL from it (and gives the receive quota back).
// It carries its creation time, as mochi's own acks do (buildAck): mochi's
// once-a-second sweep (Client.ClearExpiredInflights) drops any entry
// created longer ago than the maximum message expiry interval, so an entry
// without one went at the next tick, and a PUBREL coming after that got
// PUBCOMP 0x92 (packet identifier not found) with its quota never returned.
func inflightEntry(ack packets.Packet) packets.Packet {
	ack.Created = time.Now().Unix()
	return ack
}
