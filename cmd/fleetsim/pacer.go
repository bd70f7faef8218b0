package main

import (
	"context"
	"sync/atomic"
	"time"
)

// pacer spreads sends evenly at a total rate shared by every sender: each
// Wait reserves the next free time slot and sleeps until it. Senders that
// fell behind may catch up by at most burst worth of slots at once, so a
// stall does not turn into a flood. A nil *pacer does not limit. Safe for
// concurrent use.
type pacer struct {
	interval int64 // ns between slots
	burst    int64 // ns of slots that may be spent late
	next     atomic.Int64

	now   func() int64 // ns on a monotonic clock
	sleep func(ctx context.Context, d time.Duration) error
}

// pacerBurst is how far behind schedule senders may fall and still catch up.
const pacerBurst = 20 * time.Millisecond

// newPacer returns a pacer for rate sends per second, or nil when rate <= 0.
func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return nil
	}
	base := time.Now()
	return newPacerClock(rate, pacerBurst, func() int64 { return int64(time.Since(base)) }, sleepCtx)
}

// newPacerClock is newPacer with a clock and sleep of the caller's (tests).
func newPacerClock(rate float64, burst time.Duration, now func() int64, sleep func(context.Context, time.Duration) error) *pacer {
	p := &pacer{interval: max(int64(float64(time.Second)/rate), 1), burst: int64(burst), now: now, sleep: sleep}
	p.next.Store(now())
	return p
}

// Wait blocks until the caller's slot, or returns ctx's error.
func (p *pacer) Wait(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	now := p.now()
	var slot int64
	for {
		next := p.next.Load()
		slot = max(next, now-p.burst)
		if p.next.CompareAndSwap(next, slot+p.interval) {
			break
		}
	}
	if d := slot - now; d > 0 {
		return p.sleep(ctx, time.Duration(d))
	}
	return ctx.Err()
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
