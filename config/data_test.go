package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fleetgate.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const dataRule = `
rules:
  - name: logs
    sql: "SELECT *, lookup('vehicles', device_no) AS vehicle FROM 'fleet/+/log'"
    actions:
      - kafka: {topic: message-log, key: "${device_no}", schema: "${type}"}
`

func TestLookupsAndSchemasKeys(t *testing.T) {
	path := writeConfig(t, `
lookups:
  vehicles: {file: vehicles.jsonl, key: device_no}
  registry: {kafka_topic: vehicle-registry}
schemas:
  dir: schemas
  registry: {url: "http://127.0.0.1:8081/apis/ccompat/v7", username: fleet}
`+dataRule)
	cfg, err := Load(path, envOf(map[string]string{"FLEETGATE_SCHEMAS_REGISTRY_PASSWORD": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	if got := cfg.Lookups["vehicles"]; got.File != filepath.Join(dir, "vehicles.jsonl") || got.Key != "device_no" {
		t.Errorf("lookups.vehicles = %+v", got)
	}
	if got := cfg.Lookups["registry"]; got.KafkaTopic != "vehicle-registry" {
		t.Errorf("lookups.registry = %+v", got)
	}
	if cfg.Schemas.Dir != filepath.Join(dir, "schemas") || cfg.Schemas.Registry.Password != "s3cret" ||
		cfg.Schemas.Registry.Timeout.Seconds() != 10 {
		t.Errorf("schemas = %+v", cfg.Schemas)
	}
	// The defaults have neither.
	def, err := Load("", noEnv)
	if err != nil || len(def.Lookups) != 0 || def.Schemas.Enabled() {
		t.Fatalf("defaults: %+v %+v %v", def.Lookups, def.Schemas, err)
	}
}

func TestLookupsAndSchemasErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown table key", "lookups:\n  vehicles: {file: v.jsonl, key: device_no, refresh: 1m}\n",
			"unknown key lookups.vehicles.refresh"},
		{"unknown schemas key", "schemas:\n  dri: schemas\n", "unknown key schemas.dri"},
		{"unknown registry key", "schemas:\n  registry: {url: 'http://r', token: x}\n", "unknown key schemas.registry.token"},
		{"table without key", "lookups:\n  vehicles: {file: v.jsonl}\n", "lookups.vehicles.key is required"},
		{"bad registry url", "schemas:\n  registry: {url: 'r:8081'}\n", "schemas.registry.url"},
		{"lookup of an unknown table", "lookups:\n  fleet: {file: v.jsonl, key: k}\n" + dataRule + "schemas: {dir: s}\n",
			`unknown lookup table "vehicles"`},
		{"schema without schemas", "lookups:\n  vehicles: {file: v.jsonl, key: k}\n" + dataRule,
			"actions[0].kafka.schema: no schemas are configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tc.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want %q", err, tc.want)
			}
		})
	}
}
