package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/test/kfaketest"
)

// leaderlessMetadata makes the embedded broker answer metadata requests
// for its one topic, of partitions partitions, with partition leaderless
// (LEADER_NOT_AVAILABLE, no leader), as a cluster in a leader election
// answers.
func leaderlessMetadata(t *testing.T, e *Embedded, topic string, partitions, leaderless int32) {
	t.Helper()
	answer := metadataAnswer(t, e)
	c := e.Cluster()
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := answer(req)
		node := resp.ControllerID
		rt := kmsg.NewMetadataResponseTopic()
		name := topic
		rt.Topic = &name
		for p := range partitions {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition, rp.Leader, rp.Replicas, rp.ISR = p, node, []int32{node}, []int32{node}
			if p == leaderless {
				rp.ErrorCode, rp.Leader, rp.ISR = 5, -1, nil
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = []kmsg.MetadataResponseTopic{rt}
		return resp, nil, true
	})
}

// metadataAnswer returns a function, for use in a control function of
// e's cluster, that starts the answer to a metadata request: the broker
// that got it, no topics.
func metadataAnswer(t *testing.T, e *Embedded) func(kmsg.Request) *kmsg.MetadataResponse {
	t.Helper()
	host, port, err := net.SplitHostPort(e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	portN, _ := strconv.Atoi(port)
	c := e.Cluster()
	return func(req kmsg.Request) *kmsg.MetadataResponse {
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		node := c.CurrentNode()
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = node, host, int32(portN)
		resp.Brokers = []kmsg.MetadataResponseBroker{b}
		cluster := "fleetgate-embedded"
		resp.ClusterID, resp.ControllerID = &cluster, node
		return resp
	}
}

// TestBatchSenderLeaderlessPartitionDoesNotStallOthers: while one
// partition has no leader (an election, an offline partition), the
// records of the other partitions are stored as fast as before: the
// loop must not wait for that partition's leader lookup.
func TestBatchSenderLeaderlessPartitionDoesNotStallOthers(t *testing.T) {
	const topic = "message-log"
	p, emb := startProducerOf(t, ProducerFleetgate, 2, topic)
	if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D1"), Partition: 0, Value: []byte("0")}); err != nil {
		t.Fatal(err)
	}
	leaderlessMetadata(t, emb, topic, 2, 1)
	// Partition 1's writes are refused, so the sender refreshes metadata
	// and learns that partition 1 has no leader.
	refuseProduces(emb, func(p int32) int16 {
		if p == 1 {
			return 5
		}
		return 0
	})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = p.Shutdown(ctx)
	}()
	if err := p.Produce(context.Background(), &router.Record{Topic: topic, Partition: 1, Value: []byte("stuck")}, func(error) {}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	worst := slowestRecord(t, p, topic, 0)
	if worst > 300*time.Millisecond {
		t.Fatalf("a record of partition 0 took %v while partition 1 had no leader; want under 300ms", worst)
	}
	t.Logf("slowest record of partition 0: %v", worst)
}

// TestBatchSenderUnknownTopicAnswersDoNotStallOthers: a broker that
// answers UNKNOWN_TOPIC_OR_PARTITION for a topic that exists (its
// metadata lags) makes the gateway check the topic with every broker;
// meanwhile the records of another broker's partitions are stored as fast
// as before: that check must not hold up the loop.
func TestBatchSenderUnknownTopicAnswersDoNotStallOthers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(1, "message-log"), kfake.SeedTopics(6, "message-gps"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// message-log on broker 0, message-gps on broker 1, which lags.
	if err := c.MoveTopicPartition("message-log", 0, 0); err != nil {
		t.Fatal(err)
	}
	for part := range int32(6) {
		if err := c.MoveTopicPartition("message-gps", part, 1); err != nil {
			t.Fatal(err)
		}
	}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if c.CurrentNode() != 1 {
			return nil, nil, false
		}
		return kfaketest.Answer(req.(*kmsg.ProduceRequest), func(int32) int16 { return 3 }), nil, true
	})
	cfg := DefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = p.Shutdown(ctx)
	}()
	for part := range int32(6) {
		if err := p.Produce(context.Background(), &router.Record{Topic: "message-gps", Partition: part, Value: []byte("lagging")}, func(error) {}); err != nil {
			t.Fatal(err)
		}
	}
	worst := slowestRecord(t, p, "message-log", -1)
	if worst > 300*time.Millisecond {
		t.Fatalf("a record of message-log took %v while message-gps's broker answered UNKNOWN_TOPIC_OR_PARTITION; want under 300ms", worst)
	}
	t.Logf("slowest record of message-log: %v", worst)
}

// slowestRecord produces records of one device to topic (partition: -1
// for its key's) one at a time for 2s and returns the longest any took.
func slowestRecord(t *testing.T, p *Producer, topic string, partition int32) time.Duration {
	t.Helper()
	var worst time.Duration
	end := time.Now().Add(2 * time.Second)
	for i := 1; time.Now().Before(end); i++ {
		start := time.Now()
		if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D1"), Partition: partition, Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	return worst
}

// TestBatchSenderTopicWithoutPartitionsDoesNotStallOthers: while the
// brokers do not know a topic's partitions yet (just created, their
// metadata lags), its records wait and the records of other topics are
// stored as fast as before: the loop must not wait for the lookup.
func TestBatchSenderTopicWithoutPartitionsDoesNotStallOthers(t *testing.T) {
	const topic, fresh = "message-log", "message-new"
	p, emb := startProducerOf(t, ProducerFleetgate, 1, topic)
	adm, err := sarama.NewClusterAdminFromClient(p.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.CreateTopic(fresh, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := p.RefreshTopics(); err != nil {
		t.Fatal(err)
	}
	// A metadata request about the fresh topic alone (the sender's
	// partition lookup) gets UNKNOWN_TOPIC_OR_PARTITION.
	answer := metadataAnswer(t, emb)
	c := emb.Cluster()
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.MetadataRequest)
		if len(r.Topics) != 1 || r.Topics[0].Topic == nil || *r.Topics[0].Topic != fresh {
			return nil, nil, false
		}
		resp := answer(req)
		rt := kmsg.NewMetadataResponseTopic()
		name := fresh
		rt.Topic, rt.ErrorCode = &name, 3
		resp.Topics = []kmsg.MetadataResponseTopic{rt}
		return resp, nil, true
	})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = p.Shutdown(ctx)
	}()
	if err := p.Produce(context.Background(), &router.Record{Topic: fresh, Key: []byte("D2"), Partition: -1, Value: []byte("waits")}, func(error) {}); err != nil {
		t.Fatal(err)
	}
	worst := slowestRecord(t, p, topic, -1)
	if worst > 300*time.Millisecond {
		t.Fatalf("a record of %s took %v while %s's partitions were unknown; want under 300ms", topic, worst, fresh)
	}
	t.Logf("slowest record of %s: %v", topic, worst)
}

// TestBatchSenderDeletedTopicFailsItsRecords: records of a topic deleted
// after the sender knew it, taken before the producer learnt it was
// gone, fail with unknown_topic (their messages go to the error action)
// once the gateway's own check finds the topic absent; they must not
// wait in the sender until shutdown, keyed (the partition count is
// looked up) or on a fixed partition (the leader is).
func TestBatchSenderDeletedTopicFailsItsRecords(t *testing.T) {
	for _, partition := range []int32{-1, 0} {
		t.Run(fmt.Sprint("partition ", partition), func(t *testing.T) {
			const topic, gone = "message-log", "message-old"
			p, _ := startProducerWith(t, 1, func(c *Config) { c.Producer = ProducerFleetgate }, topic, gone)
			if err := produceSync(t, p, &router.Record{Topic: gone, Key: []byte("D1"), Partition: partition, Value: []byte("1")}); err != nil {
				t.Fatal(err)
			}
			adm, err := sarama.NewClusterAdminFromClient(p.Client())
			if err != nil {
				t.Fatal(err)
			}
			if err := adm.DeleteTopic(gone); err != nil {
				t.Fatal(err)
			}
			// The sender's metadata learns the deletion (as any refresh
			// after a failed send does); the producer's topic list not yet.
			if err := p.out.(*batchSender).client.RefreshMetadata(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				_ = p.Shutdown(ctx)
			}()
			res := make(chan error, 1)
			if err := p.Produce(context.Background(), &router.Record{Topic: gone, Key: []byte("D1"), Partition: partition, Value: []byte("2")},
				func(err error) { res <- err }); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-res:
				var re *RecordError
				if !errors.As(err, &re) || re.Reason != router.ReasonUnknownTopic {
					t.Fatalf("record of the deleted topic: %v; want a RecordError %s", err, router.ReasonUnknownTopic)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a record of the deleted topic did not complete within 5s")
			}
		})
	}
}
