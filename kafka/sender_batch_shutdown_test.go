package kafka

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetgate/fleetgate/router"
)

// TestBatchSenderShutdownIsBoundedWhenTheBrokerGoesSilent: the broker
// takes connections and requests and never answers again, so the
// sender's first batch waits for its producer id and every other record
// waits behind it. Shutdown with a 1s deadline returns within abortGrace
// of it, and by then every record has completed exactly once, with an
// error; none completes again later. The sender's loop has ended too:
// the producer id lookup, which never gets an answer, runs off it.
func TestBatchSenderShutdownIsBoundedWhenTheBrokerGoesSilent(t *testing.T) {
	const topic, devices, each = "message-log", 4, 25
	_, px := startLossyCluster(t, 2, topic, func() bool { return false })
	cfg := DefaultConfig()
	cfg.Brokers = []string{px.ln.Addr().String()}
	p := newTestProducer(t, cfg)
	if err := p.RefreshTopics(); err != nil {
		t.Fatal(err)
	}
	px.mute.Store(true)
	var calls [devices][each]atomic.Int32
	for d := range devices {
		for s := range each {
			rec := &router.Record{Topic: topic, Key: []byte(fmt.Sprintf("D%d", d)), Partition: -1, Value: []byte(fmt.Sprintf("%d:%d", d, s))}
			if err := p.Produce(context.Background(), rec, func(err error) {
				calls[d][s].Add(1)
				if err == nil {
					t.Errorf("record %d:%d was reported stored by a broker that answers nothing", d, s)
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	began := time.Now()
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		_ = p.Shutdown(ctx)
	}()
	bound := time.Second + abortGrace + 500*time.Millisecond
	select {
	case <-returned:
		if took := time.Since(began); took > bound {
			t.Errorf("Shutdown with a 1s deadline took %v; want at most %v", took, bound)
		}
	case <-time.After(bound + 5*time.Second):
		t.Fatalf("Shutdown with a 1s deadline had not returned after %v", bound+5*time.Second)
	}
	once := func(when string) {
		t.Helper()
		for d := range devices {
			for s := range each {
				if n := calls[d][s].Load(); n != 1 {
					t.Fatalf("%s: record %d:%d completed %d times; want once", when, d, s, n)
				}
			}
		}
	}
	once("when Shutdown returned")
	select {
	case <-p.out.(*batchSender).done:
	default:
		t.Error("the sender's loop had not ended when Shutdown returned: it is in a call to the silent broker")
	}
	time.Sleep(time.Second)
	once("a second later")
}

// TestBatchSenderRetriesAFailedProducerIDLookup: the brokers refuse the
// first producer id lookups (COORDINATOR_NOT_AVAILABLE); the records
// wait, in order, and are stored once a lookup succeeds, with a back-off
// between lookups, one at a time.
func TestBatchSenderRetriesAFailedProducerIDLookup(t *testing.T) {
	const topic, devices, each, refused = "message-log", 4, 20, 3
	p, emb := startProducerOf(t, ProducerFleetgate, 2, topic)
	c := emb.Cluster()
	var lookups atomic.Int32
	var mu sync.Mutex
	var at []time.Time
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if lookups.Add(1) > refused {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode = 15 // COORDINATOR_NOT_AVAILABLE
		return resp, nil, true
	})
	var wg sync.WaitGroup
	for s := range each {
		for d := range devices {
			wg.Add(1)
			rec := &router.Record{Topic: topic, Key: []byte(fmt.Sprintf("D%d", d)), Partition: -1, Value: []byte(fmt.Sprintf("%d:%d", d, s+1))}
			if err := p.Produce(context.Background(), rec, func(err error) {
				defer wg.Done()
				if err != nil {
					t.Errorf("record %d:%d: %v", d, s+1, err)
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	if n := lookups.Load(); n != refused+1 {
		t.Errorf("%d producer id lookups; want %d (%d refused, then one)", n, refused+1, refused)
	}
	mu.Lock()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < retryBackoff(i)*9/10 {
			t.Errorf("producer id lookup %d came %v after the refused one; want a back-off of %v", i+1, gap, retryBackoff(i))
		}
	}
	mu.Unlock()
	c.DropControl()
	if n := checkDeviceOrder(t, emb, topic, 2); n != devices*each {
		t.Fatalf("read %d records, want %d", n, devices*each)
	}
}
