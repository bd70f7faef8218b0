package broker

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// keepPubrec puts ack, the PUBREC of an inbound QoS 2 message, in cl's
// in-flight store, so that mochi answers the client's PUBREL from it (and
// gives the receive quota back). It stamps the creation time, as mochi's own acks do (buildAck): mochi's
// once-a-second sweep (Client.ClearExpiredInflights) drops any entry
// created longer ago than the maximum message expiry interval, so an entry
// without one went at the next tick, and a PUBREL coming after that got
// PUBCOMP 0x92 (packet identifier not found) with its quota never returned.
func keepPubrec(cl *mqtt.Client, ack packets.Packet) {
	ack.Created = time.Now().Unix()
	cl.State.Inflight.Set(ack)
}
