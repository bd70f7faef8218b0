package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRouterSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("router:\n  identity:\n    field: vin\n    max_length: 17\n    pattern: \"[A-HJ-NPR-Z0-9]+\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, envOf(map[string]string{"FLEETGATE_ROUTER_MAX_FOREACH_ELEMENTS": "50"}))
	if err != nil {
		t.Fatal(err)
	}
	if id := cfg.Router.Identity; id.Field != "vin" || id.MaxLength != 17 || id.Pattern != "[A-HJ-NPR-Z0-9]+" || cfg.Router.MaxForeachElements != 50 {
		t.Fatalf("router: %+v", cfg.Router)
	}
	if d := Default().Router; d.Identity.Field != "device_no" || d.Identity.MaxLength != 128 || d.MaxForeachElements != 10000 {
		t.Fatalf("defaults: %+v", d)
	}
	for env, key := range map[string]string{
		"FLEETGATE_ROUTER_IDENTITY_PATTERN":    "router.identity.pattern",
		"FLEETGATE_ROUTER_IDENTITY_FIELD":      "router.identity.field",
		"FLEETGATE_ROUTER_IDENTITY_MAX_LENGTH": "router.identity.max_length",
	} {
		val := map[string]string{"FLEETGATE_ROUTER_IDENTITY_PATTERN": "(", "FLEETGATE_ROUTER_IDENTITY_FIELD": "a.b", "FLEETGATE_ROUTER_IDENTITY_MAX_LENGTH": "0"}[env]
		if _, err := Load("", envOf(map[string]string{env: val})); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%s: %v, want an error naming %s", env, val, err, key)
		}
	}
}
