// Package integration runs the whole gateway in process (the real mochi
// broker, the rule engine, sarama and the embedded Kafka broker) and drives
// it with a real paho MQTT client.
package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/gateway"
	"github.com/fleetgate/fleetgate/test/kfaketest"
)

// startGateway runs a gateway on free ports with the development default
// configuration, changed by mutate.
func startGateway(t testing.TB, mutate func(*config.Config)) *gateway.Gateway {
	t.Helper()
	return startGatewayWith(t, mutate, nil)
}

// startGatewayWith is startGateway with a hook that sees the gateway before
// it starts (to set callbacks such as OnRulesReload).
func startGatewayWith(t testing.TB, mutate func(*config.Config), before func(*gateway.Gateway)) *gateway.Gateway {
	t.Helper()
	cfg := config.Default()
	cfg.MQTT.Listen = "127.0.0.1:0"
	cfg.Telematics.Listen = "127.0.0.1:0"
	cfg.Kafka.EmbeddedListen = "127.0.0.1:0"
	cfg.Admin.Listen = ""
	cfg.Kafka.DeliveryTimeout = 10 * time.Second
	if mutate != nil {
		mutate(cfg)
	}
	cfg.MQTT.DeliveryTimeout = cfg.Kafka.DeliveryTimeout
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g := gateway.New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if before != nil {
		before(g)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return g
}

// connect returns a connected paho client (MQTT 3.1.1).
func connect(t *testing.T, addr, clientID string) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
		SetAutoReconnect(false).SetConnectRetry(false).SetWriteTimeout(10 * time.Second).
		SetOrderMatters(false)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", clientID, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publish publishes at QoS 1 and waits for the PUBACK.
func publish(t *testing.T, c paho.Client, topic string, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("publish to %s: no PUBACK (%v)", topic, tok.Error())
	}
}

// record is one consumed Kafka record.
type record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Value     []byte
	Headers   map[string]string
}

func (r record) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Value, &m); err != nil {
		t.Fatalf("record %s/%d@%d is not a JSON object: %v: %s", r.Topic, r.Partition, r.Offset, err, r.Value)
	}
	return m
}

// consume reads every record of topic from the start until it has at least
// want records and no more arrive for a moment, or the deadline passes.
func consume(t *testing.T, brokers []string, topic string, want int) []record {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_9_0_0
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	out := make(chan record, 1024)
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				r := record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: m.Value, Headers: map[string]string{}}
				for _, h := range m.Headers {
					r.Headers[string(h.Key)] = string(h.Value)
				}
				out <- r
			}
		}()
	}
	var recs []record
	deadline := time.After(30 * time.Second)
	for {
		quiet := 300 * time.Millisecond
		if len(recs) < want {
			quiet = 30 * time.Second
		}
		select {
		case r := <-out:
			recs = append(recs, r)
		case <-time.After(quiet):
			if len(recs) < want {
				t.Fatalf("%s: got %d records, want %d", topic, len(recs), want)
			}
			return recs
		case <-deadline:
			t.Fatalf("%s: got %d records by the deadline, want %d", topic, len(recs), want)
		}
	}
}

func report(typ, device string, seq int) []byte {
	return []byte(fmt.Sprintf(`{"type":%q,"device_no":%q,"ts":1763780000000,"seq":%d,"speed_kmh":42.5}`, typ, device, seq))
}

// refuseProduce makes the embedded broker answer every produce request with
// NOT_ENOUGH_REPLICAS (retriable: sarama retries, nothing is stored) until
// the returned function is called.
func refuseProduce(cluster *kfake.Cluster) (recover func()) {
	var recovered atomic.Bool
	kfaketest.FailProduces(cluster, 19, func() bool { return !recovered.Load() }) // NOT_ENOUGH_REPLICAS
	return func() { recovered.Store(true) }
}
