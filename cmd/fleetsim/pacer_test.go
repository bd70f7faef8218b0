package main

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that only moves when someone sleeps on it.
type fakeClock struct {
	mu  sync.Mutex
	now int64
}

func (c *fakeClock) Now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.advance(d)
	return ctx.Err()
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now += int64(d)
	c.mu.Unlock()
}

func TestPacerEvenRate(t *testing.T) {
	clk := &fakeClock{}
	p := newPacerClock(1000, 20*time.Millisecond, clk.Now, clk.Sleep)
	for range 1000 {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// The first send is at 0, the 1000th at 999 ms.
	if got := time.Duration(clk.Now()); got != 999*time.Millisecond {
		t.Fatalf("1000 sends at 1000/s took %v, want 999ms", got)
	}
}

func TestPacerBurstAfterStall(t *testing.T) {
	clk := &fakeClock{}
	p := newPacerClock(1000, 20*time.Millisecond, clk.Now, clk.Sleep)
	_ = p.Wait(context.Background())
	clk.advance(time.Second) // the sender stalled for a second
	start := clk.Now()
	for range 40 {
		_ = p.Wait(context.Background())
	}
	// 20 ms of credit: about 20 sends at once, then 1 per ms.
	if got := time.Duration(clk.Now() - start); got < 19*time.Millisecond || got > 21*time.Millisecond {
		t.Fatalf("40 sends after a stall took %v, want about 20ms (20 caught up, 20 paced)", got)
	}
}

func TestPacerNilAndCancel(t *testing.T) {
	var p *pacer
	if err := p.Wait(context.Background()); err != nil {
		t.Fatalf("nil pacer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p.Wait(ctx) == nil {
		t.Fatal("nil pacer with a cancelled context returned nil")
	}
	if newPacer(0) != nil {
		t.Fatal("newPacer(0) limits")
	}
	slow := newPacer(0.001) // one send per 1000 s
	_ = slow.Wait(context.Background())
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := slow.Wait(ctx); err == nil {
		t.Fatal("Wait did not return the context's error")
	}
}

// TestPacerConcurrent runs on the real clock: 8 senders share 2000/s.
func TestPacerConcurrent(t *testing.T) {
	p := newPacer(2000)
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_ = p.Wait(context.Background())
			}
		})
	}
	wg.Wait()
	// 400 sends at 2000/s: 200 ms, less the 20 ms burst the clock may grant
	// a late sender. The upper bound only catches a pacer gone wrong on a
	// loaded machine.
	if got := time.Since(start); got < 170*time.Millisecond || got > 3*time.Second {
		t.Fatalf("400 sends at 2000/s took %v, want about 200ms", got)
	}
}
