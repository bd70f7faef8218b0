package telematics

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// held reports how many devices have a request being stored.
func (o *deviceOrder) held() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queues)
}

// waiting reports how many requests of device wait for its turn.
func (o *deviceOrder) waiting(device string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if q := o.queues[device]; q != nil {
		return len(q.waiters)
	}
	return 0
}

func TestDeviceOrderFIFO(t *testing.T) {
	var o deviceOrder
	ctx := context.Background()
	if err := o.lock(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []int
	var wg sync.WaitGroup
	for i := 1; i <= 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := o.lock(ctx, "A"); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
			o.unlock("A")
		}()
		waitFor(t, "waiter to queue", func() bool { return o.waiting("A") == i })
	}
	// Another device is not held up.
	if err := o.lock(ctx, "B"); err != nil {
		t.Fatal(err)
	}
	o.unlock("B")
	o.unlock("A")
	wg.Wait()
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("turns taken in order %v", got)
		}
	}
	if o.held() != 0 {
		t.Fatalf("%d devices still held", o.held())
	}
}

func TestDeviceOrderCancelledWaiter(t *testing.T) {
	var o deviceOrder
	if err := o.lock(context.Background(), "A"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := o.lock(ctx, "A"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock with an expiring context: %v", err)
	}
	if n := o.waiting("A"); n != 0 {
		t.Fatalf("%d waiters left after cancellation", n)
	}
	next := make(chan error, 1)
	go func() { next <- o.lock(context.Background(), "A") }()
	waitFor(t, "waiter to queue", func() bool { return o.waiting("A") == 1 })
	o.unlock("A")
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	o.unlock("A")
	if o.held() != 0 {
		t.Fatalf("%d devices still held", o.held())
	}
}

// TestDeviceOrderStress races cancellations against hand-overs; run with
// -race. Whoever holds the turn must be alone.
func TestDeviceOrderStress(t *testing.T) {
	var o deviceOrder
	var inside, maxInside int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%5)*100*time.Microsecond)
			defer cancel()
			if err := o.lock(ctx, "A"); err != nil {
				return
			}
			mu.Lock()
			inside++
			maxInside = max(maxInside, inside)
			mu.Unlock()
			time.Sleep(50 * time.Microsecond)
			mu.Lock()
			inside--
			mu.Unlock()
			o.unlock("A")
		}()
	}
	wg.Wait()
	if maxInside != 1 {
		t.Fatalf("%d holders at once", maxInside)
	}
	if o.held() != 0 {
		t.Fatalf("%d devices still held", o.held())
	}
}
