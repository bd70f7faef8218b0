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
	calls    chan struct{}
	err      error
	security int
}

func (c *countReloads) ReloadSecurity() error { c.security++; return nil }

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
	if g.security != 2 {
		t.Fatalf("SIGHUP reloaded the users and policy files %d times, want 2", g.security)
	}
	if n := logs.FilterMessage("SIGHUP ignored").Len(); n != 2 {
		t.Fatalf("%d 'SIGHUP ignored' lines for the built-in rules, want 2: %v", n, logs.All())
	}
}
