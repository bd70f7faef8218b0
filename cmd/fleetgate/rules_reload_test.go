package main

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleetgate/fleetgate/config"
)

type countReloads struct {
	calls chan struct{}
	err   error
}

func (c *countReloads) ReloadRules(context.Context) error {
	c.calls <- struct{}{}
	return c.err
}

func TestSIGHUPReloadsTheRules(t *testing.T) {
	hup := make(chan os.Signal, 1)
	g := &countReloads{calls: make(chan struct{}, 4), err: config.ErrNoRulesFile}
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	wait := reloadOnHangup(ctx, hup, g, zap.New(core))
	for range 2 {
		hup <- syscall.SIGHUP
		select {
		case <-g.calls:
		case <-time.After(5 * time.Second):
			t.Fatal("SIGHUP did not reload the rules")
		}
	}
	cancel()
	wait()
	if n := logs.FilterMessage("SIGHUP ignored").Len(); n != 2 {
		t.Fatalf("%d 'SIGHUP ignored' lines for the built-in rules, want 2: %v", n, logs.All())
	}
}
