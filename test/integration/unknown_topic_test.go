package integration

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestUnknownTopicNoRetryStorm sends 1000 reports of a type that has no
// topic (message-nosuch): each must reach the error topic at once, without
// the producer retrying or the gateway asking Kafka for metadata per
// message.
func TestUnknownTopicNoRetryStorm(t *testing.T) {
	const n = 1000
	g := startGateway(t, nil)
	c := connect(t, g.MQTTAddr(), "DX")
	publish(t, c, "report", report("log", "DX", 0)) // warm: metadata, producer id

	var metadata, produce atomic.Int64
	cluster := g.Embedded().Cluster()
	count := func(counter *atomic.Int64) func(kmsg.Request) (kmsg.Response, error, bool) {
		return func(kmsg.Request) (kmsg.Response, error, bool) {
			cluster.KeepControl()
			counter.Add(1)
			return nil, nil, false // handled normally
		}
	}
	cluster.ControlKey(int16(kmsg.Metadata), count(&metadata))
	cluster.ControlKey(int16(kmsg.Produce), count(&produce))

	start := time.Now()
	window := make(chan paho.Token, 32)
	failures := make(chan error, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for tok := range window {
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				failures <- fmt.Errorf("no PUBACK: %v", tok.Error())
			}
		}
	}()
	for i := 1; i <= n; i++ {
		window <- c.Publish("report", 1, false, report("nosuch", "DX", i))
	}
	close(window)
	<-done
	elapsed := time.Since(start)
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	t.Logf("%d messages to an unknown topic acknowledged in %v: %d metadata and %d produce requests",
		n, elapsed.Round(time.Millisecond), metadata.Load(), produce.Load())
	// The topic cache refreshes at most once a second, whatever the
	// number of misses; a retry per message would be thousands.
	if limit := int64(elapsed/time.Second) + 5; metadata.Load() > limit {
		t.Errorf("%d metadata requests in %v; want at most %d (one topic refresh a second)", metadata.Load(), elapsed, limit)
	}
	if elapsed > 20*time.Second {
		t.Errorf("1000 messages took %v", elapsed)
	}

	recs := consume(t, g.KafkaBrokers(), "message-dlq", n)
	seen := map[string]bool{}
	for _, r := range recs {
		if !strings.HasPrefix(r.Headers["error"], "unknown_topic:") || r.Headers["action"] != "actions[0]" {
			t.Fatalf("error record headers %v", r.Headers)
		}
		seen[string(r.Value)] = true
	}
	if len(recs) != n || len(seen) != n {
		t.Fatalf("message-dlq holds %d records (%d distinct), want %d", len(recs), len(seen), n)
	}
}
