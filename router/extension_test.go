package router

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

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

func TestRemoteIP(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:1883": "127.0.0.1", "[::1]:8443": "::1", "10.0.0.1": "10.0.0.1", "": ""} {
		if got := RemoteIP(in); got != want {
			t.Errorf("RemoteIP(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestActionKinds: every field of ActionConfig is a pointer to an action
// kind's configuration (what kindOf relies on), named by its YAML key.
func TestActionKinds(t *testing.T) {
	typ := reflect.TypeFor[ActionConfig]()
	spec := reflect.TypeFor[actionSpec]()
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Type.Kind() != reflect.Pointer || !f.Type.Implements(spec) || f.Tag.Get("yaml") == "" {
			t.Errorf("ActionConfig.%s (%s): want a *Config implementing actionSpec with a yaml key", f.Name, f.Type)
		}
	}
	both := ActionConfig{Kafka: &KafkaActionConfig{Topic: "t"}, Republish: &RepublishActionConfig{Topic: "t"}}
	if _, err := compileAction(both, actionEnv{sql: iotsql.NewCompiler(nil, iotsql.Deps{})}); err == nil || err.Error() != "an action is either kafka or republish, not both" {
		t.Errorf("both kinds: %v", err)
	}
}

// TestCompilerHandsTheClock: a registered function takes the clock of the
// compiler's Deps when it is compiled; without one it gets time.Now.
func TestCompilerHandsTheClock(t *testing.T) {
	fixed := time.UnixMilli(1700000000000)
	wall := iotsql.Function{Name: "wall_ms", Compile: func(deps iotsql.Deps, _ []iotsql.Arg) (iotsql.Evaluator, error) {
		now := deps.Clock()
		return func(*iotsql.Env, []iotsql.Arg) (any, error) { return now().UnixMilli(), nil }, nil
	}}
	funcs := iotsql.NewRegistry()
	if err := funcs.Register(wall); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		now  func() time.Time
		want func(int64) bool
	}{
		{func() time.Time { return fixed }, func(ms int64) bool { return ms == fixed.UnixMilli() }},
		{nil, func(ms int64) bool { return time.Since(time.UnixMilli(ms)) < time.Minute }},
	} {
		q, err := iotsql.NewCompiler(funcs, iotsql.Deps{Now: c.now}).Query("SELECT VALUE wall_ms() FROM 't'", "")
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := q.Eval(iotsql.NewEnv(&Message{Topic: "t", Payload: []byte(`{}`)}))
		ms, perr := strconv.ParseInt(string(out), 10, 64)
		if err != nil || perr != nil || !c.want(ms) {
			t.Errorf("wall_ms() = %s %v", out, err)
		}
	}
}
