package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcHold keeps the load tool's own garbage collector out of the latencies it
// measures. A Go collection cycle under load takes the tool's goroutines
// away from sending and from reading acks for milliseconds at a time, and in
// an open-loop run every message due meanwhile counts that wait as broker
// latency: measured against mosquitto at 7,500 msg/s, the p99 was 13.7 ms
// with Go's default collector and 3.7 ms without (docs/benchmarks.md).
//
// From start to stop no collection runs until the process has grown by
// headroom bytes beyond what it held at start (Go's GOGC=off with a memory
// limit), so memory stays bounded and a long run still collects, rarely.
// The settings are process-wide: one gcHold at a time.
type gcHold struct {
	headroom    int64
	prevPercent int
	prevLimit   int64
	cycles0     uint64
	stopped     bool
	cycles      uint64
}

// start collects once, then defers collection until the process has grown
// by g.headroom. Call it just before the clock starts, after connecting.
func (g *gcHold) start() {
	runtime.GC()
	g.cycles0 = gcCycles()
	g.prevLimit = debug.SetMemoryLimit(memoryInUse() + g.headroom)
	g.prevPercent = debug.SetGCPercent(-1)
}

// stop restores the collector's settings and returns how many cycles ran
// since start. Later calls change nothing and return the same count.
func (g *gcHold) stop() uint64 {
	if !g.stopped {
		g.stopped = true
		g.cycles = gcCycles() - g.cycles0
		debug.SetGCPercent(g.prevPercent)
		debug.SetMemoryLimit(g.prevLimit)
	}
	return g.cycles
}

// gcCycles is the number of collection cycles the process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// memoryInUse is the memory the Go runtime holds from the operating system
// and has not returned: what its memory limit is compared with.
func memoryInUse() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}
