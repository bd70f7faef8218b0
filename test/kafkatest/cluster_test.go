package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestMissingKafkaHomeSaysToFetch(t *testing.T) {
	_, err := Start(context.Background(), Options{KafkaHome: t.TempDir()})
	if !errors.Is(err, ErrNoKafka) {
		t.Fatalf("Start with an empty home: got %v, want ErrNoKafka", err)
	}
	if !strings.Contains(err.Error(), "test/kafka/fetch") {
		t.Errorf("error does not say to run test/kafka/fetch: %v", err)
	}
}

func TestDefaultVersionMatchesFetchScript(t *testing.T) {
	for file, re := range map[string]string{
		"../kafka/fetch":   `KAFKA_VERSION="\$\{KAFKA_VERSION:-([0-9.]+)\}"`,
		"../kafka/pom.xml": `<kafka.version>([0-9.]+)</kafka.version>`,
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(re).FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s: no default Kafka version matching %s", file, re)
		}
		if got := string(m[1]); got != DefaultKafkaVersion {
			t.Errorf("%s defaults to Kafka %s, DefaultKafkaVersion is %s", file, got, DefaultKafkaVersion)
		}
	}
}

// TestSingleNode starts one node, produces and consumes through a consumer
// group (which needs the internal offsets topic), restarts it and reads the
// records again.
func TestSingleNode(t *testing.T) {
	c := StartT(t, Options{Nodes: 1})

	const topic = "single"
	if err := c.CreateTopic(topic, 3, 0, map[string]string{"retention.ms": "3600000"}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(topic, 3, 0, nil); !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Errorf("second CreateTopic: got %v, want ErrTopicAlreadyExists", err)
	}
	if _, err := c.LeaderOf("never-created", 0); err == nil {
		t.Errorf("LeaderOf a topic never created: no error, but auto-creation is off")
	}

	sent := produce(t, c, topic, -1, "d", 0, 100)
	got := consumeGroup(t, c, topic, len(sent))
	checkPerKeyOrder(t, sent, got)

	began := time.Now()
	if err := c.Restart(1); err != nil {
		t.Fatal(err)
	}
	t.Logf("timing: restart of the single node %s", time.Since(began).Round(time.Millisecond))
	if n := len(consumeAll(t, c, topic, 0)); n == 0 {
		t.Errorf("partition 0 empty after a restart")
	}
}

// TestThreeNodeFailover kills the leader of a partition of a 3-node cluster
// and checks that leadership moves, acks=all producing goes on with 2 replicas
// in sync, nothing acknowledged is lost or reordered, a topic that wants 3 in
// sync refuses writes, and the killed node comes back.
func TestThreeNodeFailover(t *testing.T) {
	c := StartT(t, Options{Nodes: 3})

	const topic, strict = "failover", "strict"
	if err := c.CreateTopic(topic, 3, 3, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(strict, 1, 3, map[string]string{"min.insync.replicas": "3"}); err != nil {
		t.Fatal(err)
	}
	sent := produce(t, c, topic, 0, "d", 0, 50)

	leader, err := c.LeaderOf(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	var moved time.Duration
	var newLeader int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if l, err := c.LeaderOf(topic, 0); err == nil && l != leader {
				moved, newLeader = time.Since(killed), l
				return
			}
		}
	}()
	// The first send blocks in sarama's retries until the new leader takes it.
	more := produce(t, c, topic, 0, "d", 50, 1)
	firstAck := time.Since(killed)
	wg.Wait()
	if newLeader == 0 {
		t.Fatalf("leadership of %s/0 did not move off killed node %d within a minute", topic, leader)
	}
	t.Logf("timing: killed leader node %d; node %d leads after %s; first acks=all write acknowledged after %s",
		leader, newLeader, moved.Round(time.Millisecond), firstAck.Round(time.Millisecond))
	sent = append(sent, more...)
	sent = append(sent, produce(t, c, topic, 0, "d", 51, 49)...)

	got := consumeAll(t, c, topic, 0)
	if len(got) != len(sent) {
		t.Errorf("read %d records from %s/0, acknowledged %d", len(got), topic, len(sent))
	}
	checkPerKeyOrder(t, sent, got)

	// With one node down the strict topic has 2 of the 3 in-sync replicas it wants.
	cfg := producerConfig(c)
	cfg.Producer.Idempotent = false // it would need retries
	cfg.Producer.Retry.Max = 0
	p, err := sarama.NewSyncProducer(c.Brokers(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: strict, Partition: 0, Value: sarama.StringEncoder("x")})
	p.Close()
	if !errors.Is(err, sarama.ErrNotEnoughReplicas) && !errors.Is(err, sarama.ErrNotEnoughReplicasAfterAppend) {
		t.Errorf("acks=all write to a topic with min.insync.replicas=3 and a node down: got %v, want NOT_ENOUGH_REPLICAS", err)
	}

	began := time.Now()
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	restarted := time.Since(began)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.WaitInSync(ctx, topic); err != nil {
		t.Fatal(err)
	}
	t.Logf("timing: restarted node %d ready in %s, all replicas in sync after %s",
		leader, restarted.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	// A graceful stop hands leadership over before the node goes.
	leader, err = c.LeaderOf(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	if err := c.Stop(leader); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(began)
	produce(t, c, topic, 0, "d", 100, 1)
	t.Logf("timing: graceful stop of leader node %d took %s; next write acknowledged %s after the stop began",
		leader, stopped.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// producerConfig is an idempotent acks=all producer whose retries outlast the
// 3 s it takes to fence a killed node.
func producerConfig(c *Cluster) *sarama.Config {
	cfg := c.SaramaConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 60
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Metadata.Retry.Max = 60
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	return cfg
}

// produce sends n records to topic (partition p, or spread by key when p < 0)
// with values seq-<from>..., and returns what was acknowledged.
func produce(t *testing.T, c *Cluster, topic string, p int32, key string, from, n int) []rec {
	t.Helper()
	cfg := producerConfig(c)
	if p < 0 {
		cfg.Producer.Partitioner = sarama.NewHashPartitioner
	}
	prod, err := sarama.NewSyncProducer(c.Brokers(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var out []rec
	for i := from; i < from+n; i++ {
		k := key
		if p < 0 {
			k = fmt.Sprintf("%s%d", key, i%7)
		}
		m := &sarama.ProducerMessage{Topic: topic, Partition: max(p, 0), Key: sarama.StringEncoder(k), Value: sarama.StringEncoder(fmt.Sprintf("seq-%06d", i))}
		if _, _, err := prod.SendMessage(m); err != nil {
			t.Fatalf("produce %s #%d: %v", topic, i, err)
		}
		out = append(out, rec{k, fmt.Sprintf("seq-%06d", i)})
	}
	return out
}

type rec struct{ key, value string }

// consumeAll reads partition p of topic from the start to its high-water mark.
func consumeAll(t *testing.T, c *Cluster, topic string, p int32) []rec {
	t.Helper()
	client, err := sarama.NewClient(c.liveAddrs(), c.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var out []rec
	timeout := time.After(30 * time.Second)
	for int64(len(out)) < hwm {
		select {
		case m := <-pc.Messages():
			out = append(out, rec{string(m.Key), string(m.Value)})
			if m.Offset+1 >= hwm {
				return out
			}
		case <-timeout:
			t.Fatalf("read %d of %d records of %s/%d in 30s", len(out), hwm, topic, p)
		}
	}
	return out
}

// consumeGroup reads n records of topic as a consumer group member.
func consumeGroup(t *testing.T, c *Cluster, topic string, n int) []rec {
	t.Helper()
	cfg := c.SaramaConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	g, err := sarama.NewConsumerGroup(c.Brokers(), "kafkatest-group", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	h := &collector{want: n, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				t.Errorf("consumer group: %v", err)
				return
			}
		}
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("consumer group read %d of %d records in a minute", h.count(), n)
	}
	return h.got
}

type collector struct {
	mu   sync.Mutex
	got  []rec
	want int
	done chan struct{}
}

func (h *collector) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.got) }

func (*collector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*collector) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *collector) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		h.got = append(h.got, rec{string(m.Key), string(m.Value)})
		if len(h.got) == h.want {
			close(h.done)
		}
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

// checkPerKeyOrder checks that got holds exactly sent, in sent's order per key.
func checkPerKeyOrder(t *testing.T, sent, got []rec) {
	t.Helper()
	byKey := func(rs []rec) map[string][]string {
		m := map[string][]string{}
		for _, r := range rs {
			m[r.key] = append(m[r.key], r.value)
		}
		return m
	}
	s, g := byKey(sent), byKey(got)
	for k, vs := range s {
		if strings.Join(g[k], ",") != strings.Join(vs, ",") {
			t.Errorf("key %q: read %d records %v, sent %d %v", k, len(g[k]), g[k], len(vs), vs)
		}
	}
	if len(got) != len(sent) {
		t.Errorf("read %d records, sent %d", len(got), len(sent))
	}
}
