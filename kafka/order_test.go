package kafka

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// hostileSarama stands for a sarama that does the worst it may: it fails
// records at random (as its circuit breaker or an exhausted retry count
// would) and stores, at once, whatever else it holds. It records the order
// of what it stored.
type hostileSarama struct {
	in   chan *sarama.ProducerMessage
	gate *orderGate

	mu     sync.Mutex
	stored map[string][]int
	rng    *rand.Rand
}

func (h *hostileSarama) run(failRate float64) {
	for msg := range h.in {
		h.mu.Lock()
		fail := h.rng.Float64() < failRate
		h.mu.Unlock()
		go func() { // out of order completions, as from two drain goroutines
			if fail {
				h.gate.failed(msg, classify(msg.Topic, sarama.ErrNotEnoughReplicas, nil))
				return
			}
			var seq int
			var dev string
			fmt.Sscanf(string(msg.Value.(sarama.StringEncoder)), "%s %d", &dev, &seq)
			h.mu.Lock()
			h.stored[dev] = append(h.stored[dev], seq)
			h.mu.Unlock()
			h.gate.stored(msg)
		}()
	}
}

// TestOrderGateWhateverSaramaDoes feeds 20 devices' records through the
// gate into a sarama that fails 30% of what it gets and stores the rest at
// once. Every record must be stored exactly once, each device's in order:
// the gate never lets a later record of a device into sarama while an
// earlier one may still fail.
func TestOrderGateWhateverSaramaDoes(t *testing.T) {
	const devices, each = 20, 50
	in := make(chan *sarama.ProducerMessage)
	g := newOrderGate(in, time.Millisecond)
	h := &hostileSarama{in: in, gate: g, stored: map[string][]int{}, rng: rand.New(rand.NewPCG(1, 2))}
	go h.run(0.3)
	defer close(in)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for d := range devices {
		wg.Go(func() {
			dev := fmt.Sprintf("D%d", d)
			var done sync.WaitGroup
			for seq := range each {
				done.Add(1)
				msg := &sarama.ProducerMessage{Topic: "message-log", Key: sarama.StringEncoder(dev),
					Value: sarama.StringEncoder(fmt.Sprintf("%s %d", dev, seq))}
				msg.Metadata = &pending{line: lineKey("message-log", []byte(dev)), done: func(err error) {
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					done.Done()
				}}
				if g.admit(msg) {
					in <- msg
				}
			}
			done.Wait()
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Errorf("a record failed: %v (retriable errors are retried)", err)
	}
	for d := range devices {
		dev := fmt.Sprintf("D%d", d)
		got := h.stored[dev]
		if len(got) != each {
			t.Errorf("%s: %d records stored, want %d", dev, len(got), each)
		}
		for i, seq := range got {
			if seq != i {
				t.Fatalf("%s: stored order %v", dev, got)
			}
		}
	}
	if len(g.lines) != 0 {
		t.Errorf("%d lines left in the gate", len(g.lines))
	}
	g.stop()
}

// TestOrderGateAbort: records waiting behind a head, queued or waiting for a
// retry fail with the abort's error; the head sarama holds fails its line
// when sarama gives it back.
func TestOrderGateAbort(t *testing.T) {
	in := make(chan *sarama.ProducerMessage, 10)
	g := newOrderGate(in, time.Hour)
	results := make(chan string, 10)
	mk := func(key, name string) *sarama.ProducerMessage {
		return &sarama.ProducerMessage{Topic: "t", Metadata: &pending{line: lineKey("t", []byte(key)), done: func(err error) {
			results <- fmt.Sprintf("%s:%v", name, err)
		}}}
	}
	a1, a2, b1, b2 := mk("A", "a1"), mk("A", "a2"), mk("B", "b1"), mk("B", "b2")
	for _, m := range []*sarama.ProducerMessage{a1, a2, b1, b2} {
		if g.admit(m) {
			in <- m
		}
	}
	<-in
	<-in                                             // a1 and b1 in "sarama"
	g.failed(b1, errors.New("leader not available")) // b1 waits an hour for its retry
	aborted := errors.New("shut down")
	g.abort(aborted)
	var got []string
	for range 3 {
		got = append(got, <-results)
	}
	seen := map[string]bool{}
	for _, r := range got {
		seen[r] = true
	}
	// b1 was waiting for its retry: it fails with the abort's error.
	for _, w := range []string{"a2:shut down", "b1:shut down", "b2:shut down"} {
		if !seen[w] {
			t.Errorf("results %v lack %q", got, w)
		}
	}
	g.failed(a1, errors.New("client closed"))
	if r := <-results; r != "a1:client closed" {
		t.Errorf("a1: %s", r)
	}
	if len(g.lines) != 0 {
		t.Errorf("%d lines left", len(g.lines))
	}
}

// TestOrderGateCancel: a head that will never be sent takes the records
// waiting behind it down with it (stored, they would precede it); a head
// handed over goes through the feeder in its place.
func TestOrderGateCancel(t *testing.T) {
	in := make(chan *sarama.ProducerMessage, 10)
	g := newOrderGate(in, time.Hour)
	defer g.stop()
	results := make(chan string, 10)
	mk := func(key, name string) *sarama.ProducerMessage {
		return &sarama.ProducerMessage{Topic: "t", Metadata: &pending{line: lineKey("t", []byte(key)), done: func(err error) {
			results <- fmt.Sprintf("%s:%v", name, err)
		}}}
	}
	a1, a2, b1, b2 := mk("A", "a1"), mk("A", "a2"), mk("B", "b1"), mk("B", "b2")
	for _, m := range []*sarama.ProducerMessage{a1, a2, b1, b2} {
		g.admit(m)
	}
	g.cancel(a1, ErrClosed)
	if r := <-results; r != "a2:"+ErrClosed.Error() {
		t.Errorf("a2: %s", r)
	}
	g.handOver(b1)
	if m := <-in; m != b1 {
		t.Fatalf("the feeder sent %v, want b1", m)
	}
	g.stored(b1)
	if r := <-results; r != "b1:<nil>" {
		t.Errorf("b1: %s", r)
	}
	if m := <-in; m != b2 {
		t.Fatalf("after b1 the feeder sent %v, want b2", m)
	}
}
