package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/lookup"
	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/router/iotsql"
	"github.com/fleetgate/fleetgate/schema"
)

// The rules commands load the lookup files and the schemas as the gateway
// does (Kafka tables stay empty: no broker is needed), so that a schema
// that does not compile or a file that does not load fails rules check, and
// rules test shows every lookup and validation.

// dataCompiler loads cfg's lookup files and schemas and returns a rule
// compiler with them. It says what it loaded on info. Each lookup() a
// message makes is reported to onLookup (nil: not reported).
func dataCompiler(ctx context.Context, cfg *config.Config, info io.Writer, onLookup func(table, key string, found bool)) (*router.Compiler, error) {
	var tables []*lookup.Table
	for _, name := range sortedKeys(cfg.Lookups) {
		tc := cfg.Lookups[name]
		if tc.KafkaTopic != "" {
			fmt.Fprintf(info, "lookup table %s: kafka_topic %s is not read by rules test or check; lookup('%s', ...) finds nothing\n", name, tc.KafkaTopic, name)
			tables = append(tables, lookup.NewTable(name, nil))
			continue
		}
		t, err := lookup.LoadFile(name, tc, nil)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(info, "lookup table %s: %d %s from %s\n", name, t.Len(), plural(t.Len(), "row", "rows"), tc.File)
		tables = append(tables, t)
	}
	opts := router.CompilerOptions{Functions: router.NewFunctions(), Deps: iotsql.Deps{Lookups: tracedTables{lookup.NewSet(tables...), onLookup}}}
	if cfg.Schemas.Enabled() {
		set, err := schema.Load(ctx, cfg.Schemas, &http.Client{Timeout: cfg.Schemas.Registry.Timeout})
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(info, "schemas: %d compiled: %s\n", set.Len(), strings.Join(set.Names(), ", "))
		opts.Schemas = router.SchemaFunc[*schema.Schema](set.Get)
	}
	return router.NewCompiler(opts), nil
}

// compileWithData compiles cfg's rules with its lookup tables and schemas;
// problems come as a *config.Error with file and line.
func compileWithData(ctx context.Context, cfg *config.Config, info io.Writer, onLookup func(table, key string, found bool)) (*router.Rules, error) {
	rc, err := dataCompiler(ctx, cfg, info, onLookup)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.RulesFile != "":
		rules, _, err := config.LoadRulesWith(cfg.RulesFile, true, rc)
		return rules, err
	case cfg.Source != "":
		rules, _, err := config.LoadRulesWith(cfg.Source, false, rc)
		return rules, err
	}
	return rc.Compile(cfg.Rules)
}

// tracedTables reports every lookup to a function.
type tracedTables struct {
	set      *lookup.Set
	onLookup func(table, key string, found bool)
}

func (t tracedTables) Table(name string) (iotsql.LookupTable, bool) {
	tb, ok := t.set.Table(name)
	if !ok || t.onLookup == nil {
		return tb, ok
	}
	return tracedTable{name, tb, t.onLookup}, true
}

type tracedTable struct {
	name     string
	table    iotsql.LookupTable
	onLookup func(table, key string, found bool)
}

func (t tracedTable) Get(key string) (any, bool) {
	v, ok := t.table.Get(key)
	t.onLookup(t.name, key, ok)
	return v, ok
}

func sortedKeys(c lookup.Config) []string {
	var names []string
	for n := range c {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
