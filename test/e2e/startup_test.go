package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// TestFirstMessagesAfterTopicCreation starts the gateway on an empty
// cluster (it creates the topics, kafka.topics.create: true) and has 30
// terminals publish their first report at the same moment, as a fleet does
// when a gateway comes up. Every acknowledged report must be in its
// message-<type> topic, none in the dead-letter topic: the topics exist.
func TestFirstMessagesAfterTopicCreation(t *testing.T) {
	kc := kafkatest.StartT(t, kafkatest.Options{Nodes: 1})
	g := startGateway(t, kc, gatewayConfig{})
	run := newRunID()
	types := []string{"log", "gps", "kinematic", "adas", "boot"}

	const n = 30
	clients := make([]paho.Client, n)
	for i := range clients {
		clients[i] = dialPaho(t, g.MQTTAddr, fmt.Sprintf("FM-%s-%02d", run, i))
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]probeResult, n)
	for i, c := range clients {
		wg.Go(func() {
			<-start
			payload := fmt.Sprintf(`{"type":%q,"device_no":"FM-%s-%02d","seq":1,"run":%q}`, types[i%len(types)], run, i, run)
			results[i] = publishProbe(c, payload, 30*time.Second)
		})
	}
	close(start)
	wg.Wait()

	where := map[string]string{} // device → topic it landed in
	for _, r := range readTopics(t, kc, append(append([]string{}, reportTopics...), "message-dlq")...) {
		if v, err := r.report(); err == nil && v.Run == run {
			where[v.DeviceNo] += r.Topic + " "
		}
	}
	for i, res := range results {
		device := fmt.Sprintf("FM-%s-%02d", run, i)
		want := "message-" + types[i%len(types)] + " "
		switch {
		case !res.acked:
			t.Errorf("%s: %s", device, res)
		case where[device] != want:
			t.Errorf("%s: acknowledged, found in [%s], want [%s]", device, where[device], want)
		}
	}
}
