package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
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

// holdIdle keeps the connected clients idle for cfg.hold (or until ctx
// ends), then disconnects them. The summary counts the connections.
func holdIdle(ctx context.Context, cfg *runConfig, mq *mqttLoad, started time.Time, logw io.Writer) *Summary {
	fmt.Fprintf(logw, "fleetsim: holding %d idle connections for %s\n", mq.stats.connected.Load(), cfg.hold)
	_ = sleepCtx(ctx, cfg.hold)
	up := mq.stats.connected.Load()
	var wg sync.WaitGroup
	for _, c := range mq.conns {
		if c.client != nil && c.up {
			wg.Go(func() { c.client.Disconnect(250) })
		}
	}
	wg.Wait()
	sum := &Summary{Run: cfg.runID, Started: started.UTC(), ElapsedS: cfg.hold.Seconds(), Size: cfg.size, Mix: cfg.mixSpec}
	sum.MQTT = mq.stats.summarize(cfg.hold)
	sum.MQTT.Unit, sum.MQTT.Devices, sum.MQTT.Connections = "message", cfg.devices, cfg.connections
	sum.MQTT.Connected = up
	return sum
}
