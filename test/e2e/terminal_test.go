package e2e

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// probeResult is what became of one QoS 1 publish: acknowledged or not, and
// when the client learnt it.
type probeResult struct {
	acked bool
	err   error
	at    time.Time
	took  time.Duration
}

func (r probeResult) String() string {
	if r.acked {
		return fmt.Sprintf("PUBACK after %s", r.took.Round(time.Millisecond))
	}
	return fmt.Sprintf("no PUBACK: %v after %s", r.err, r.took.Round(time.Millisecond))
}

// dialPaho connects an MQTT 3.1.1 paho client with a clean session and no
// automatic reconnect.
func dialPaho(t *testing.T, addr, clientID string) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetKeepAlive(30 * time.Second).SetWriteTimeout(10 * time.Second).SetOrderMatters(false)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", clientID, addr, tok.Error())
	}
	t.Cleanup(func() {
		if c.IsConnected() {
			c.Disconnect(100)
		}
	})
	return c
}

// publishProbe publishes at QoS 1 and waits up to timeout for the outcome.
// With a clean session and no automatic reconnect, paho fails the token when
// the connection is lost, so "acked" really means a PUBACK came.
func publishProbe(c paho.Client, payload string, timeout time.Duration) probeResult {
	began := time.Now()
	tok := c.Publish("report", 1, false, payload)
	if !tok.WaitTimeout(timeout) {
		return probeResult{err: fmt.Errorf("still waiting after %s", timeout), at: time.Now(), took: time.Since(began)}
	}
	return probeResult{acked: tok.Error() == nil, err: tok.Error(), at: time.Now(), took: time.Since(began)}
}
