package kafka

import (
	"fmt"
	"sync/atomic"
	"time"
)

// writeHealth tells whether the producer can write, for readiness: it is
// stalled when records are waiting for Kafka and none has been stored for
// the window. A metadata answer is not enough (with min.insync.replicas
// unmet every broker answers metadata and refuses every write), and an
// idle producer is not stalled. Its methods are safe for concurrent use and
// cost an atomic operation each.
type writeHealth struct {
	window     time.Duration
	now        func() time.Time
	waiting    atomic.Int64 // records handed over and not completed
	lastStored atomic.Int64 // UnixNano of the last stored record (or the start)
}

func newWriteHealth(window time.Duration, now func() time.Time) *writeHealth {
	h := &writeHealth{window: window, now: now}
	h.lastStored.Store(now().UnixNano())
	return h
}

// handed counts a record handed to the producer.
func (h *writeHealth) handed() {
	if h.waiting.Add(1) == 1 {
		// Nothing was waiting: the clock of the window starts now, not
		// at the last record stored before an idle spell.
		h.lastStored.Store(h.now().UnixNano())
	}
}

// completed counts a record completed, stored or not.
func (h *writeHealth) completed(stored bool) {
	if stored {
		h.lastStored.Store(h.now().UnixNano())
	}
	h.waiting.Add(-1)
}

// cancelled counts a record taken back before anything was sent.
func (h *writeHealth) cancelled() { h.waiting.Add(-1) }

// Err returns nil, or why the producer counts as unable to write.
func (h *writeHealth) Err() error {
	n := h.waiting.Load()
	if n <= 0 {
		return nil
	}
	since := h.now().Sub(time.Unix(0, h.lastStored.Load()))
	if since <= h.window {
		return nil
	}
	return fmt.Errorf("kafka: %d records waiting and none stored for %s (kafka.readiness_window %s)",
		n, since.Round(time.Second), h.window)
}
