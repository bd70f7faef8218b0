package main

import (
	"context"
	"math/rand/v2"
	"time"
)

// schedule is one connection's open-loop send times (--device-rate): a
// slot every interval from a random phase, whatever became of the earlier
// messages. A connection that fell behind (a stalled PUBACK holds its
// in-flight window) sends its late slots at once, and each message's
// latency counts from its slot, not from when it could finally be sent, so a
// stall shows in the latency instead of slowing the load down (no
// coordinated omission). Owned by the connection's publishing goroutine.
type schedule struct {
	next     time.Time
	interval time.Duration
}

// newSchedule returns the schedule of a connection carrying devices devices
// that each send perDevice messages a second, starting within one interval
// of start.
func newSchedule(perDevice float64, devices int, rng *rand.Rand, start time.Time) *schedule {
	interval := time.Duration(float64(time.Second) / (perDevice * float64(devices)))
	interval = max(interval, time.Microsecond)
	return &schedule{next: start.Add(time.Duration(rng.Int64N(int64(interval)))), interval: interval}
}

// wait sleeps until the next slot and returns it, or ctx's error.
func (s *schedule) wait(ctx context.Context) (time.Time, error) {
	slot := s.next
	s.next = s.next.Add(s.interval)
	if d := time.Until(slot); d > 0 {
		if err := sleepCtx(ctx, d); err != nil {
			return slot, err
		}
	}
	return slot, ctx.Err()
}
