package limits

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", DefaultConfig(), ""},
		{"no messages", Config{MaxInflightMessages: 0, MaxInflightBytes: 1 << 20}, "limits.max_inflight_messages"},
		{"tiny bytes", Config{MaxInflightMessages: 10, MaxInflightBytes: 10}, "limits.max_inflight_bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestBudgetBoundsMessagesAndBytes(t *testing.T) {
	b := New(Config{MaxInflightMessages: 3, MaxInflightBytes: 2048})
	if !b.TryAcquire(2, 1000) {
		t.Fatal("room for 2 messages of 1000 bytes refused")
	}
	if b.TryAcquire(1, 1100) {
		t.Fatal("bytes over the limit granted")
	}
	if !b.TryAcquire(1, 1000) {
		t.Fatal("the third message refused")
	}
	if b.TryAcquire(1, 1) {
		t.Fatal("a fourth message granted")
	}
	if m, n := b.InUse(); m != 3 || n != 2000 {
		t.Fatalf("in use %d messages %d bytes, want 3 and 2000", m, n)
	}
	b.Release(2, 1000)
	b.Release(1, 1000)
	if m, n := b.InUse(); m != 0 || n != 0 {
		t.Fatalf("in use after release: %d, %d", m, n)
	}
}

func TestBudgetOversizeGoesAlone(t *testing.T) {
	b := New(Config{MaxInflightMessages: 10, MaxInflightBytes: 1024})
	if !b.TryAcquire(1, 1<<20) {
		t.Fatal("a message larger than the byte limit can never go")
	}
	if b.TryAcquire(1, 1) {
		t.Fatal("granted while an oversize message holds every byte")
	}
	b.Release(1, 1<<20)
	if m, n := b.InUse(); m != 0 || n != 0 {
		t.Fatalf("in use after release: %d, %d", m, n)
	}
}

func TestAcquireWaitsInOrderAndGivesUp(t *testing.T) {
	b := New(Config{MaxInflightMessages: 1, MaxInflightBytes: 1024})
	if !b.TryAcquire(1, 10) {
		t.Fatal("first refused")
	}
	// A waiter with a deadline gives up and holds nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.Acquire(ctx, 1, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire on a full budget: %v, want deadline exceeded", err)
	}
	if m, _ := b.InUse(); m != 1 {
		t.Fatalf("a timed-out waiter left %d in use, want 1", m)
	}

	// A waiter is served before a later TryAcquire.
	got := make(chan error, 1)
	go func() { got <- b.Acquire(context.Background(), 1, 10) }()
	waitFor(t, b.hasWaiters)
	b.Release(1, 10)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if b.TryAcquire(1, 10) {
		t.Fatal("TryAcquire overtook the waiter")
	}
	b.Release(1, 10)
}

// hasWaiters reports whether anyone waits for room: a zero-sized
// TryAcquire fails only then.
func (b *Budget) hasWaiters() bool { return !b.msgs.TryAcquire(0) }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBudgetConcurrent(t *testing.T) {
	b := New(Config{MaxInflightMessages: 8, MaxInflightBytes: 4096})
	var wg sync.WaitGroup
	var peak sync.Mutex
	high := int64(0)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if err := b.Acquire(context.Background(), 1, 300); err != nil {
					t.Error(err)
					return
				}
				m, n := b.InUse()
				peak.Lock()
				high = max(high, m)
				peak.Unlock()
				if m > 8 || n > 4096 {
					t.Errorf("over the limits: %d messages %d bytes", m, n)
				}
				// Hold the room a moment, so that the goroutines overlap
				// even where each would otherwise run to its end in one
				// time slice.
				time.Sleep(10 * time.Microsecond)
				b.Release(1, 300)
			}
		}()
	}
	wg.Wait()
	if m, n := b.InUse(); m != 0 || n != 0 {
		t.Fatalf("in use at the end: %d, %d", m, n)
	}
	if high < 2 {
		t.Fatalf("peak %d: the test did not run concurrently", high)
	}
}
