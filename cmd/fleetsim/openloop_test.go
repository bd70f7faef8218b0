package main

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

func TestScheduleKeepsItsSlots(t *testing.T) {
	start := time.Now().Add(-time.Second) // a second behind: slots are due at once
	s := newSchedule(100, 2, rand.New(rand.NewPCG(1, 2)), start)
	if s.interval != 5*time.Millisecond {
		t.Fatalf("interval %s; want 5ms for 2 devices at 100/s", s.interval)
	}
	first, err := s.wait(context.Background())
	if err != nil || first.Before(start) || !first.Before(start.Add(s.interval)) {
		t.Fatalf("first slot %s (err %v); want within one interval of the start", first.Sub(start), err)
	}
	for i := 1; i <= 10; i++ {
		slot, _ := s.wait(context.Background())
		if got := slot.Sub(first); got != time.Duration(i)*s.interval {
			t.Fatalf("slot %d at +%s; want +%s whatever the delay", i, got, time.Duration(i)*s.interval)
		}
	}
}

// stallHook acknowledges every message at once except one, which it holds
// for stall on the connection's read goroutine (so the ones behind it wait
// too), as a broker stalled on its storage would.
type stallHook struct {
	recordingHook
	n     int
	stall time.Duration
}

func (h *stallHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	h.n++
	if h.n == 10 {
		time.Sleep(h.stall)
	}
	return h.recordingHook.OnPublish(cl, pk)
}

// TestOpenLoopShowsAStall: with --device-rate, the messages that were due
// while the broker stalled count their wait from their scheduled time, so
// the stall shows in the latency of every message due during it (here
// about 15 of 70), and the schedule is kept afterwards.
func TestOpenLoopShowsAStall(t *testing.T) {
	h := &stallHook{stall: 300 * time.Millisecond}
	h.offs = map[string]int64{}
	addr := serveHook(t, h)
	cfg := testRunConfig(t, "--mqtt", addr, "--devices", "1", "--inflight", "1", "--device-rate", "50",
		"--duration", "1400ms", "--progress", "0", "--warmup")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := simulate(ctx, ctx, cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	m := sum.MQTT
	if m.Sent < 60 || m.Acked != m.Sent {
		t.Fatalf("sent %d acked %d; want about 70, all acked (the schedule is kept through the stall)", m.Sent, m.Acked)
	}
	if m.Latency.P90 < 100 {
		t.Fatalf("p90 %.1f ms; the ~15 messages due during the 300 ms stall must show it", m.Latency.P90)
	}
}

func TestHoldKeepsIdleConnections(t *testing.T) {
	h := &recordingHook{}
	addr := startBroker(t, h)
	cfg := testRunConfig(t, "--mqtt", addr, "--devices", "20", "--hold", "300ms", "--progress", "0")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := simulate(ctx, ctx, cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if sum.MQTT.Connected != 20 || sum.MQTT.Sent != 0 || len(h.records()) != 0 {
		t.Fatalf("connected %d sent %d stored %d; want 20 idle connections and no message", sum.MQTT.Connected, sum.MQTT.Sent, len(h.records()))
	}
}
