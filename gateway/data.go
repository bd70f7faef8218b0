package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/lookup"
	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/router/iotsql"
	"github.com/fleetgate/fleetgate/schema"
)

// data is the gateway's lookup tables and schemas: what rules are compiled
// against (lookups:, schemas:).
type data struct {
	lookups *lookup.Set
	client  sarama.Client // reads the Kafka tables; nil when there are none
	http    *http.Client  // fetches registry schemas
}

// openData loads the lookup files (and starts watching them) and returns a
// compiler with the tables and freshly loaded schemas. Kafka tables are
// followed once Kafka is up (followLookups).
func (g *Gateway) openData(ctx context.Context) (*router.Compiler, error) {
	set, err := lookup.Open(g.cfg.Lookups, lookup.Options{
		Log:      g.log.Named("lookup"),
		Observer: g.metrics,
		Watch: func(path string, onChange func()) (io.Closer, error) {
			return config.WatchFile(path, 0, onChange, g.log.Named("lookup"))
		},
	})
	if err != nil {
		return nil, err
	}
	g.data.lookups = set
	g.data.http = &http.Client{Timeout: g.cfg.Schemas.Registry.Timeout}
	return g.ruleCompiler(ctx)
}

// ruleCompiler loads the schemas (schemas.dir, the registry) and returns
// a compiler of rules with them and the lookup tables. Reloads call it too:
// schemas are reloaded with the rules.
func (g *Gateway) ruleCompiler(ctx context.Context) (*router.Compiler, error) {
	opts := router.CompilerOptions{Functions: router.NewFunctions(), Deps: iotsql.Deps{Lookups: g.data.lookups}}
	if g.cfg.Schemas.Enabled() {
		set, err := schema.Load(ctx, g.cfg.Schemas, g.data.http)
		if err != nil {
			return nil, err
		}
		g.log.Info("schemas loaded", zap.Strings("schemas", set.Names()))
		opts.Schemas = router.SchemaFunc[*schema.Schema](set.Get)
	}
	return router.NewCompiler(opts), nil
}

// embeddedLookupTopics are the Kafka tables' topics, created on the
// embedded development broker so that a demo can fill them.
func (g *Gateway) embeddedLookupTopics() []string { return g.data.lookups.KafkaTopics() }

// followLookups starts reading the Kafka tables and waits until each has
// caught up with the end of its topic as it was at start: no message is
// routed against a half-read table.
func (g *Gateway) followLookups(ctx context.Context, kcfg kafka.Config) error {
	if len(g.data.lookups.KafkaTopics()) == 0 {
		return nil
	}
	client, err := kafka.NewConsumerClient(kcfg)
	if err != nil {
		return err
	}
	g.data.client = client
	if err := g.data.lookups.FollowKafka(client); err != nil {
		return err
	}
	start := time.Now()
	if err := g.data.lookups.WaitReady(ctx); err != nil {
		return fmt.Errorf("lookups: %w", err)
	}
	g.log.Info("lookup tables caught up with their topics", zap.Duration("took", time.Since(start)))
	return nil
}

// closeData stops watching files and following topics.
func (g *Gateway) closeData() error {
	err := g.data.lookups.Close()
	if g.data.client != nil {
		err = errors.Join(err, g.data.client.Close())
	}
	return err
}
