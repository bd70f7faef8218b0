package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/fleetgate/fleetgate/admin"
	"github.com/fleetgate/fleetgate/kafka"
)

// startOperations starts what on-call looks at: the Kafka reachability
// probe over topics and the admin listener (metrics, health, readiness). It
// runs once the producer is up, so the readiness checks it serves see a
// complete gateway.
func (g *Gateway) startOperations(topics []string) error {
	var err error
	kcfg := g.cfg.Kafka
	kcfg.Brokers = g.KafkaBrokers()
	if g.prober, err = kafka.NewProber(kcfg, g.producer.Client(), topics, g.log.Named("kafka.probe")); err != nil {
		return err
	}
	g.prober.Start()
	g.metrics.WatchReadiness(g.ready, g.prober.Err)
	if g.cfg.Admin.Listen == "" {
		return nil
	}
	g.admin = admin.New(g.cfg.Admin, g.metrics.Registry(), g.ready, g.log.Named("admin"))
	return g.admin.Start()
}

// ready is what /readyz answers: nil while the inputs listen, Kafka
// answers and records are being stored (kafka.readiness_window); an error before Start finished and from the moment Shutdown
// begins, so that a load balancer sends new terminals elsewhere.
func (g *Gateway) ready() error {
	if err := g.data.lookups.Ready(); err != nil {
		return err // Kafka lookup tables still catching up (data.go)
	}
	if !g.serving.Load() {
		return errors.New("not serving: starting or shutting down")
	}
	if err := g.prober.Err(); err != nil {
		return err
	}
	// Metadata answering is not enough: with min.insync.replicas unmet
	// every write fails while every broker answers.
	return g.producer.WriteErr()
}

// stopOperations stops the probe and, last of all, the admin listener, so
// that metrics and readiness stay visible while the inputs drain.
func (g *Gateway) stopOperations() error {
	if g.prober != nil {
		g.prober.Close()
	}
	if g.admin == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminStopTimeout)
	defer cancel()
	return g.admin.Shutdown(ctx)
}

// adminStopTimeout bounds the wait for scrapes in progress at the very end.
const adminStopTimeout = 2 * time.Second

// AdminAddr returns the bound address of the admin listener, or "" when
// admin.listen is empty.
func (g *Gateway) AdminAddr() string {
	if g.admin == nil {
		return ""
	}
	return g.admin.Addr()
}

// Inflight returns the messages and payload bytes in flight now, all inputs
// together (what limits.* bounds).
func (g *Gateway) Inflight() (msgs, bytes int64) { return g.budget.InUse() }

// RulesReloaded is the hook for the rules reloader (config.ReloaderOptions
// OnReload): it counts a reload attempt in fleetgate_rule_reloads_total by
// result (ok: the new rules were swapped in) and then calls the callback
// set with OnRulesReload, if any. Safe for concurrent use.
func (g *Gateway) RulesReloaded(ok bool) {
	g.metrics.RulesReloaded(ok)
	if g.onRulesReload != nil {
		g.onRulesReload(ok)
	}
}
