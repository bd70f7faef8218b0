package kafka

import (
	"context"
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
