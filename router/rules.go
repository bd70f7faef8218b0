package router

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

// RuleConfig is one rule as operators write it in YAML (SPEC section 3).
type RuleConfig struct {
	Name string `mapstructure:"name" yaml:"name"`
	// Foreach, when set ("samples AS s"), runs the rule once per element of
	// an array of the message, in order; the element is visible under its
	// alias in the SQL and in the templates, index() is its position.
	Foreach     string         `mapstructure:"foreach" yaml:"foreach"`
	SQL         string         `mapstructure:"sql" yaml:"sql"`
	Actions     []ActionConfig `mapstructure:"actions" yaml:"actions"`
	ErrorAction *ActionConfig  `mapstructure:"error_action" yaml:"error_action"`
}

// DefaultRules returns the device-reports rule of SPEC section 3.
func DefaultRules() []RuleConfig {
	return []RuleConfig{{
		Name: "device-reports",
		SQL:  `SELECT *, parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) AS timestamp FROM 'report'`,
		Actions: []ActionConfig{{Kafka: &KafkaActionConfig{
			Topic: "message-${type}",
			Key:   "${device_no}",
		}}},
		ErrorAction: &ActionConfig{Kafka: &KafkaActionConfig{
			Topic: "message-dlq",
			Key:   "${clientid()}",
		}},
	}}
}

// Rules is a compiled, immutable rule table; safe for concurrent use.
type Rules struct {
	rules []*rule
}

type rule struct {
	name        string
	each        *iotsql.Foreach // nil: once per message
	query       *iotsql.Query
	actions     []Action
	actionNames []string    // "actions[0]"...: for traces and error headers
	errorAction errorWriter // nil: none
}

// RuleError is a problem with one rule's configuration. Field is the path
// inside the rule, e.g. "sql" or "actions[0].kafka.topic".
type RuleError struct {
	Index int
	Name  string
	Field string
	Err   error
}

// Error implements error: `rules[0] (device-reports) sql: line 1, column 8: ...`.
func (e *RuleError) Error() string {
	name := ""
	if e.Name != "" {
		name = " (" + e.Name + ")"
	}
	return fmt.Sprintf("rules[%d]%s %s: %v", e.Index, name, e.Field, e.Err)
}

// Unwrap returns the underlying error (a *SyntaxError for SQL and templates).
func (e *RuleError) Unwrap() error { return e.Err }

// Compiler compiles rule tables with one SQL function registry and the
// dependencies its functions take (lookup tables, a clock). It is safe for
// concurrent use.
type Compiler struct {
	sql     *iotsql.Compiler
	schemas SchemaSet
}

// CompilerOptions configure a Compiler.
type CompilerOptions struct {
	// Functions are the SQL functions rules may call; nil: the built-in
	// ones (iotsql.NewRegistry). It must not change once given.
	Functions *iotsql.Registry
	// Deps are handed to the functions that need them at compile time.
	Deps iotsql.Deps
	// Schemas are the schemas kafka actions may name (schema:); nil: none,
	// and an action that names one is an error.
	Schemas SchemaSet
}

// NewCompiler returns a rule compiler.
func NewCompiler(opts CompilerOptions) *Compiler {
	return &Compiler{sql: iotsql.NewCompiler(opts.Functions, opts.Deps), schemas: opts.Schemas}
}

// Compile validates and compiles rule configurations into a table with the
// built-in SQL functions (see Compiler.Compile).
func Compile(cfgs []RuleConfig) (*Rules, error) {
	return NewCompiler(CompilerOptions{}).Compile(cfgs)
}

// Compile validates and compiles rule configurations into a table. It
// reports every problem it finds, each as a *RuleError.
func (rc *Compiler) Compile(cfgs []RuleConfig) (*Rules, error) {
	var errs []error
	names := map[string]int{}
	out := &Rules{}
	for i, c := range cfgs {
		fail := func(field string, err error) {
			errs = append(errs, &RuleError{Index: i, Name: c.Name, Field: field, Err: err})
		}
		r := &rule{name: c.Name}
		if c.Name == "" {
			fail("name", errors.New("every rule needs a name"))
		} else if j, dup := names[c.Name]; dup {
			fail("name", fmt.Errorf("the name is already used by rules[%d]", j))
		}
		names[c.Name] = i
		var alias string
		if strings.TrimSpace(c.Foreach) != "" {
			f, err := rc.sql.Foreach(c.Foreach)
			if err != nil {
				fail("foreach", err)
			} else {
				r.each, alias = f, f.Alias()
			}
		}
		env := actionEnv{sql: rc.sql, alias: alias, schemas: rc.schemas}
		q, err := rc.sql.Query(c.SQL, alias)
		if err != nil {
			fail("sql", err)
		}
		r.query = q
		if len(c.Actions) == 0 {
			fail("actions", errors.New("a rule needs at least one action"))
		}
		for j, ac := range c.Actions {
			a, err := compileAction(ac, env)
			if err != nil {
				var fe *fieldError
				if errors.As(err, &fe) {
					fail(fmt.Sprintf("actions[%d].%s", j, fe.field), fe.err)
				} else {
					fail(fmt.Sprintf("actions[%d]", j), err)
				}
				continue
			}
			r.actions = append(r.actions, a)
			r.actionNames = append(r.actionNames, "actions["+strconv.Itoa(j)+"]")
		}
		if c.ErrorAction != nil {
			a, err := compileAction(*c.ErrorAction, env)
			ew, ok := a.(errorWriter)
			switch {
			case err != nil:
				var fe *fieldError
				if errors.As(err, &fe) {
					fail("error_action."+fe.field, fe.err)
				} else {
					fail("error_action", err)
				}
			case !ok:
				fail("error_action", errors.New("the error action must be a kafka action"))
			case validates(ew):
				fail("error_action.kafka.schema", errors.New("the error action stores the original payload as it came; it takes no schema or format"))
			default:
				r.errorAction = ew
			}
		}
		out.rules = append(out.rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Len returns the number of rules.
func (r *Rules) Len() int { return len(r.rules) }

// Names returns the rules' names in order.
func (r *Rules) Names() []string {
	out := make([]string, len(r.rules))
	for i, ru := range r.rules {
		out[i] = ru.name
	}
	return out
}

// literalTopic is an Action that writes to Kafka: its topic when that is
// no template.
type literalTopic interface {
	literalTopic() (string, bool)
}

// LiteralTopics returns every Kafka topic the rules name without a template,
// sorted, for the start-up topic check.
func (r *Rules) LiteralTopics() []string {
	seen := map[string]bool{}
	add := func(a Action) {
		if lt, ok := a.(literalTopic); ok {
			if t, ok := lt.literalTopic(); ok {
				seen[t] = true
			}
		}
	}
	for _, ru := range r.rules {
		for _, a := range ru.actions {
			add(a)
		}
		if ru.errorAction != nil {
			add(ru.errorAction)
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
