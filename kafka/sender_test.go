package kafka

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/test/kfaketest"
)

// startProducerOf starts an embedded broker with topic and a producer of
// kind (kafka.producer) on it.
func startProducerOf(t *testing.T, kind string, partitions int32, topic string) (*Producer, *Embedded) {
	t.Helper()
	return startProducerWith(t, partitions, func(c *Config) { c.Producer = kind }, topic)
}

// refuseProduces makes the embedded broker refuse each produce request in
// which refuse returns a code other than 0 for a partition, storing none
// of it: the partitions refuse picked 0 for get NOT_ENOUGH_REPLICAS.
func refuseProduces(e *Embedded, refuse func(partition int32) int16) {
	c := e.Cluster()
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		codes := map[int32]int16{}
		refused := false
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				codes[p.Partition] = refuse(p.Partition)
				refused = refused || codes[p.Partition] != 0
			}
		}
		if !refused {
			return nil, nil, false
		}
		return kfaketest.Answer(req.(*kmsg.ProduceRequest), func(p int32) int16 {
			if codes[p] == 0 {
				return 19
			}
			return codes[p]
		}), nil, true
	})
}

// TestProducersKeepEachDevicesOrderThroughRefusals hands each device's
// records over without waiting (as an MQTT connection with many messages
// in flight does) while the broker refuses half of the partition writes
// with retriable codes: every record must be stored once, and each
// device's records in the order they were handed over, whatever producer
// kafka.producer picks.
func TestProducersKeepEachDevicesOrderThroughRefusals(t *testing.T) {
	// sarama's path stores a device's records one per round trip: fewer
	// of them keep the test short.
	for _, tc := range []struct {
		name       string
		producer   string
		idempotent bool
		each       int
	}{
		{ProducerFleetgate, ProducerFleetgate, true, 100},
		{"fleetgate-not-idempotent", ProducerFleetgate, false, 100},
		{ProducerSarama, ProducerSarama, true, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const topic, partitions, devices = "message-gps", 3, 24
			each := tc.each
			p, emb := startProducerWith(t, partitions, func(c *Config) { c.Producer, c.Idempotent = tc.producer, tc.idempotent }, topic)
			codes := []int16{6, 7, 19, 5} // NOT_LEADER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS, LEADER_NOT_AVAILABLE
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(1, 2))
			var refusedN atomic.Int64
			refuseProduces(emb, func(int32) int16 {
				mu.Lock()
				defer mu.Unlock()
				if rng.IntN(2) == 0 {
					refusedN.Add(1)
					return codes[rng.IntN(len(codes))]
				}
				return 0
			})
			var wg sync.WaitGroup
			var failed atomic.Int64
			for d := range devices {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for s := 1; s <= each; s++ {
						time.Sleep(time.Millisecond) // many requests, not a few large batches
						rec := &router.Record{Topic: topic, Key: []byte(fmt.Sprintf("D%d", d)), Partition: -1,
							Value: []byte(fmt.Sprintf(`%d:%d`, d, s))}
						wg.Add(1)
						if err := p.Produce(context.Background(), rec, func(err error) {
							if err != nil {
								failed.Add(1)
							}
							wg.Done()
						}); err != nil {
							t.Error(err)
							wg.Done()
						}
					}
				}()
			}
			wg.Wait()
			if n := failed.Load(); n > 0 {
				t.Fatalf("%d records failed", n)
			}
			if n := refusedN.Load(); n < 10 {
				t.Fatalf("the broker refused %d partition writes: too few to test anything", n)
			}
			emb.Cluster().DropControl()
			if n := checkDeviceOrder(t, emb, topic, partitions); n != devices*each {
				t.Fatalf("read %d records, want %d", n, devices*each)
			}
			t.Logf("%s: %d partition refusals", tc.name, refusedN.Load())
		})
	}
}

// TestBatchSenderPermanentFailureLetsTheNextBatchGo: a batch the broker
// refuses for good (here MESSAGE_TOO_LARGE) fails its records with a
// *RecordError, and the device's next records are stored after it, with
// the idempotent sequence numbers the refused batch did not use.
func TestBatchSenderPermanentFailureLetsTheNextBatchGo(t *testing.T) {
	const topic = "message-log"
	p, emb := startProducerOf(t, ProducerFleetgate, 1, topic)
	produce := func(v string) error {
		return produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D1"), Partition: -1, Value: []byte(v)})
	}
	if err := produce("1"); err != nil {
		t.Fatal(err)
	}
	var once atomic.Bool
	refuseProduces(emb, func(int32) int16 {
		if once.CompareAndSwap(false, true) {
			return 10 // MESSAGE_TOO_LARGE
		}
		return 0
	})
	var re *RecordError
	if err := produce("2"); !errors.As(err, &re) || re.Reason != router.ReasonRecordTooLarge {
		t.Fatalf("refused batch: %v; want a RecordError %s", err, router.ReasonRecordTooLarge)
	}
	for _, v := range []string{"3", "4"} {
		if err := produce(v); err != nil {
			t.Fatalf("record %s after the refused batch: %v", v, err)
		}
	}
	if n := p.out.(*batchSender).retried.Load(); n != 0 {
		t.Fatalf("%d batches sent again: the refused batch's sequence numbers were not reused", n)
	}
	emb.Cluster().DropControl()
	if got := fmt.Sprint(readPartition(t, emb.Addr(), topic, 0)); got != "[1 3 4]" {
		t.Fatalf("partition holds %s; want [1 3 4]", got)
	}
}

// TestBatchSenderPipelinesADevice: the records a device has waiting ride
// together; with the broker answering each request only after 50ms, 100
// records of one device take a few round trips, not 100 (the order gate's
// one record per round trip would take 5s).
func TestBatchSenderPipelinesADevice(t *testing.T) {
	const topic = "message-log"
	p, emb := startProducerOf(t, ProducerFleetgate, 1, topic)
	if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D1"), Partition: -1, Value: []byte("0")}); err != nil {
		t.Fatal(err)
	}
	c := emb.Cluster()
	var requests atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		requests.Add(1)
		time.Sleep(50 * time.Millisecond)
		return nil, nil, false
	})
	var wg sync.WaitGroup
	for s := 1; s <= 100; s++ {
		wg.Add(1)
		if err := p.Produce(context.Background(), &router.Record{Topic: topic, Key: []byte("D1"), Partition: -1,
			Value: []byte(fmt.Sprint(s))}, func(err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if n := requests.Load(); n > 10 {
		t.Fatalf("100 records of one device took %d produce requests; want them batched (at most 10)", n)
	}
}

// TestBatchSenderSplitsABatchTheTopicFindsTooLarge: a topic whose
// max.message.bytes is below kafka.max_message_bytes refuses a batch of
// many small records as too large; the records must not go to the error
// action for it: they travel again in smaller batches, in order, and only
// a record too large on its own is refused.
func TestBatchSenderSplitsABatchTheTopicFindsTooLarge(t *testing.T) {
	const topic, limit = "message-log", 2000 // bytes of a partition's record batch
	p, emb := startProducerOf(t, ProducerFleetgate, 1, topic)
	if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D9"), Partition: -1, Value: []byte("9:1")}); err != nil {
		t.Fatal(err)
	}
	c := emb.Cluster()
	var refused atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		big := false
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				big = big || len(p.Records) > limit
			}
		}
		if !big {
			return nil, nil, false
		}
		refused.Add(1)
		return kfaketest.Answer(req.(*kmsg.ProduceRequest), func(int32) int16 { return 10 }), nil, true // MESSAGE_TOO_LARGE
	})
	// Random bytes, which lz4 cannot shrink.
	rng := rand.New(rand.NewPCG(3, 4))
	pad := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return string(b)
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for s := 1; s <= 30; s++ {
		wg.Add(1)
		if err := p.Produce(context.Background(), &router.Record{Topic: topic, Key: []byte("D1"), Partition: -1,
			Value: []byte(fmt.Sprintf("1:%d:%s", s, pad(300)))}, func(err error) {
			if err != nil {
				failed.Add(1)
			}
			wg.Done()
		}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d small records failed: the batch holding them was refused as too large", n)
	}
	if refused.Load() == 0 {
		t.Fatal("no batch was refused: the test tested nothing")
	}
	var re *RecordError
	if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D1"), Partition: -1,
		Value: []byte(pad(3 * limit))}); !errors.As(err, &re) || re.Reason != router.ReasonRecordTooLarge {
		t.Fatalf("a record too large on its own: %v; want a RecordError %s", err, router.ReasonRecordTooLarge)
	}
	c.DropControl()
	if n := checkDeviceOrder(t, emb, topic, 1); n != 31 {
		t.Fatalf("read %d records, want 31", n)
	}
}
