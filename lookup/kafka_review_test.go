package lookup_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"

	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/lookup"
)

// TestKafkaTablePartitionsAddedLater: a partition added to the topic while
// the gateway runs is followed too (from its oldest offset), without a
// restart.
func TestKafkaTablePartitionsAddedLater(t *testing.T) {
	const topic = "vehicle-registry"
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Listen: "127.0.0.1:0", Topics: []string{topic}, Partitions: 1}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	client := kafkaClient(t, e.Addr())
	set := openReady(t, lookup.Config{"registry": {KafkaTopic: topic}},
		lookup.Options{Log: zaptest.NewLogger(t), Kafka: client, PartitionRefresh: 50 * time.Millisecond})

	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreatePartitions(topic, 3, nil, false); err != nil {
		t.Fatal(err)
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_9_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{e.Addr()}, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	// The producer may need a moment to see the new partitions.
	waitFor(t, "a record in the new partition", func() bool {
		_, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 2,
			Key: sarama.StringEncoder("new"), Value: sarama.StringEncoder(`{"vin":"p2"}`)})
		return err == nil
	})
	tb, _ := set.Lookup("registry")
	waitFor(t, "the row of the new partition", func() bool { return get(tb, "new") == `{"vin":"p2"}` })
	if err := set.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
}
