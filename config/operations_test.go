package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOperationsKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("defaults", func(t *testing.T) {
		cfg, err := Load("", noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Admin.Listen != "127.0.0.1:8080" || cfg.Admin.PProf {
			t.Errorf("admin defaults: %+v", cfg.Admin)
		}
		if cfg.Limits.MaxInflightMessages != 20000 || cfg.Limits.MaxInflightBytes != 64<<20 {
			t.Errorf("limits defaults: %+v", cfg.Limits)
		}
	})
	t.Run("file and environment", func(t *testing.T) {
		path := write("admin: {listen: \"0.0.0.0:9090\", pprof: true}\nlimits: {max_inflight_messages: 500}\n")
		cfg, err := Load(path, envOf(map[string]string{"FLEETGATE_LIMITS_MAX_INFLIGHT_BYTES": "2097152"}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Admin.Listen != "0.0.0.0:9090" || !cfg.Admin.PProf {
			t.Errorf("admin: %+v", cfg.Admin)
		}
		if cfg.Limits.MaxInflightMessages != 500 || cfg.Limits.MaxInflightBytes != 2<<20 {
			t.Errorf("limits: %+v", cfg.Limits)
		}
	})
	t.Run("pprof from the environment", func(t *testing.T) {
		cfg, err := Load("", envOf(map[string]string{"FLEETGATE_ADMIN_PPROF": "true"}))
		if err != nil || !cfg.Admin.PProf {
			t.Fatalf("FLEETGATE_ADMIN_PPROF=true: %v %+v", err, cfg)
		}
	})
	for _, tc := range []struct{ name, body, want string }{
		{"zero messages", "limits: {max_inflight_messages: 0}\n", "limits.max_inflight_messages"},
		{"bytes below a packet", "limits: {max_inflight_bytes: 100000}\n", "limits.max_inflight_bytes"},
		{"unknown limits key", "limits: {max_inflight: 5}\n", "limits.max_inflight"},
		{"pprof without listener", "admin: {listen: \"\", pprof: true}\n", "admin.pprof"},
		{"bad admin address", "admin: {listen: \"localhost\"}\n", "admin.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(write(tc.body), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v; want an error naming %s", err, tc.want)
			}
		})
	}
}
