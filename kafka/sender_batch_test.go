package kafka

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetgate/fleetgate/router"
)

// leaderlessMetadata makes the embedded broker answer metadata requests
// for its one topic, of partitions partitions, with partition leaderless
// (LEADER_NOT_AVAILABLE, no leader), as a cluster in a leader election
// answers.
func leaderlessMetadata(t *testing.T, e *Embedded, topic string, partitions, leaderless int32) {
	t.Helper()
	host, port, err := net.SplitHostPort(e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	portN, _ := strconv.Atoi(port)
	c := e.Cluster()
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		node := c.CurrentNode()
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = node, host, int32(portN)
		resp.Brokers = []kmsg.MetadataResponseBroker{b}
		cluster := "fleetgate-embedded"
		resp.ClusterID, resp.ControllerID = &cluster, node
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
	var worst time.Duration
	end := time.Now().Add(2 * time.Second)
	for i := 1; time.Now().Before(end); i++ {
		start := time.Now()
		if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D1"), Partition: 0, Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	if worst > 300*time.Millisecond {
		t.Fatalf("a record of partition 0 took %v while partition 1 had no leader; want under 300ms", worst)
	}
	t.Logf("slowest record of partition 0: %v", worst)
}
