package kafka

import (
	"strings"
	"testing"
	"time"
)

func TestWriteHealth(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	h := newWriteHealth(10*time.Second, clock.Now)
	ok := func(want bool) {
		t.Helper()
		if err := h.Err(); (err == nil) != want {
			t.Fatalf("Err() = %v, want ok=%v", err, want)
		}
	}
	ok(true)
	clock.Advance(time.Hour) // idle: not judged by writes
	ok(true)
	h.handed() // the window starts now, not at the last record an hour ago
	clock.Advance(9 * time.Second)
	ok(true)
	clock.Advance(2 * time.Second)
	ok(false)
	if err := h.Err(); !strings.Contains(err.Error(), "kafka.readiness_window") {
		t.Errorf("Err() = %v, want it to name kafka.readiness_window", err)
	}
	h.handed()
	h.completed(true) // one stored: writes work
	ok(true)
	clock.Advance(11 * time.Second) // the other still waits, nothing stored since
	ok(false)
	h.completed(false) // failed at last: nothing waits
	ok(true)
	h.handed()
	h.cancelled()
	clock.Advance(time.Minute)
	ok(true)
}

func TestConfigValidateNewKeys(t *testing.T) {
	for _, tt := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.RetryBudget = 100 * time.Millisecond }, "kafka.retry_budget"},
		{func(c *Config) { c.ReadinessWindow = 0 }, "kafka.readiness_window"},
	} {
		c := DefaultConfig()
		tt.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
