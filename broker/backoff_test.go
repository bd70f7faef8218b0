package broker

import (
	"fmt"
	"sync"
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
		got = append(got, failOnce(t, b, keys))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	// Another port of the same address shares its failures; another
	// address with another username starts over.
	if d := failOnce(t, b, b.keysOf("10.0.0.1:1", "x")); d != time.Second {
		t.Fatalf("same address: %s", d)
	}
	if d := failOnce(t, b, b.keysOf("10.0.0.2:1", "y")); d != 100*time.Millisecond {
		t.Fatalf("new keys: %s", d)
	}
	// Forgotten after ForgetAfter without failures.
	*now = now.Add(2 * time.Minute)
	if d := failOnce(t, b, b.keysOf("10.0.0.1:1", "devA")); d != 100*time.Millisecond {
		t.Fatalf("after forget_after: %s", d)
	}
	// A username that authenticates is forgiven; its address is not.
	b.succeed("user:devA")
	if d := failOnce(t, b, b.keysOf("", "devA")); d != 100*time.Millisecond {
		t.Fatalf("after success: %s", d)
	}
}

// failOnce is one failed attempt on keys; it returns its delay.
func failOnce(t *testing.T, b *backoff, keys []string) time.Duration {
	t.Helper()
	a, ok := b.admit(keys)
	if !ok {
		t.Fatalf("attempt on %v not admitted", keys)
	}
	defer a.release()
	return a.fail()
}

func TestBackoffBoundedAndSaturated(t *testing.T) {
	b, _ := testBackoff()
	for i := range 100 {
		failOnce(t, b, b.keysOf(fmt.Sprintf("10.0.%d.1:1", i), fmt.Sprintf("u%d", i)))
	}
	if n := b.tracked(); n != 3 {
		t.Fatalf("%d keys tracked, want max_tracked 3", n)
	}
	// An address without failures is not limited: a fleet behind one
	// address may reconnect at once.
	var fresh []*attempt
	for i := range 10 {
		a, ok := b.admit(b.keysOf("10.9.9.9:1", fmt.Sprintf("dev%d", i)))
		if !ok {
			t.Fatal("an attempt from an address without failures refused")
		}
		fresh = append(fresh, a)
	}
	for _, a := range fresh {
		a.release()
	}
	// A username is: one device needs one attempt at a time, so even a
	// first burst of guesses gets max_waiting (2) checked at once.
	keys := b.keysOf("", "devA")
	first, _ := b.admit(keys)
	second, _ := b.admit(keys)
	if _, ok := b.admit(keys); ok {
		t.Fatal("a third parallel attempt at one username admitted")
	}
	first.release()
	second.release()
	second.release() // twice: harmless
	if len(b.checking) != 0 {
		t.Fatalf("attempts left counted after release: %v", b.checking)
	}
	// Once it has failed, at most max_waiting (2) attempts are checked or
	// held at once; the next is refused unchecked until one is released.
	failOnce(t, b, keys)
	a1, ok1 := b.admit(keys)
	a2, ok2 := b.admit(keys)
	if !ok1 || !ok2 {
		t.Fatal("attempts within max_waiting refused")
	}
	if _, ok := b.admit(keys); ok {
		t.Fatal("an attempt beyond max_waiting admitted")
	}
	a1.fail()
	a1.release()
	if _, ok := b.admit(keys); !ok {
		t.Fatal("refused after a slot was released")
	}
	a2.release()
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
	// Bursts of parallel guesses, at a username that failed before (D1)
	// and at a fresh one (D3): at most max_waiting (4) of each are
	// checked, the others are refused at once, unchecked.
	for _, user := range []string{"D1", "D3"} {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { connectCode(t, b.Addr("tcp"), "x", user, "guess") })
		}
		wg.Wait()
	}
	if u := obs.unlisted(); len(u) > 0 {
		t.Errorf("refusals not in Refusals() (the metrics would not start them at zero): %v", u)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if n := obs.access["connect/bad_password"]; n > 3+4+4 {
		t.Fatalf("bad_password counted %d times: more than max_waiting guesses of a burst were checked", n)
	}
	if n := obs.access["connect/backoff"]; n < 32 {
		t.Fatalf("backoff refusals %d, want at least 32 of the two bursts of 20", n)
	}
}
