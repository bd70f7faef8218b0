package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/router"
)

// TestBatchSenderShutdownIsBoundedWhenTheBrokerGoesSilent: the broker
// takes connections and requests and never answers again, so the
// sender's first batch waits for its producer id and every other record
// waits behind it. Shutdown with a 1s deadline returns within abortGrace
// of it, and by then every record has completed exactly once, with an
// error; none completes again later.
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
	time.Sleep(time.Second)
	once("a second later")
}
