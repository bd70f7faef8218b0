package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/gateway"
)

// hangups catches SIGHUP from now on, so that one arriving while the
// gateway starts does not end the process (SIGHUP's default action); stop
// restores the default.
func hangups() (hup <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// rulesReloader is what SIGHUP needs of the gateway.
type rulesReloader interface {
	ReloadRules(ctx context.Context) error
	// ReloadSecurity reloads the MQTT users and policy files.
	ReloadSecurity() error
}

var _ rulesReloader = (*gateway.Gateway)(nil)

// reloadOnHangup reloads g's rules on every SIGHUP until ctx ends, one
// reload at a time; the reloader logs the outcome. The returned function
// waits until it has stopped (call it before shutting g down).
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, g rulesReloader, log *zap.Logger) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the rules, the MQTT users file and the MQTT policy")
				_ = g.ReloadSecurity() // the broker logs the outcome
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := g.ReloadRules(rctx)
				cancel()
				if errors.Is(err, config.ErrNoRulesFile) {
					log.Warn("SIGHUP ignored", zap.Error(err))
				}
			}
		}
	}()
	return func() { <-done }
}
