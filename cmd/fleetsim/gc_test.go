package main

import (
	"runtime/debug"
	"testing"
)

// sink keeps allocations from being optimised away.
var sink []byte

func allocate(total, chunk int) {
	for n := 0; n < total; n += chunk {
		sink = make([]byte, chunk)
	}
}

// TestGCHoldDefersCollectionWithinItsHeadroom: while held, garbage well
// within the headroom triggers no collection; beyond it the memory limit
// still collects (memory stays bounded); stop restores the settings.
func TestGCHoldDefersCollectionWithinItsHeadroom(t *testing.T) {
	before := debug.SetGCPercent(100)
	debug.SetGCPercent(before)

	g := &gcHold{headroom: 256 << 20}
	g.start()
	allocate(64<<20, 64<<10) // 64 MiB of garbage: 16 default cycles' worth for a small heap
	if n := g.stop(); n != 0 {
		t.Errorf("%d collections within the headroom; want none", n)
	}
	if got := debug.SetGCPercent(before); got != before {
		t.Errorf("GC percent %d after stop; want %d restored", got, before)
	}

	g = &gcHold{headroom: 16 << 20}
	g.start()
	allocate(256<<20, 64<<10)
	if n := g.stop(); n == 0 {
		t.Error("no collection after 256 MiB of garbage with 16 MiB of headroom; want the limit to collect")
	}
}
