package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramExactBelowSubBuckets(t *testing.T) {
	var h histogram
	for us := 1; us <= 100; us++ {
		h.record(time.Duration(us) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Microsecond}, {0.9, 90 * time.Microsecond}, {0.99, 99 * time.Microsecond}, {1, 100 * time.Microsecond}} {
		if got := h.quantile(tt.q); got != tt.want {
			t.Errorf("q%.2f = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestHistogramRelativeError(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var h histogram
	var vals []time.Duration
	for range 100000 {
		// Log-uniform from 50 µs to 5 s, like latencies under load.
		d := time.Duration(50e3 * math.Pow(1e5, r.Float64()))
		vals = append(vals, d)
		h.record(d)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.quantile(q)
		if rel := float64(got-exact) / float64(exact); rel < -0.001 || rel > 0.016 {
			t.Errorf("q%v = %v, exact %v (relative error %.4f, want within [0, 1.6%%])", q, got, exact, rel)
		}
	}
	if time.Duration(h.maxNS) != vals[len(vals)-1] || h.quantile(1) != vals[len(vals)-1] {
		t.Errorf("max %v, q1 %v, want %v exactly", time.Duration(h.maxNS), h.quantile(1), vals[len(vals)-1])
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	var a, b, empty histogram
	if empty.quantile(0.99) != 0 {
		t.Error("empty histogram quantile is not 0")
	}
	for i := range 1000 {
		a.record(time.Millisecond)
		if i%10 == 0 {
			b.record(time.Second)
		}
	}
	a.merge(&b)
	a.merge(&empty)
	if a.n != 1100 {
		t.Fatalf("n = %d, want 1100", a.n)
	}
	if p90 := a.quantile(0.90); p90 < time.Millisecond || p90 > 1016*time.Microsecond {
		t.Errorf("p90 = %v, want about 1ms", p90)
	}
	if p99 := a.quantile(0.99); p99 != time.Second {
		t.Errorf("p99 = %v, want 1s", p99)
	}
	// Beyond the tracked range: clamped in buckets, max still exact.
	var c histogram
	c.record(1000 * time.Hour)
	c.record(-time.Second)
	if time.Duration(c.maxNS) != 1000*time.Hour || c.quantile(1) != 1000*time.Hour {
		t.Errorf("huge value: max %v q1 %v", time.Duration(c.maxNS), c.quantile(1))
	}
}

func TestSourceStatsSummary(t *testing.T) {
	s := newSourceStats("mqtt")
	s.clock = time.Now()
	for i := range 100 {
		s.sent.Add(1)
		s.ack(i, time.Duration(i+1)*time.Millisecond, 2)
	}
	for range 20 {
		s.noteError("e1")
	}
	for i := range 20 {
		s.noteError(string(rune('a' + i)))
	}
	sum := s.summarize(2 * time.Second)
	if sum.Acked != 100 || sum.Records != 200 || sum.AckedPerS != 50 || sum.RecordsPerS != 100 {
		t.Errorf("summary counts %+v", sum)
	}
	if sum.Latency.P50 < 50 || sum.Latency.P50 > 51 || sum.Latency.Max != 100 {
		t.Errorf("latency %+v", sum.Latency)
	}
	if len(sum.Errors) != maxErrorKinds || sum.Errors["e1"] != 20 {
		t.Errorf("errors %v", sum.Errors)
	}
}
