package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
)

// startProducer starts an embedded broker with topics and a producer on it.
func startProducer(t *testing.T, partitions int32, topics ...string) (*Producer, *Embedded) {
	t.Helper()
	return startProducerWith(t, partitions, func(c *Config) { c.MaxMessageBytes = 10000 }, topics...)
}

// startProducerWith is startProducer with the producer's configuration
// changed by tune.
func startProducerWith(t *testing.T, partitions int32, tune func(*Config), topics ...string) (*Producer, *Embedded) {
	t.Helper()
	emb, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Topics: topics, Partitions: partitions}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	cfg := DefaultConfig()
	cfg.Brokers = []string{emb.Addr()}
	tune(&cfg)
	p := newTestProducer(t, cfg)
	t.Cleanup(func() { p.Close() })
	return p, emb
}

// newTestProducer validates cfg and starts a producer on it.
func newTestProducer(t *testing.T, cfg Config) *Producer {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// produceSync produces rec and waits for its result.
func produceSync(t *testing.T, p *Producer, rec *router.Record) error {
	t.Helper()
	res := make(chan error, 1)
	if err := p.Produce(context.Background(), rec, func(err error) { res <- err }); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	select {
	case err := <-res:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no result within 10s")
		return nil
	}
}

func TestProducerPermanentErrors(t *testing.T) {
	p, _ := startProducer(t, 3, "message-log")
	cases := []struct {
		name   string
		rec    router.Record
		reason string
	}{
		{"unknown topic", router.Record{Topic: "message-", Value: []byte(`{}`), Partition: -1}, "unknown_topic"},
		{"slash", router.Record{Topic: "a/b", Value: []byte(`{}`), Partition: -1}, "invalid_topic"},
		{"empty topic", router.Record{Topic: "", Value: []byte(`{}`), Partition: -1}, "invalid_topic"},
		{"300 characters", router.Record{Topic: strings.Repeat("x", 300), Value: []byte(`{}`), Partition: -1}, "invalid_topic"},
		{"too large", router.Record{Topic: "message-log", Value: make([]byte, 20000), Partition: -1}, "record_too_large"},
		{"no such partition", router.Record{Topic: "message-log", Value: []byte(`{}`), Partition: 7}, "invalid_partition"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := produceSync(t, p, &c.rec)
			var re *RecordError
			if !errors.As(err, &re) || re.Reason != c.reason || !re.Permanent() {
				t.Fatalf("got %v, want a permanent %s error", err, c.reason)
			}
		})
	}
}

func TestProducerStoresKeyedRecordsOnMurmur2Partitions(t *testing.T) {
	p, emb := startProducer(t, 6, "message-log")
	// Where the Java client puts these keys (javaMurmur2, partitioner_test.go).
	for _, ref := range javaMurmur2[:3] {
		key, want := ref.key, ref.p6
		rec := &router.Record{Topic: "message-log", Key: []byte(key), Value: []byte(`{"k":"` + key + `"}`), Partition: -1}
		if err := produceSync(t, p, rec); err != nil {
			t.Fatal(err)
		}
		got := readPartition(t, emb.Addr(), "message-log", want)
		if !containsValue(got, `{"k":"`+key+`"}`) {
			t.Fatalf("key %s: record not on partition %d (found %q)", key, want, got)
		}
	}
	// A fixed partition wins over the key.
	rec := &router.Record{Topic: "message-log", Key: []byte("D1"), Value: []byte(`"fixed"`), Partition: 5}
	if err := produceSync(t, p, rec); err != nil {
		t.Fatal(err)
	}
	if got := readPartition(t, emb.Addr(), "message-log", 5); !containsValue(got, `"fixed"`) {
		t.Fatalf("fixed partition 5 holds %q", got)
	}
}

func TestProducerKeepsOrderPerKeyAndCloseFlushes(t *testing.T) {
	p, emb := startProducer(t, 3, "message-gps")
	const devices, each = 20, 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	for d := 0; d < devices; d++ {
		for s := 1; s <= each; s++ {
			wg.Add(1)
			rec := &router.Record{Topic: "message-gps", Key: []byte(fmt.Sprintf("D%d", d)), Partition: -1,
				Value: []byte(fmt.Sprintf(`%d:%d`, d, s))}
			err := p.Produce(context.Background(), rec, func(err error) {
				if err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
				wg.Done()
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait() // Close returned, so every callback has run
	if len(failed) > 0 {
		t.Fatalf("%d records failed, first: %v", len(failed), failed[0])
	}
	if err := p.Produce(context.Background(), &router.Record{Topic: "message-gps", Partition: -1}, func(error) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Produce after Close: %v, want ErrClosed", err)
	}
	if n := checkDeviceOrder(t, emb, "message-gps", 3); n != devices*each {
		t.Fatalf("read %d records, want %d", n, devices*each)
	}
}

// checkDeviceOrder reads every partition of topic, whose records are
// "device:seq" with seq counting from 1 per device, fails t at the first
// record out of order and returns how many it read.
func checkDeviceOrder(t *testing.T, emb *Embedded, topic string, partitions int32) int {
	t.Helper()
	last := map[int]int{}
	n := 0
	for part := range partitions {
		for _, v := range readPartition(t, emb.Addr(), topic, part) {
			var d, s int
			fmt.Sscanf(v, "%d:%d", &d, &s)
			if s != last[d]+1 {
				t.Fatalf("device %d: record %d stored after %d", d, s, last[d])
			}
			last[d] = s
			n++
		}
	}
	return n
}

// readPartition returns the values of every record in one partition.
func readPartition(t *testing.T, addr, topic string, partition int32) []string {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_9_0_0
	c, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hw, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	if hw == 0 {
		return nil
	}
	pc, err := c.ConsumePartition(topic, partition, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var out []string
	for {
		select {
		case m := <-pc.Messages():
			out = append(out, string(m.Value))
			if m.Offset+1 >= hw {
				return out
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out reading %s/%d at %d records", topic, partition, len(out))
		}
	}
}

func containsValue(vals []string, v string) bool {
	for _, x := range vals {
		if x == v {
			return true
		}
	}
	return false
}
