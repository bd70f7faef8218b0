package gateway

import (
	"context"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/router"
)

// OnRulesReload sets f to be called after every reload attempt of the
// rules (file change or ReloadRules) with whether the new rules were
// swapped in; the metrics count rule reloads by result. Call it before
// Start. f must be safe for concurrent use.
func (g *Gateway) OnRulesReload(f func(ok bool)) { g.onRulesReload = f }

// ReloadRules reloads the rules from their file now (SIGHUP). On any
// problem the running rules stay in force and the error says why;
// config.ErrNoRulesFile when the rules come from no file.
func (g *Gateway) ReloadRules(ctx context.Context) error {
	if g.reloader == nil {
		return config.ErrNoRulesFile
	}
	return g.reloader.Reload(ctx)
}

// watchRules starts reloading the rules when their file changes: rules_file,
// or the configuration file for inline rules:.
func (g *Gateway) watchRules() error {
	g.reloader = config.NewReloader(g.cfg, g.engine, config.ReloaderOptions{
		Check:    g.checkReloadedRules,
		Compiler: g.ruleCompiler,  // fresh schemas, the same lookup tables
		OnReload: g.RulesReloaded, // counts, then calls onRulesReload
	}, g.log.Named("rules"))
	return g.reloader.Start()
}

// stopWatchingRules stops the rules watcher; a reload in progress finishes.
func (g *Gateway) stopWatchingRules() error {
	if g.reloader == nil {
		return nil
	}
	return g.reloader.Close()
}

// checkReloadedRules vets reloaded rules (ensureRuleTopics) and, once they
// pass, starts their metrics series at zero before they take traffic.
func (g *Gateway) checkReloadedRules(ctx context.Context, rules *router.Rules) error {
	if err := g.ensureRuleTopics(ctx, rules); err != nil {
		return err
	}
	g.metrics.KnownRules(rules.Names())
	return nil
}

// ensureRuleTopics vets reloaded rules: every literal topic they name that
// the running gateway does not know yet must exist in Kafka. With
// kafka.topics.create (always for the embedded broker) the missing ones are
// created as at start; otherwise the reload is rejected, naming them.
func (g *Gateway) ensureRuleTopics(ctx context.Context, rules *router.Rules) error {
	kcfg := g.cfg.Kafka
	known := slices.Concat(kcfg.Topics.Names, g.engine.Rules().LiteralTopics())
	var fresh []string
	for _, t := range rules.LiteralTopics() {
		if !slices.Contains(known, t) {
			fresh = append(fresh, t)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	spec := kafka.TopicSpec{Partitions: kcfg.Topics.Partitions, ReplicationFactor: kcfg.Topics.ReplicationFactor, Config: kcfg.Topics.Config}
	create := kcfg.Topics.Create
	if g.embedded != nil {
		create, spec.ReplicationFactor = true, 1
	}
	if err := kafka.EnsureTopics(ctx, g.producer.Client(), fresh, create, spec); err != nil {
		return fmt.Errorf("the new rules name kafka topics the gateway cannot use: %w", err)
	}
	g.metrics.KnownTopics(fresh)
	g.log.Info("kafka topics of the new rules are ready", zap.Strings("topics", fresh), zap.Bool("create", create))
	// The producer must see the new topics before the new rules route to
	// them, or their first records would be refused as unknown.
	if err := g.producer.RefreshTopics(); err != nil {
		return fmt.Errorf("the new rules' topics %v were created, but: %w", fresh, err)
	}
	return nil
}
