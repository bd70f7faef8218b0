// Package gateway wires fleetgate together: the Kafka producer (and the
// embedded development broker), the rule engine, the MQTT broker and the
// legacy telematics endpoint. cmd/fleetgate and the integration tests both
// build the whole process through New.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/admin"
	"github.com/fleetgate/fleetgate/broker"
	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/limits"
	"github.com/fleetgate/fleetgate/metrics"
	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/telematics"
)

// Gateway is one running fleetgate. Start it once, Shutdown it once.
type Gateway struct {
	cfg *config.Config
	log *zap.Logger

	embedded *kafka.Embedded
	producer *kafka.Producer
	engine   *router.Engine
	broker   *broker.Broker
	https    *telematics.Server

	metrics *metrics.Metrics
	budget  *limits.Budget // limits.*, shared by both inputs
	queued  *limits.Budget // limits.max_queued_*: the broker's session queues
	prober  *kafka.Prober
	admin   *admin.Server
	serving atomic.Bool // inputs listening and not shutting down: /readyz

	reloader      *config.Reloader // rules file watcher (rules.go)
	onRulesReload func(ok bool)

	securityWatchers []*config.FileWatcher // users and policy files (security.go)
	data             data                  // lookup tables and schemas (data.go)
}

// New prepares a gateway for cfg, which must be valid (config.Load
// validates). Nothing is started.
func New(cfg *config.Config, log *zap.Logger) *Gateway {
	g := &Gateway{cfg: cfg, log: log, metrics: metrics.New(), budget: limits.New(cfg.Limits), queued: limits.NewQueued(cfg.Limits)}
	g.metrics.WatchInflight(g.budget)
	return g
}

// Start starts every part in order: Kafka side first, then the inputs.
// On error, whatever was started is stopped again.
func (g *Gateway) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			g.stop(context.Background())
		}
	}()
	compiler, err := g.openData(ctx)
	if err != nil {
		return err
	}
	rules, err := compiler.Compile(g.cfg.Rules)
	if err != nil {
		return err
	}
	g.metrics.KnownRules(rules.Names())
	kcfg := g.cfg.Kafka
	topics := slices.Sorted(slices.Values(append(append([]string(nil), kcfg.Topics.Names...), rules.LiteralTopics()...)))
	topics = slices.Compact(topics)
	g.metrics.KnownTopics(topics)

	if kcfg.Embedded() {
		g.embedded, err = kafka.StartEmbedded(kafka.EmbeddedConfig{
			Listen:         kcfg.EmbeddedListen,
			Topics:         append(slices.Clone(topics), g.embeddedLookupTopics()...),
			Partitions:     kcfg.Topics.Partitions,
			RetentionBytes: kcfg.EmbeddedRetentionBytes,
		}, g.log)
		if err != nil {
			return fmt.Errorf("kafka.embedded_listen: %w", err)
		}
		kcfg.Brokers = []string{g.embedded.Addr()}
	}
	if g.producer, err = kafka.NewProducer(kcfg, g.log.Named("kafka"), kafka.WithObserver(g.metrics)); err != nil {
		return err
	}
	spec := kafka.TopicSpec{Partitions: kcfg.Topics.Partitions, ReplicationFactor: kcfg.Topics.ReplicationFactor, Config: kcfg.Topics.Config}
	if err := kafka.EnsureTopics(ctx, g.producer.Client(), topics, kcfg.Topics.Create, spec); err != nil {
		return err
	}
	// The producer's topic list was read before EnsureTopics created any.
	if err := g.producer.RefreshTopics(); err != nil {
		return err
	}
	if err := g.startOperations(topics); err != nil {
		return err
	}
	// /healthz answers (and /readyz says not ready) while the Kafka lookup
	// tables catch up; the inputs open after.
	if err := g.followLookups(ctx, kcfg); err != nil {
		return err
	}

	// The engine republishes through the broker and the broker feeds the
	// engine; the broker exists before any message can flow.
	var b *broker.Broker
	pub := publisherFunc(func(topic string, payload []byte, qos byte) error { return b.Publish(topic, payload, qos) })
	ropts := router.Options{Publisher: pub, MaxRecordBytes: kcfg.MaxMessageBytes, Observer: g.metrics, Config: g.cfg.Router}
	if g.cfg.MQTT.Auth.EnforceDeviceIdentity {
		ropts.EnforceIdentity = []string{"mqtt"}
	}
	g.engine = router.NewEngine(rules, g.producer, ropts, g.log.Named("router"))
	if b, err = broker.New(g.cfg.MQTT, g.engine, g.log.Named("mqtt"), broker.WithObserver(g.metrics), broker.WithLimiter(g.budget),
		broker.WithQueueLimiter(g.queued)); err != nil {
		return err
	}
	g.broker = b
	g.metrics.WatchBroker(b, g.queued, broker.DropReasons, broker.RefusalReasons)
	if err := b.Start(); err != nil {
		return err
	}
	if err := g.watchSecurity(); err != nil {
		return err
	}
	ing := &ingester{engine: g.engine, timeout: kcfg.DeliveryTimeout, budget: g.budget, obs: g.metrics}
	if g.https, err = telematics.New(g.cfg.Telematics, ing, g.log, telematics.WithObserver(g.metrics), telematics.WithLimiter(g.budget)); err != nil {
		return err
	}
	if err := g.https.Start(); err != nil {
		return err
	}
	if err := g.watchRules(); err != nil {
		return err
	}
	g.serving.Store(true)
	g.log.Info("fleetgate started", zap.Strings("kafka_brokers", kcfg.Brokers), zap.Int("rules", rules.Len()),
		zap.Bool("embedded_kafka", g.embedded != nil))
	return nil
}

// Shutdown turns readiness off, then stops both inputs at once: their
// listeners close, new messages are refused without an answer, and messages
// in flight finish until ctx ends. It then flushes and closes the producer
// (cutting it short when ctx has ended), the embedded broker, and last the
// admin listener. Nothing is acknowledged that was not stored.
func (g *Gateway) Shutdown(ctx context.Context) error {
	return g.stop(ctx)
}

func (g *Gateway) stop(ctx context.Context) error {
	g.serving.Store(false)
	rulesErr := errors.Join(g.stopWatchingRules(), g.stopWatchingSecurity())
	var (
		wg          sync.WaitGroup
		httpErr     error
		brokerErr   error
		producerErr error
	)
	if g.https != nil {
		wg.Go(func() { httpErr = g.https.Shutdown(ctx) })
	}
	if g.broker != nil {
		wg.Go(func() { brokerErr = g.broker.Shutdown(ctx) })
	}
	wg.Wait()
	dataErr := g.closeData()
	if g.producer != nil {
		producerErr = g.producer.Shutdown(ctx)
	}
	if g.embedded != nil {
		g.embedded.Close()
	}
	return errors.Join(rulesErr, httpErr, brokerErr, dataErr, producerErr, g.stopOperations())
}

// MQTTAddr returns the bound address of the plain MQTT listener.
func (g *Gateway) MQTTAddr() string { return g.broker.Addr("tcp") }

// TelematicsAddr returns the bound address of the legacy HTTPS endpoint.
func (g *Gateway) TelematicsAddr() string { return g.https.Addr().String() }

// TelematicsCertFingerprint returns the SHA-256 fingerprint of the legacy
// endpoint's certificate (colon-separated hex, as logged at start).
func (g *Gateway) TelematicsCertFingerprint() string { return g.https.CertFingerprint() }

// KafkaBrokers returns the bootstrap addresses in use (the embedded
// broker's when it runs).
func (g *Gateway) KafkaBrokers() []string {
	if g.embedded != nil {
		return []string{g.embedded.Addr()}
	}
	return g.cfg.Kafka.Brokers
}

// Embedded returns the embedded development broker, or nil.
func (g *Gateway) Embedded() *kafka.Embedded { return g.embedded }

// Engine returns the rule engine.
func (g *Gateway) Engine() *router.Engine { return g.engine }

type publisherFunc func(topic string, payload []byte, qos byte) error

func (f publisherFunc) Publish(topic string, payload []byte, qos byte) error {
	return f(topic, payload, qos)
}

// DrainTimeout is how long Shutdown waits for in-flight messages by default.
func DrainTimeout(cfg *config.Config) time.Duration { return cfg.Kafka.DeliveryTimeout + 5*time.Second }
