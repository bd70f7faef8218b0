package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/gateway"
)

// kubeletMount lays out a ConfigMap volume the way the kubelet does: the
// files in a timestamped directory, a "..data" link to it, and one link
// per key through "..data". update swaps the content atomically like a
// ConfigMap update: a new directory, "..data_tmp" renamed over "..data".
type kubeletMount struct {
	dir string
	gen int
}

func (k *kubeletMount) update(t *testing.T, cm manifest) {
	t.Helper()
	k.gen++
	ts := filepath.Join(k.dir, "..2026_12_01_09_00_0"+string(rune('0'+k.gen))+".000000001")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	data := get[map[string]any](cm, "data")
	for name, content := range data {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(content.(string)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(k.dir, "..data"))
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range data {
		link := filepath.Join(k.dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Join(k.dir, old))
	}
}

// TestHelmConfigMapHotReload runs a gateway on the chart's rendered
// ConfigMap in the kubelet's layout (mounted as a directory, as the chart
// does) and updates it the way Kubernetes does: the new rules take over
// without a restart.
func TestHelmConfigMapHotReload(t *testing.T) {
	mount := &kubeletMount{dir: t.TempDir()}
	mount.update(t, render(t).find(t, "ConfigMap", ""))

	// Only the listeners move to free loopback ports, as FLEETGATE_*
	// variables would; everything else is the chart's.
	env := map[string]string{
		"FLEETGATE_MQTT_LISTEN":           "127.0.0.1:0",
		"FLEETGATE_TELEMATICS_LISTEN":     "127.0.0.1:0",
		"FLEETGATE_ADMIN_LISTEN":          "127.0.0.1:0",
		"FLEETGATE_KAFKA_EMBEDDED_LISTEN": "127.0.0.1:0",
	}
	cfg, err := config.Load(filepath.Join(mount.dir, "config.yaml"), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	g := gateway.New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	reloads := make(chan bool, 10)
	g.OnRulesReload(func(ok bool) { reloads <- ok })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	if names := g.Engine().Rules().Names(); !slices.Equal(names, []string{"device-reports"}) {
		t.Fatalf("rules at start: %v", names)
	}

	values := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(values, []byte(`rules:
  - name: device-reports
    sql: SELECT * FROM 'report'
    actions:
      - kafka: {topic: "message-${type}", key: "${device_no}"}
  - name: speeding
    sql: SELECT device_no, speed_kmh FROM 'report' WHERE speed_kmh > 130
    actions:
      - kafka: {topic: message-log, key: "${device_no}"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	mount.update(t, render(t, "-f", values).find(t, "ConfigMap", ""))
	select {
	case ok := <-reloads:
		if !ok {
			t.Fatal("the updated rules were rejected")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no reload 20s after the ConfigMap update")
	}
	if names := g.Engine().Rules().Names(); !slices.Equal(names, []string{"device-reports", "speeding"}) {
		t.Fatalf("rules after the ConfigMap update: %v", names)
	}
}
