package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// reportTopics are the topics the default rule writes device reports to.
var reportTopics = []string{"message-log", "message-gps", "message-kinematic", "message-adas", "message-boot"}

// shared is the one-node cluster that the tests which do not break Kafka
// share, started by the first of them and closed by TestMain. Tests keep
// apart by device numbers and fleetsim run ids, not by topics: the gateway's
// default rule writes to the message-* topics.
var shared struct {
	once sync.Once
	c    *kafkatest.Cluster
	err  error
}

func sharedKafka(t *testing.T) *kafkatest.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("real Kafka is skipped in -short mode")
	}
	shared.once.Do(func() {
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), kafkatest.DefaultStartTimeout)
		defer cancel()
		shared.c, shared.err = kafkatest.Start(ctx, kafkatest.Options{Nodes: 1})
		if shared.err == nil {
			shared.err = createTopics(shared.c, 1, nil)
		}
		if shared.err == nil {
			t.Logf("shared 1-node Kafka %s ready at %s in %s", shared.c.Version(), shared.c.Bootstrap(),
				time.Since(began).Round(time.Millisecond))
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.c
}

// createTopics creates the topics of the default rule as the gateway would
// (kafka.topics.create), so that a test about something else does not
// depend on the gateway's first moments with new topics
// (TestFirstMessagesAfterTopicCreation is about those).
func createTopics(kc *kafkatest.Cluster, rf int16, cfg map[string]string) error {
	for _, topic := range append(append([]string{}, reportTopics...), "message-dlq") {
		if err := kc.CreateTopic(topic, topicPartitions, rf, cfg); err != nil {
			return err
		}
	}
	return nil
}

func closeShared() {
	if shared.c != nil {
		shared.c.Close()
	}
}

// record is one consumed Kafka record.
type record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Value     []byte
}

// report is what the tests read of a record's JSON value.
type report struct {
	DeviceNo string `json:"device_no"`
	Type     string `json:"type"`
	Seq      int64  `json:"seq"`
	Run      string `json:"run"`
}

func (r record) report() (report, error) {
	var v report
	err := json.Unmarshal(r.Value, &v)
	return v, err
}

// readTopics reads every partition of the topics from the oldest offset to
// the end it has when called, in offset order per partition.
func readTopics(t *testing.T, kc *kafkatest.Cluster, topics ...string) []record {
	t.Helper()
	recs, err := readTopicsErr(kc, nil, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// readTopicsSince reads the records after the given ends (partitionEnds).
func readTopicsSince(t *testing.T, kc *kafkatest.Cluster, ends map[topicPartition]int64, topics ...string) []record {
	t.Helper()
	recs, err := readTopicsErr(kc, ends, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// readPartition reads one partition from the oldest offset to its end.
func readPartition(t *testing.T, kc *kafkatest.Cluster, topic string, partition int32) []record {
	t.Helper()
	recs, err := readTopicsErr(kc, nil, func(p int32) bool { return p == partition }, topic)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// readTopicsErr reads the partitions of the topics that only accepts (nil:
// all), each from its offset in from (absent: the oldest) to the end it has
// when called.
func readTopicsErr(kc *kafkatest.Cluster, from map[topicPartition]int64, only func(int32) bool, topics ...string) ([]record, error) {
	cfg := kc.SaramaConfig()
	cfg.ClientID = "e2e-reader"
	cfg.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(kc.Brokers(), cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	var out []record
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			if only != nil && !only(p) {
				continue
			}
			start, ok := from[topicPartition{topic, p}]
			if !ok {
				if start, err = client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
					return nil, err
				}
			}
			end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return nil, err
			}
			if end <= start {
				continue
			}
			pc, err := consumer.ConsumePartition(topic, p, start)
			if err != nil {
				return nil, err
			}
			timeout := time.After(30 * time.Second)
		read:
			for {
				select {
				case m := <-pc.Messages():
					out = append(out, record{m.Topic, m.Partition, m.Offset, string(m.Key), m.Value})
					if m.Offset+1 >= end {
						break read
					}
				case cerr := <-pc.Errors():
					pc.Close()
					return nil, cerr
				case <-timeout:
					pc.Close()
					return nil, fmt.Errorf("%s/%d: not read up to offset %d in 30 s", topic, p, end)
				}
			}
			pc.Close()
		}
	}
	return out, nil
}

// endOffsets returns the sum of the end offsets of the topics' partitions:
// how many records they hold (nothing is deleted in these tests).
func endOffsets(kc *kafkatest.Cluster, topics ...string) (int64, error) {
	cfg := kc.SaramaConfig()
	cfg.ClientID = "e2e-offsets"
	cfg.Net.DialTimeout = 2 * time.Second
	cfg.Metadata.Retry.Max = 1
	client, err := sarama.NewClient(kc.Brokers(), cfg)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	var n int64
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return 0, err
		}
		for _, p := range parts {
			end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return 0, err
			}
			n += end
		}
	}
	return n, nil
}

// waitFor polls cond every 100 ms until it returns nil or timeout passes,
// and fails the test with cond's last error then.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRecords waits until the topics hold at least n more records than base.
func waitRecords(t *testing.T, kc *kafkatest.Cluster, base, n int64, timeout time.Duration, topics ...string) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d new records in %v", n, topics), func() error {
		got, err := endOffsets(kc, topics...)
		if err != nil {
			return err
		}
		if got-base < n {
			return fmt.Errorf("%d new records", got-base)
		}
		return nil
	})
}

var errNotYet = errors.New("not yet")
