package broker

import (
	"fmt"
	"testing"
	"time"
)

func testBackoff() (*backoff, *time.Time) {
	now := time.Unix(1_000_000, 0)
	b := newBackoff(BackoffConfig{Keys: []string{"remote_addr", "username"}, InitialDelay: 100 * time.Millisecond,
		MaxDelay: time.Second, ForgetAfter: time.Minute, MaxTracked: 3, MaxWaiting: 2})
	b.now = func() time.Time { return now }
	return b, &now
}

func TestBackoffDelays(t *testing.T) {
	b, now := testBackoff()
	keys := b.keysOf("10.0.0.1:4242", "devA")
	if len(keys) != 2 || keys[0] != "addr:10.0.0.1" || keys[1] != "user:devA" {
		t.Fatalf("keys %v", keys)
	}
	var got []time.Duration
	for range 6 {
		d, release := b.fail(keys)
		release()
		got = append(got, d)
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	// Another port of the same address shares its failures; another
	// address with another username starts over.
	if d, r := b.fail(b.keysOf("10.0.0.1:1", "x")); d != time.Second {
		t.Fatalf("same address: %s", d)
	} else {
		r()
	}
	if d, r := b.fail(b.keysOf("10.0.0.2:1", "y")); d != 100*time.Millisecond {
		t.Fatalf("new keys: %s", d)
	} else {
		r()
	}
	// Forgotten after ForgetAfter without failures.
	*now = now.Add(2 * time.Minute)
	if d, r := b.fail(b.keysOf("10.0.0.1:1", "devA")); d != 100*time.Millisecond {
		t.Fatalf("after forget_after: %s", d)
	} else {
		r()
	}
	// A username that authenticates is forgiven; its address is not.
	b.succeed("user:devA")
	if d, r := b.fail(b.keysOf("", "devA")); d != 100*time.Millisecond {
		t.Fatalf("after success: %s", d)
	} else {
		r()
	}
}

func TestBackoffBoundedAndSaturated(t *testing.T) {
	b, _ := testBackoff()
	for i := range 100 {
		_, r := b.fail(b.keysOf(fmt.Sprintf("10.0.%d.1:1", i), fmt.Sprintf("u%d", i)))
		r()
	}
	if n := b.tracked(); n != 3 {
		t.Fatalf("%d keys tracked, want max_tracked 3", n)
	}
	keys := b.keysOf("", "devA")
	_, r1 := b.fail(keys)
	if b.saturated(keys) {
		t.Fatal("saturated with 1 refusal held")
	}
	_, r2 := b.fail(keys)
	if !b.saturated(keys) {
		t.Fatal("not saturated with max_waiting refusals held")
	}
	r1()
	r2()
	if b.saturated(keys) {
		t.Fatal("still saturated after the refusals were sent")
	}
}

// TestBackoffDelaysRefusals: with the real broker, wrong passwords are
// refused ever more slowly, and the failures are counted.
func TestBackoffDelaysRefusals(t *testing.T) {
	obs := &countingObserver{}
	b := securedBroker(t, newFakePipeline(), func(c *Config) {
		c.Auth.EnforceDeviceIdentity = false
		c.Auth.Backoff = BackoffConfig{Keys: []string{"username"}, InitialDelay: 200 * time.Millisecond, MaxDelay: time.Second,
			ForgetAfter: time.Minute, MaxTracked: 100, MaxWaiting: 4}
	}, WithObserver(obs))
	var took []time.Duration
	for range 3 {
		start := time.Now()
		if code := connectCode(t, b.Addr("tcp"), "x", "D1", "guess"); code == 0 {
			t.Fatal("a wrong password accepted")
		}
		took = append(took, time.Since(start))
	}
	for i, min := range []time.Duration{200, 400, 800} {
		if took[i] < min*time.Millisecond {
			t.Fatalf("refusals took %v; want at least 200ms, 400ms, 800ms", took)
		}
	}
	// Another username is not slowed by D1's failures.
	start := time.Now()
	if code := connectCode(t, b.Addr("tcp"), "y", "D2", "other"); code != 0 || time.Since(start) > 150*time.Millisecond {
		t.Fatalf("D2: CONNACK %#x after %s", code, time.Since(start))
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if n := obs.access["connect/bad_password"]; n != 3 {
		t.Fatalf("bad_password counted %d times", n)
	}
}
