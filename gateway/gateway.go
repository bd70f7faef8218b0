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
	"time"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/broker"
	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/kafka"
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
}

// New prepares a gateway for cfg, which must be valid (config.Load
// validates). Nothing is started.
func New(cfg *config.Config, log *zap.Logger) *Gateway {
	return &Gateway{cfg: cfg, log: log}
}

// Start starts every part in order: Kafka side first, then the inputs.
// On error, whatever was started is stopped again.
func (g *Gateway) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			g.stop(context.Background())
		}
	}()
	rules, err := router.Compile(g.cfg.Rules)
	if err != nil {
		return err
	}
	kcfg := g.cfg.Kafka
	topics := slices.Sorted(slices.Values(append(append([]string(nil), kcfg.Topics.Names...), rules.LiteralTopics()...)))
	topics = slices.Compact(topics)

	if kcfg.Embedded() {
		g.embedded, err = kafka.StartEmbedded(kafka.EmbeddedConfig{
			Listen:     kcfg.EmbeddedListen,
			Topics:     topics,
			Partitions: kcfg.Topics.Partitions,
		}, g.log.Named("kafka-embedded"))
		if err != nil {
			return fmt.Errorf("kafka.embedded_listen: %w", err)
		}
		kcfg.Brokers = []string{g.embedded.Addr()}
	}
	if g.producer, err = kafka.NewProducer(kcfg, g.log.Named("kafka")); err != nil {
		return err
	}
	spec := kafka.TopicSpec{Partitions: kcfg.Topics.Partitions, ReplicationFactor: kcfg.Topics.ReplicationFactor, Config: kcfg.Topics.Config}
	if err := kafka.EnsureTopics(ctx, g.producer.Client(), topics, kcfg.Topics.Create, spec); err != nil {
		return err
	}

	// The engine republishes through the broker and the broker feeds the
	// engine; the broker exists before any message can flow.
	var b *broker.Broker
	pub := publisherFunc(func(topic string, payload []byte, qos byte) error { return b.Publish(topic, payload, qos) })
	g.engine = router.NewEngine(rules, g.producer, router.Options{Publisher: pub, MaxRecordBytes: kcfg.MaxMessageBytes}, g.log.Named("router"))
	if b, err = broker.New(g.cfg.MQTT, g.engine, g.log.Named("mqtt")); err != nil {
		return err
	}
	g.broker = b
	if err := b.Start(); err != nil {
		return err
	}
	ing := &ingester{engine: g.engine, timeout: kcfg.DeliveryTimeout}
	if g.https, err = telematics.New(g.cfg.Telematics, ing, g.log.Named("telematics")); err != nil {
		return err
	}
	if err := g.https.Start(); err != nil {
		return err
	}
	g.log.Info("fleetgate started", zap.Strings("kafka_brokers", kcfg.Brokers), zap.Int("rules", rules.Len()),
		zap.Bool("embedded_kafka", g.embedded != nil))
	return nil
}

// Shutdown stops the inputs first (letting in-flight messages finish until
// ctx ends), then flushes and closes the producer, then the embedded
// broker. Nothing is acknowledged that was not stored.
func (g *Gateway) Shutdown(ctx context.Context) error {
	return g.stop(ctx)
}

func (g *Gateway) stop(ctx context.Context) error {
	var errs []error
	if g.https != nil {
		errs = append(errs, g.https.Shutdown(ctx))
	}
	if g.broker != nil {
		errs = append(errs, g.broker.Shutdown(ctx))
	}
	if g.producer != nil {
		errs = append(errs, g.producer.Close())
	}
	if g.embedded != nil {
		g.embedded.Close()
	}
	return errors.Join(errs...)
}

// MQTTAddr returns the bound address of the plain MQTT listener.
func (g *Gateway) MQTTAddr() string { return g.broker.Addr("tcp") }

// TelematicsAddr returns the bound address of the legacy HTTPS endpoint.
func (g *Gateway) TelematicsAddr() string { return g.https.Addr().String() }

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
