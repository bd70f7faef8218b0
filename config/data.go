package config

import (
	"github.com/fleetgate/fleetgate/lookup"
	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/router/iotsql"
)

// Rules are checked at load without reading lookup tables or fetching
// schemas (no I/O in Load): lookup() must name a table of lookups:, and
// schema: is accepted whenever schemas: is configured. The gateway and
// rules check compile them again with the real tables and schemas.

// checkCompiler is the compiler Validate checks the rules with.
func (c *Config) checkCompiler() *router.Compiler {
	opts := router.CompilerOptions{Functions: router.NewFunctions(), Deps: iotsql.Deps{Lookups: tableNames(c.Lookups)}}
	if c.Schemas.Enabled() {
		opts.Schemas = anySchema{}
	}
	return router.NewCompiler(opts)
}

// tableNames knows the names of the configured tables, with no rows.
type tableNames lookup.Config

func (t tableNames) Table(name string) (iotsql.LookupTable, bool) {
	if _, ok := t[name]; !ok {
		return nil, false
	}
	return emptyTable{}, true
}

type emptyTable struct{}

func (emptyTable) Get(string) (any, bool) { return nil, false }

// anySchema stands for every schema when only names are checked.
type anySchema struct{}

func (anySchema) Schema(string) (router.Schema, bool) { return anySchema{}, true }
func (anySchema) Validate([]byte) error               { return nil }

// RegistryID is not 0, so that format: confluent passes the check.
func (anySchema) RegistryID() int { return 1 }
