package integration

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetgate/fleetgate/config"
)

// javaPartitionD1 is where Java's default partitioner puts key "D1" among 6
// partitions (see kafka/partitioner_test.go for how it was computed).
const javaPartitionD1 = 2

func TestTourRoutesByTypeWithKeyAndTimestamp(t *testing.T) {
	g := startGateway(t, nil)
	c := connect(t, g.MQTTAddr(), "D1")
	publish(t, c, "report", []byte(`{"type":"log","device_no":"D1","ts":1763780000000,"ignition":true}`))
	publish(t, c, "report", report("gps", "D1", 2))

	recs := consume(t, g.KafkaBrokers(), "message-log", 1)
	if len(recs) != 1 {
		t.Fatalf("message-log holds %d records, want 1", len(recs))
	}
	r := recs[0]
	if r.Key != "D1" || r.Partition != javaPartitionD1 {
		t.Fatalf("key %q partition %d; want key D1 on partition %d", r.Key, r.Partition, javaPartitionD1)
	}
	m := r.json(t)
	ts, _ := m["timestamp"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05MST", ts); err != nil || !strings.HasSuffix(ts, "UTC") {
		t.Fatalf("timestamp field %q is not yyyy-MM-dd'T'HH:mm:ssz in UTC", m["timestamp"])
	}
	if m["ignition"] != true || m["device_no"] != "D1" || m["type"] != "log" {
		t.Fatalf("record lost fields: %s", r.Value)
	}
	// The epoch milliseconds survive exactly.
	if !strings.Contains(string(r.Value), `"ts":1763780000000`) {
		t.Fatalf("ts not kept as an exact integer: %s", r.Value)
	}
	if gps := consume(t, g.KafkaBrokers(), "message-gps", 1); gps[0].Key != "D1" || gps[0].json(t)["seq"] != 2.0 {
		t.Fatalf("message-gps: %+v", gps)
	}
}

func TestErrorActionCases(t *testing.T) {
	g := startGateway(t, func(c *config.Config) { c.Kafka.MaxMessageBytes = 4096 })
	// 4096 - router.ErrorRecordHeadroom bytes of an oversize payload reach the error topic.
	c := connect(t, g.MQTTAddr(), "DX")
	cases := []struct {
		name, payload, reason string
	}{
		{"not json", `this is not json`, "eval_error"},
		{"type missing", `{"device_no":"DX","seq":1}`, "unknown_topic"},
		{"type with slash", `{"type":"a/b","device_no":"DX"}`, "invalid_topic"},
		{"type of 300 characters", `{"type":"` + strings.Repeat("t", 300) + `","device_no":"DX"}`, "invalid_topic"},
		{"topic not in cluster", `{"type":"nosuch","device_no":"DX"}`, "unknown_topic"},
		{"oversize record", `{"type":"log","device_no":"DX","blob":"` + strings.Repeat("x", 5000) + `"}`, "record_too_large"},
	}
	for _, tc := range cases {
		publish(t, c, "report", []byte(tc.payload)) // acked: stored in the error topic
	}
	recs := consume(t, g.KafkaBrokers(), "message-dlq", len(cases))
	if len(recs) != len(cases) {
		t.Fatalf("message-dlq holds %d records, want %d", len(recs), len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r record
			for _, x := range recs {
				// The oversize payload does not fit the error record
				// either: its start is kept, with its length in a header.
				if string(x.Value) == tc.payload || len(x.Value) < len(tc.payload) && x.Headers["truncated"] == fmt.Sprint(len(tc.payload)) && strings.HasPrefix(tc.payload, string(x.Value)) {
					r = x
				}
			}
			if r.Value == nil {
				t.Fatalf("original payload not in message-dlq")
			}
			if !strings.HasPrefix(r.Headers["error"], tc.reason+":") {
				t.Errorf("error header %q, want reason %s", r.Headers["error"], tc.reason)
			}
			want := map[string]string{"rule": "device-reports", "source": "mqtt", "client_id": "DX", "mqtt_topic": "report"}
			for k, v := range want {
				if r.Headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, r.Headers[k], v)
				}
			}
			if r.Key != "DX" {
				t.Errorf("key %q, want the client id DX", r.Key)
			}
		})
	}
	if n := len(consume(t, g.KafkaBrokers(), "message-log", 0)); n != 0 {
		t.Fatalf("message-log holds %d records; the oversize one must not be there", n)
	}
}

func TestSeveralRulesAndActions(t *testing.T) {
	g := startGateway(t, func(c *config.Config) {
		c.Rules = append(c.Rules, routerRule(`
name: fast-cars
sql: SELECT device_no, speed_kmh * 2 AS double FROM 'report' WHERE speed_kmh > 40 AND type = 'gps'
actions:
  - kafka: {topic: message-adas, key: "${device_no}", headers: {origin: "${topic()}"}}
  - kafka: {topic: message-boot, key: "${device_no}", partition: "3"}
`))
	})
	c := connect(t, g.MQTTAddr(), "D7")
	publish(t, c, "report", report("gps", "D7", 1))
	adas := consume(t, g.KafkaBrokers(), "message-adas", 1)
	if string(adas[0].Value) != `{"device_no":"D7","double":85}` || adas[0].Headers["origin"] != "report" {
		t.Fatalf("message-adas record: %s headers %v", adas[0].Value, adas[0].Headers)
	}
	boot := consume(t, g.KafkaBrokers(), "message-boot", 1)
	if boot[0].Partition != 3 {
		t.Fatalf("fixed partition: got %d, want 3", boot[0].Partition)
	}
	consume(t, g.KafkaBrokers(), "message-gps", 1)
}

// TestOrderingManyDevicesPipelined sends 100 devices x 200 messages, each
// connection keeping several QoS 1 messages in flight, and checks that every
// device's seq is strictly increasing in every topic, with nothing lost or
// duplicated.
func TestOrderingManyDevicesPipelined(t *testing.T) {
	devices, each := 100, 200
	if testing.Short() {
		devices, each = 20, 50
	}
	const inflight = 8
	// The race detector and a shared 2-core machine make this slow; the
	// delivery timeout must not be what the test measures.
	g := startGateway(t, func(c *config.Config) { c.Kafka.DeliveryTimeout = 60 * time.Second })
	types := []string{"gps", "log", "kinematic", "adas"}
	var wg sync.WaitGroup
	var failures atomic.Int64
	for d := 0; d < devices; d++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := fmt.Sprintf("DEV-%03d", d)
			c := connect(t, g.MQTTAddr(), dev)
			window := make(chan paho.Token, inflight)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for tok := range window {
					if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
						failures.Add(1)
					}
				}
			}()
			for s := 1; s <= each; s++ {
				window <- c.Publish("report", 1, false, report(types[s%len(types)], dev, s))
			}
			close(window)
			<-done
		}()
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d publishes got no PUBACK", n)
	}
	total := 0
	for _, typ := range types {
		recs := consume(t, g.KafkaBrokers(), "message-"+typ, devices*each/len(types))
		total += len(recs)
		last := map[string]float64{}
		partOf := map[string]int32{}
		for _, r := range recs {
			m := r.json(t)
			dev, seq := m["device_no"].(string), m["seq"].(float64)
			if r.Key != dev {
				t.Fatalf("%s: record of %s has key %q", typ, dev, r.Key)
			}
			if p, ok := partOf[dev]; ok && p != r.Partition {
				t.Fatalf("%s: device %s on partitions %d and %d", typ, dev, p, r.Partition)
			}
			partOf[dev] = r.Partition
			if seq <= last[dev] {
				t.Fatalf("%s: device %s seq %v after %v (offset %d)", typ, dev, seq, last[dev], r.Offset)
			}
			last[dev] = seq
		}
	}
	if total != devices*each {
		t.Fatalf("Kafka holds %d records, want exactly %d", total, devices*each)
	}
}

// TestPubackWithheldWhileKafkaHoldsTheRecord holds every produce request in
// the embedded broker: no PUBACK may arrive until the broker answers.
func TestPubackWithheldWhileKafkaHoldsTheRecord(t *testing.T) {
	g := startGateway(t, nil)
	c := connect(t, g.MQTTAddr(), "D1")
	publish(t, c, "report", report("log", "D1", 1)) // warm: metadata, producer id

	release := make(chan struct{})
	var held atomic.Int32
	cluster := g.Embedded().Cluster()
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		held.Add(1)
		cluster.SleepControl(func() { <-release })
		return nil, nil, false // then handle it normally
	})
	tok := c.Publish("report", 1, false, report("log", "D1", 2))
	if tok.WaitTimeout(1500 * time.Millisecond) {
		t.Fatalf("PUBACK arrived while Kafka had not stored the record (err %v)", tok.Error())
	}
	if held.Load() == 0 {
		t.Fatal("the produce request never reached the broker")
	}
	close(release)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("no PUBACK after Kafka stored the record: %v", tok.Error())
	}
	if recs := consume(t, g.KafkaBrokers(), "message-log", 2); len(recs) != 2 {
		t.Fatalf("message-log holds %d records, want 2", len(recs))
	}
}

// TestNoPubackWhenKafkaFails makes the broker refuse every produce past the
// delivery timeout: the MQTT 3.1.1 client is disconnected without a PUBACK,
// and after Kafka recovers its re-send is stored once.
func TestNoPubackWhenKafkaFails(t *testing.T) {
	g := startGateway(t, func(c *config.Config) { c.Kafka.DeliveryTimeout = 2 * time.Second })
	c := connect(t, g.MQTTAddr(), "D1")
	publish(t, c, "report", report("log", "D1", 1))

	recover := refuseProduce(g.Embedded().Cluster())
	tok := c.Publish("report", 1, false, report("log", "D1", 2))
	if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		t.Fatal("got a PUBACK for a message Kafka refused")
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.IsConnectionOpen() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if c.IsConnectionOpen() {
		t.Fatal("MQTT 3.1.1 client still connected after a failed delivery")
	}
	recover()
	time.Sleep(3 * time.Second) // let sarama finish retrying the first copy
	c2 := connect(t, g.MQTTAddr(), "D1")
	publish(t, c2, "report", report("log", "D1", 2))
	recs := consume(t, g.KafkaBrokers(), "message-log", 2)
	seqs := []float64{}
	for _, r := range recs {
		seqs = append(seqs, r.json(t)["seq"].(float64))
	}
	if len(seqs) < 2 || seqs[0] != 1 || seqs[len(seqs)-1] != 2 {
		t.Fatalf("message-log seqs %v; want 1 then 2 (a duplicate 2 is allowed)", seqs)
	}
}
