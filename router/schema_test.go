package router

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/lookup"
	"github.com/fleetgate/fleetgate/router/iotsql"
	"github.com/fleetgate/fleetgate/schema"
	"github.com/fleetgate/fleetgate/schema/schematest"
)

const logSchema = `{"type":"object","required":["device_no","level"],
  "properties":{"level":{"enum":["info","warn"]},"vehicle":{"type":"object","required":["vin"]}}}`

func schemasOf(t *testing.T, files map[string]string, registry string) *schema.Set {
	t.Helper()
	cfg := schema.DefaultConfig()
	if files != nil {
		dir := t.TempDir()
		for n, c := range files {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfg.Dir = dir
	}
	cfg.Registry.URL = registry
	set, err := schema.Load(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func vehicles(t *testing.T) *lookup.Set {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vehicles.jsonl")
	if err := os.WriteFile(path, []byte(`{"device_no":"861","vin":"WDB1","fleet":"north"}`+"\n"+`{"device_no":"42","vin":"WDB42"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tb, err := lookup.LoadFile("vehicles", lookup.TableConfig{File: path, Key: "device_no"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return lookup.NewSet(tb)
}

func header(rec *Record, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return "<none>"
}

const enrichRule = `SELECT *, lookup('vehicles', device_no) AS vehicle FROM 'fleet/+/log'`

func TestSchemaValidatedEnrichedRecords(t *testing.T) {
	schemas := schemasOf(t, map[string]string{"log.json": logSchema}, "")
	rc := NewCompiler(CompilerOptions{Functions: NewFunctions(), Deps: iotsql.Deps{Lookups: vehicles(t)},
		Schemas: SchemaFunc[*schema.Schema](schemas.Get)})
	rules, err := rc.Compile([]RuleConfig{{
		Name:        "logs",
		SQL:         enrichRule,
		Actions:     []ActionConfig{{Kafka: &KafkaActionConfig{Topic: "message-log", Key: "${device_no}", Schema: "${type}"}}},
		ErrorAction: &ActionConfig{Kafka: &KafkaActionConfig{Topic: "message-dlq"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{}
	e := NewEngine(rules, sink, Options{}, zap.NewNop())
	for _, p := range []string{
		`{"type":"log","device_no":"861","level":"info"}`, // valid, enriched
		`{"type":"log","device_no":"42","level":"warn"}`,
		`{"type":"log","device_no":"999","level":"loud"}`, // no vehicle; invalid level
		`{"type":"gps","device_no":"861","level":"info"}`, // no schema "gps"
		`{"type":"log","device_no":"999","level":"info"}`, // valid without a vehicle
	} {
		if err := process(t, e, "fleet/861/log", p); err != nil {
			t.Fatal(err)
		}
	}
	if len(sink.records) != 5 {
		t.Fatalf("%d records", len(sink.records))
	}
	want := []struct{ topic, value, schema, reason, pointer, keyword string }{
		{"message-log", `{"type":"log","device_no":"861","level":"info","vehicle":{"device_no":"861","fleet":"north","vin":"WDB1"}}`, "log", "", "", ""},
		{"message-log", `{"type":"log","device_no":"42","level":"warn","vehicle":{"device_no":"42","vin":"WDB42"}}`, "log", "", "", ""},
		{"message-dlq", `{"type":"log","device_no":"999","level":"loud"}`, "", "schema_invalid", "/level", "enum"},
		{"message-dlq", `{"type":"gps","device_no":"861","level":"info"}`, "", "schema_unknown", "<none>", "<none>"},
		{"message-log", `{"type":"log","device_no":"999","level":"info"}`, "log", "", "", ""},
	}
	for i, w := range want {
		r := sink.records[i]
		if r.Topic != w.topic || string(r.Value) != w.value || r.Schema != w.schema {
			t.Errorf("record %d: %s %s (schema %q), want %s %s (schema %q)", i, r.Topic, r.Value, r.Schema, w.topic, w.value, w.schema)
		}
		if w.reason == "" {
			continue
		}
		if h := header(r, "error"); !strings.HasPrefix(h, w.reason+": ") {
			t.Errorf("record %d: error header %q, want reason %s", i, h, w.reason)
		}
		if header(r, "schema_pointer") != w.pointer || header(r, "schema_keyword") != w.keyword {
			t.Errorf("record %d: schema headers %q %q, want %q %q", i, header(r, "schema_pointer"), header(r, "schema_keyword"), w.pointer, w.keyword)
		}
	}
}

func TestSchemaConfluentFormat(t *testing.T) {
	reg := schematest.New(t)
	id := reg.Register("message-log-value", "JSON", logSchema)
	reg.Register("other", "JSON", `{"type":"object"}`)
	schemas := schemasOf(t, map[string]string{"local.json": `{}`}, reg.URL)
	rc := NewCompiler(CompilerOptions{Schemas: SchemaFunc[*schema.Schema](schemas.Get)})
	rules, err := rc.Compile([]RuleConfig{{
		Name:        "logs",
		SQL:         "SELECT * FROM 'log'",
		Actions:     []ActionConfig{{Kafka: &KafkaActionConfig{Topic: "message-${type}", Format: "confluent"}}},
		ErrorAction: &ActionConfig{Kafka: &KafkaActionConfig{Topic: "message-dlq"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{}
	e := NewEngine(rules, sink, Options{}, zap.NewNop())
	for _, p := range []string{`{"type":"log","device_no":"1","level":"info"}`, `{"type":"log"}`, `{"type":"gps"}`} {
		if err := process(t, e, "log", p); err != nil {
			t.Fatal(err)
		}
	}
	r := sink.records[0]
	if r.Topic != "message-log" || r.Value[0] != 0 || binary.BigEndian.Uint32(r.Value[1:5]) != uint32(id) ||
		string(r.Value[5:]) != `{"type":"log","device_no":"1","level":"info"}` || r.Schema != "message-log-value" {
		t.Errorf("framed record: %s %q (schema %s)", r.Topic, r.Value, r.Schema)
	}
	if got, payload, err := schema.Unframe(r.Value); err != nil || got != id || payload[0] != '{' {
		t.Errorf("schema.Unframe: %d %v", got, err)
	}
	if h := header(sink.records[1], "error"); !strings.HasPrefix(h, "schema_invalid: ") || header(sink.records[1], "schema_keyword") != "required" {
		t.Errorf("invalid: %q", h)
	}
	if h := header(sink.records[2], "error"); !strings.HasPrefix(h, `schema_unknown: schema "message-gps-value" is not loaded`) {
		t.Errorf("unknown subject: %q", h)
	}

	// A literal schema without a registry id cannot be framed: a compile error.
	_, err = rc.Compile([]RuleConfig{{Name: "x", SQL: "SELECT * FROM 'log'",
		Actions: []ActionConfig{{Kafka: &KafkaActionConfig{Topic: "t", Schema: "local", Format: "confluent"}}}}})
	if err == nil || !strings.Contains(err.Error(), `actions[0].kafka.schema: schema "local" has no registry id`) {
		t.Errorf("local schema with confluent: %v", err)
	}
}

func TestSchemaCompileErrors(t *testing.T) {
	schemas := SchemaFunc[*schema.Schema](schemasOf(t, map[string]string{"log.json": logSchema}, "").Get)
	for _, tc := range []struct {
		name    string
		schemas SchemaSet
		cfg     KafkaActionConfig
		errAct  *KafkaActionConfig
		want    string
	}{
		{"none configured", nil, KafkaActionConfig{Topic: "t", Schema: "log"}, nil,
			"actions[0].kafka.schema: no schemas are configured"},
		{"confluent with none configured", nil, KafkaActionConfig{Topic: "t", Format: "confluent"}, nil,
			"actions[0].kafka.format: no schemas are configured"},
		{"unknown literal", schemas, KafkaActionConfig{Topic: "t", Schema: "gps"}, nil,
			`actions[0].kafka.schema: schema "gps" is not loaded`},
		{"bad template", schemas, KafkaActionConfig{Topic: "t", Schema: "${"}, nil, "actions[0].kafka.schema: "},
		{"bad format", schemas, KafkaActionConfig{Topic: "t", Format: "avro"}, nil, `actions[0].kafka.format: "avro" is not json or confluent`},
		{"error action", schemas, KafkaActionConfig{Topic: "t"}, &KafkaActionConfig{Topic: "dlq", Schema: "log"},
			"error_action.kafka.schema: the error action stores the original payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := NewCompiler(CompilerOptions{Schemas: tc.schemas})
			rc2 := RuleConfig{Name: "r", SQL: "SELECT * FROM 'a'", Actions: []ActionConfig{{Kafka: &tc.cfg}}}
			if tc.errAct != nil {
				rc2.ErrorAction = &ActionConfig{Kafka: tc.errAct}
			}
			_, err := rc.Compile([]RuleConfig{rc2})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLookupCompileErrors(t *testing.T) {
	for _, tc := range []struct{ sql, want string }{
		{"SELECT lookup('fleet', a) FROM 'r'", `unknown lookup table "fleet"`},
		{"SELECT lookup(t, a) FROM 'r'", "the table must be a string literal"},
		{"SELECT lookup('vehicles') FROM 'r'", "lookup"},
	} {
		rc := NewCompiler(CompilerOptions{Functions: NewFunctions(), Deps: iotsql.Deps{Lookups: vehicles(t)}})
		_, err := rc.Compile([]RuleConfig{{Name: "r", SQL: tc.sql, Actions: []ActionConfig{{Kafka: &KafkaActionConfig{Topic: "t"}}}}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.sql, err, tc.want)
		}
	}
	// Without lookups: configured, lookup() knows no table.
	_, err := NewCompiler(CompilerOptions{Functions: NewFunctions()}).Compile([]RuleConfig{{Name: "r",
		SQL: "SELECT lookup('vehicles', a) FROM 'r'", Actions: []ActionConfig{{Kafka: &KafkaActionConfig{Topic: "t"}}}}})
	if err == nil || !strings.Contains(err.Error(), `unknown lookup table "vehicles"`) {
		t.Errorf("no lookups: %v", err)
	}
}

func TestLookupKey(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
		ok   bool
	}{
		{"a", "a", true}, {int64(42), "42", true}, {42.0, "42", true}, {4.5, "4.5", true},
		{true, "", false}, {nil, "", false}, {map[string]any{}, "", false}, {iotsql.Undefined(), "", false},
	} {
		if got, ok := lookupKey(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("lookupKey(%v) = %q %v", tc.in, got, ok)
		}
	}
}
