package kafka

import (
	"bytes"
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

// TestBatchSenderBatchesGrowBackAfterATooLargeRefusal: a partition's
// batches, halved after the topic refused them as too large, grow back
// while they are stored once the topic takes large batches again (its
// max.message.bytes raised); before, they kept the reduced size for
// good.
func TestBatchSenderBatchesGrowBackAfterATooLargeRefusal(t *testing.T) {
	const topic, low = "message-log", 2000 // bytes of a partition's record batch
	p, emb := startProducerOf(t, ProducerFleetgate, 1, topic)
	c := emb.Cluster()
	var limit, refused, largest atomic.Int64
	limit.Store(low)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(20 * time.Millisecond) // records gather behind the batch in flight
		n := 0
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				n = max(n, len(p.Records))
			}
		}
		if int64(n) > limit.Load() {
			refused.Add(1)
			return kfaketest.Answer(req.(*kmsg.ProduceRequest), func(int32) int16 { return 10 }), nil, true // MESSAGE_TOO_LARGE
		}
		for old := largest.Load(); int64(n) > old && !largest.CompareAndSwap(old, int64(n)); old = largest.Load() {
		}
		return nil, nil, false
	})
	rng := rand.New(rand.NewPCG(5, 6))
	var wg sync.WaitGroup
	var failed atomic.Int64
	s := 0
	// load produces a record of 300 random letters (lz4 cannot shrink
	// them) four every 2ms until enough reports true or 6s have passed.
	load := func(enough func() bool) {
		for end := time.Now().Add(6 * time.Second); !enough() && time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
			for range 4 {
				s++
				b := make([]byte, 300)
				for i := range b {
					b[i] = byte('a' + rng.IntN(26))
				}
				wg.Add(1)
				if err := p.Produce(context.Background(), &router.Record{Topic: topic, Key: []byte("D1"), Partition: -1,
					Value: []byte(fmt.Sprintf("1:%d:%s", s, b))}, func(err error) {
					if err != nil {
						failed.Add(1)
					}
					wg.Done()
				}); err != nil {
					t.Fatal(err)
				}
			}
		}
		wg.Wait()
	}
	load(func() bool { return refused.Load() > 0 && s > 200 })
	if refused.Load() == 0 {
		t.Fatal("no batch was refused as too large: the test tested nothing")
	}
	limit.Store(1 << 30) // the topic's max.message.bytes raised
	largest.Store(0)
	load(func() bool { return largest.Load() > 4*low })
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d records failed", n)
	}
	t.Logf("%d records; %d batches refused; largest stored after: %d bytes", s, refused.Load(), largest.Load())
	if n := largest.Load(); n <= 4*low {
		t.Fatalf("the largest batch stored within 6s of the topic taking large batches again was %d bytes; want batches over %d again", n, 4*low)
	}
	c.DropControl()
	if n := checkDeviceOrder(t, emb, topic, 1); n != s {
		t.Fatalf("read %d records, want %d", n, s)
	}
}

// TestBatchSenderSplitsABatchRefusedForOneRecord: the broker refuses a
// batch for one record in it (here a marked one; a compacted topic
// refuses a record without a key so); the batch goes back, in order, and
// travels in halves down to that record alone. With INVALID_RECORD only
// it fails (invalid_record) and the other devices' records of the batch
// are stored, each device's in order. With CORRUPT_MESSAGE, retriable,
// the records handed over before it are stored and it is sent again, the
// records behind it waiting, until it has been refused corruptAttempts
// times: then it fails the same way and they are stored.
func TestBatchSenderSplitsABatchRefusedForOneRecord(t *testing.T) {
	const topic, devices, each, badDevice, badSeq = "message-log", 8, 20, 3, 10
	const before = (badSeq-1)*devices + badDevice // records handed over before the marked one
	for _, tc := range []struct {
		name string
		code int16
	}{{"INVALID_RECORD", 87}, {"CORRUPT_MESSAGE", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			p, emb := startProducerWith(t, 1, func(c *Config) { c.Producer, c.Compression = ProducerFleetgate, "none" }, topic)
			c := emb.Cluster()
			var refused, biggest atomic.Int64 // requests refused; records in the largest refused batch
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				time.Sleep(20 * time.Millisecond) // records gather behind the batch in flight
				pr := req.(*kmsg.ProduceRequest)
				for _, tp := range pr.Topics {
					for _, p := range tp.Partitions {
						if !bytes.Contains(p.Records, []byte(":marked")) {
							continue
						}
						var rb kmsg.RecordBatch
						if err := rb.ReadFrom(p.Records); err == nil && int64(rb.NumRecords) > biggest.Load() {
							biggest.Store(int64(rb.NumRecords))
						}
						refused.Add(1)
						return kfaketest.Answer(pr, func(int32) int16 { return tc.code }), nil, true
					}
				}
				return nil, nil, false
			})
			var wg sync.WaitGroup
			var stored atomic.Int64
			var badErr error
			for s := 1; s <= each; s++ {
				for d := range devices {
					v := fmt.Sprintf("%d:%d", d, s)
					bad := d == badDevice && s == badSeq
					if bad {
						v += ":marked"
					}
					wg.Add(1)
					if err := p.Produce(context.Background(), &router.Record{Topic: topic, Key: []byte(fmt.Sprintf("D%d", d)), Partition: -1,
						Value: []byte(v)}, func(err error) {
						defer wg.Done()
						switch {
						case bad:
							badErr = err
						case err == nil:
							stored.Add(1)
						case tc.code == 87 || isPermanent(err):
							t.Errorf("record %s, not the one refused, failed: %v", v, err)
						}
					}); err != nil {
						t.Fatal(err)
					}
				}
			}
			// CORRUPT_MESSAGE is retriable (the record alone is sent again),
			// but refused corruptAttempts times in a row the record goes to
			// the error action as well: until then the records behind it
			// wait, none of them after it stored.
			if tc.code == 2 {
				time.Sleep(time.Second)
				if n := stored.Load(); n != before {
					t.Fatalf("%d records stored while the one refused as corrupt is retried; want the %d before it", n, before)
				}
			}
			all := make(chan struct{})
			go func() { wg.Wait(); close(all) }()
			select {
			case <-all:
			case <-time.After(20 * time.Second):
				shutdownSoon(p) // fails what is left, so that the test ends
				t.Fatalf("records still waiting after 20s (%d stored): the refused record holds its partition", stored.Load())
			}
			if n, want := stored.Load(), int64(devices*each-1); n != want {
				t.Fatalf("%d records stored; want %d", n, want)
			}
			var re *RecordError
			if !errors.As(badErr, &re) || re.Reason != router.ReasonInvalidRecord {
				t.Fatalf("the record refused: %v; want a RecordError %s", badErr, router.ReasonInvalidRecord)
			}
			if biggest.Load() < 2 {
				t.Fatalf("the refused record was in no batch with others (largest refused: %d records): the test tested nothing", biggest.Load())
			}
			t.Logf("%d requests refused; the largest refused batch held %d records", refused.Load(), biggest.Load())
			c.DropControl()
			last := map[int]int{}
			for _, v := range readPartition(t, emb.Addr(), topic, 0) {
				var d, s int
				fmt.Sscanf(v, "%d:%d", &d, &s)
				want := last[d] + 1
				if d == badDevice && want == badSeq {
					want++
				}
				if s != want {
					t.Fatalf("device %d: record %d stored after %d", d, s, last[d])
				}
				last[d] = s
			}
		})
	}
}
