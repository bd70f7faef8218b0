package e2e

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"

	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/lookup"
)

// TestLookupTableFromCompactedTopic reads a compacted topic of real Kafka
// with the gateway's consumer client: the table is ready only once it
// holds every partition's history as of its start (latest value per key,
// tombstones deleted), then follows live changes.
func TestLookupTableFromCompactedTopic(t *testing.T) {
	kc := sharedKafka(t)
	const topic = "e2e-vehicle-registry"
	if err := kc.CreateTopic(topic, 3, 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	sc := kc.SaramaConfig()
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	prod, err := sarama.NewSyncProducer(kc.Brokers(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var msgs []*sarama.ProducerMessage
	const vehicles = 3000
	for i := range vehicles {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(devNo(i)),
			Value: sarama.StringEncoder(`{"plate":"B-FG ` + strconv.Itoa(i) + `"}`)})
	}
	for i := 0; i < vehicles; i += 10 { // every tenth vehicle re-registered
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(devNo(i)),
			Value: sarama.StringEncoder(`{"plate":"NEW ` + strconv.Itoa(i) + `"}`)})
	}
	for i := 5; i < vehicles; i += 100 { // and some scrapped: tombstones
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(devNo(i))})
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}

	kcfg := kafka.DefaultConfig()
	kcfg.Brokers = kc.Brokers()
	client, err := kafka.NewConsumerClient(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	set, err := lookup.Open(lookup.Config{"registry": {KafkaTopic: topic}}, lookup.Options{Log: zaptest.NewLogger(t), Kafka: client})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := set.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	tb, _ := set.Lookup("registry")
	if want := vehicles - vehicles/100; tb.Len() != want {
		t.Errorf("rows when ready: %d, want %d", tb.Len(), want)
	}
	for i, want := range map[int]string{0: `{"plate":"NEW 0"}`, 1: `{"plate":"B-FG 1"}`, 5: "", 2990: `{"plate":"NEW 2990"}`} {
		row, ok := tb.Row(devNo(i))
		if got := string(row); got != want || ok != (want != "") {
			t.Errorf("%s = %q (%v), want %q", devNo(i), got, ok, want)
		}
	}

	// Live: a change and a deletion arrive after the start.
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(devNo(1)), Value: sarama.StringEncoder(`{"plate":"LIVE"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(devNo(2))}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		row, _ := tb.Row(devNo(1))
		_, two := tb.Row(devNo(2))
		if string(row) == `{"plate":"LIVE"}` && !two {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live changes not seen: %s, device 2 present %v", row, two)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func devNo(i int) string { return "86" + strconv.Itoa(1_000_000_000_000+i) }
