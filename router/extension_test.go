package router

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

// fakeTables are in-memory lookup tables by name.
type fakeTables map[string]fakeTable

func (f fakeTables) Table(name string) (iotsql.LookupTable, bool) {
	t, ok := f[name]
	return t, ok
}

type fakeTable map[string]any

func (t fakeTable) Get(key string) (any, bool) {
	v, ok := t[key]
	return v, ok
}

// lookupFunc is a lookup(table, key) as a plug-in would register it: the
// table is resolved once, at compile time, from the Deps.
var lookupFunc = iotsql.Function{
	Name: "lookup", MinArgs: 2, MaxArgs: 2,
	Compile: func(deps iotsql.Deps, args []iotsql.Arg) (iotsql.Evaluator, error) {
		name, ok := args[0].Literal()
		s, isStr := name.(string)
		if !ok || !isStr {
			return nil, &iotsql.ArgError{Index: 0, Err: errors.New("the table must be a string literal")}
		}
		var table iotsql.LookupTable
		if deps.Lookups != nil {
			table, ok = deps.Lookups.Table(s)
		}
		if table == nil || !ok {
			return nil, &iotsql.ArgError{Index: 0, Err: errors.New("unknown lookup table " + s)}
		}
		return func(env *iotsql.Env, args []iotsql.Arg) (any, error) {
			k, err := args[1].Eval(env)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return iotsql.Undefined(), nil
			}
			if v, ok := table.Get(ks); ok {
				return v, nil
			}
			return iotsql.Undefined(), nil
		}, nil
	},
}

func TestCompilerRegisteredFunctionWithDeps(t *testing.T) {
	funcs := iotsql.NewRegistry()
	if err := funcs.Register(lookupFunc); err != nil {
		t.Fatal(err)
	}
	tables := fakeTables{"vehicles": {"STS-1": map[string]any{"plate": "12가3456", "fleet": "north"}}}
	rc := NewCompiler(CompilerOptions{Functions: funcs, Deps: iotsql.Deps{Lookups: tables}})
	rules, err := rc.Compile([]RuleConfig{{
		Name:    "enrich",
		SQL:     "SELECT device_no, lookup('vehicles', device_no) AS vehicle FROM 'report'",
		Actions: []ActionConfig{{Kafka: &KafkaActionConfig{Topic: "enriched", Key: "${lookup('vehicles', device_no).fleet}"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{}
	e := NewEngine(rules, sink, Options{}, zap.NewNop())
	for _, p := range []string{`{"device_no":"STS-1"}`, `{"device_no":"STS-2"}`} {
		if err := process(t, e, "report", p); err != nil {
			t.Fatal(err)
		}
	}
	if len(sink.records) != 2 {
		t.Fatalf("%d records", len(sink.records))
	}
	if got, want := string(sink.records[0].Value), `{"device_no":"STS-1","vehicle":{"fleet":"north","plate":"12가3456"}}`; got != want {
		t.Errorf("hit: %s, want %s", got, want)
	}
	if got := string(sink.records[0].Key); got != "north" {
		t.Errorf("key %q", got)
	}
	if got, want := string(sink.records[1].Value), `{"device_no":"STS-2"}`; got != want {
		t.Errorf("miss (Undefined leaves the item out): %s, want %s", got, want)
	}

	// The default compiler knows no lookup(); a compiler without the table
	// reports it at the argument.
	if _, err := Compile([]RuleConfig{{Name: "x", SQL: "SELECT lookup('vehicles', a) FROM 'r'",
		Actions: []ActionConfig{{Kafka: &KafkaActionConfig{Topic: "t"}}}}}); err == nil || !strings.Contains(err.Error(), "unknown function 'lookup'") {
		t.Errorf("default compiler: %v", err)
	}
	_, err = NewCompiler(CompilerOptions{Functions: funcs}).Compile([]RuleConfig{{Name: "x", SQL: "SELECT lookup('fleet', a) FROM 'r'",
		Actions: []ActionConfig{{Kafka: &KafkaActionConfig{Topic: "t"}}}}})
	if err == nil || !strings.Contains(err.Error(), "sql: line 1, column 15: lookup: unknown lookup table fleet") {
		t.Errorf("unknown table: %v", err)
	}
}

func TestRegistryRegisterRefusals(t *testing.T) {
	r := iotsql.NewRegistry()
	ok := iotsql.Function{Name: "f", MaxArgs: -1, Compile: lookupFunc.Compile}
	for _, c := range []struct {
		f    iotsql.Function
		want string
	}{
		{iotsql.Function{Name: "Upper", Compile: lookupFunc.Compile}, "the name is taken"},
		{iotsql.Function{Name: "select", Compile: lookupFunc.Compile}, "keyword"},
		{iotsql.Function{Name: "g"}, "needs a name and Compile"},
		{iotsql.Function{Name: "g", MinArgs: 2, MaxArgs: 1, Compile: lookupFunc.Compile}, "MaxArgs < MinArgs"},
	} {
		if err := r.Register(c.f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.f.Name, err, c.want)
		}
	}
	if err := r.Register(ok); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ok); err == nil {
		t.Error("registered f twice")
	}
}
