package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/test/mqttwire"
)

// TestAcksInPublishOrderWhileDeliveriesQueued: every PUBACK of a
// connection leaves in PUBLISH order (MQTT-4.6.0-2), success acks and the
// error and refusal acks among them alike, while the same connection has
// deliveries queued (mochi then buffers what it writes until its queue is
// drained). The client subscribes to a topic flooded with QoS 0 messages
// and publishes a mix of messages that are stored, fail (MQTT 5), are
// refused by the rule engine or are denied by the policy.
func TestAcksInPublishOrderWhileDeliveriesQueued(t *testing.T) {
	rounds := 8
	if testing.Short() {
		rounds = 2
	}
	b := securedBroker(t, verdictPipeline{}, nil)
	for _, version := range []byte{4, 5} {
		t.Run(fmt.Sprintf("mqtt-v%d", version), func(t *testing.T) {
			for round := 0; round < rounds; round++ {
				if !ackOrderRound(t, b, version) {
					return
				}
			}
		})
	}
}

// ackOrderRound runs one connection of TestAcksInPublishOrderWhileDeliveriesQueued;
// false when it failed.
func ackOrderRound(t *testing.T, b *Broker, version byte) bool {
	const n = 320
	c := login(t, b, version, "D3", "plain")
	defer c.conn.Close()
	if codes := c.subscribeAt(1, 0, "cmd/D3/#"); len(codes) != 1 || codes[0] != 0 {
		t.Fatalf("SUBACK %v", codes)
	}

	stop := make(chan struct{})
	var flood sync.WaitGroup
	flood.Add(1)
	go func() {
		defer flood.Done()
		payload := bytes.Repeat([]byte("x"), 300)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = b.Publish("cmd/D3/feed", payload, 0)
		}
	}()
	defer func() {
		close(stop)
		flood.Wait()
	}()

	// The acks as they arrive, read on a goroutine of their own so that the
	// deliveries never back up into the broker.
	acks := make(chan packets.Packet, n)
	readErr := make(chan error, 1)
	go func() {
		r := bufio.NewReader(c.conn)
		for got := 0; got < n; {
			_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			pk, err := mqttwire.ReadPacket(r, version)
			if err != nil {
				readErr <- fmt.Errorf("after %d acks: %w", got, err)
				return
			}
			if pk.FixedHeader.Type == packets.Puback {
				acks <- pk
				got++
			}
		}
	}()

	// In windows of half of mqtt.max_inflight: an MQTT 5 client must not
	// have more than Receive Maximum messages unanswered.
	const window = 32
	for start := 0; start < n; start += window {
		want := make([]byte, window) // the reason code each PUBACK must carry
		for i := start; i < start+window; i++ {
			topic, payload := "report", "ok"
			switch i % 5 {
			case 1:
				payload = "refuse"
				if version >= 5 {
					want[i-start] = packets.ErrNotAuthorized.Code
				}
			case 2:
				topic = "alerts/D9" // denied by the default policy
				if version >= 5 {
					want[i-start] = packets.ErrNotAuthorized.Code
				}
			case 3:
				if version >= 5 { // MQTT 3.1.1 would be disconnected
					payload = "fail"
					want[i-start] = packets.ErrUnspecifiedError.Code
				}
			}
			c.publish(uint16(i+1), 1, topic, []byte(payload))
		}
		for i := start; i < start+window; i++ {
			var pk packets.Packet
			select {
			case pk = <-acks:
			case err := <-readErr:
				t.Errorf("v%d: reading the acks: %v", version, err)
				return false
			}
			if pk.PacketID != uint16(i+1) || pk.ReasonCode != want[i-start] {
				t.Errorf("v%d: PUBACK %d of %d is id %d reason %#x, want id %d reason %#x (acks out of PUBLISH order)",
					version, i+1, n, pk.PacketID, pk.ReasonCode, i+1, want[i-start])
				return false
			}
		}
	}
	return true
}
