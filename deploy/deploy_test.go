// Package deploy holds the container and observability files (compose,
// Prometheus alerts, Grafana dashboard). There is no Docker engine where the
// tests run, so this test keeps them correct by reading them: they parse,
// the configuration they give the gateway loads, and every series they
// query exists.
package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/gateway"
	"github.com/fleetgate/fleetgate/metrics"
	"github.com/fleetgate/fleetgate/policy"
	"github.com/fleetgate/fleetgate/router"
)

// composeFile is the part of the compose specification compose.yaml uses;
// decoding with known fields only catches a misspelt key.
type composeFile struct {
	Name     string `yaml:"name"`
	Services map[string]struct {
		Image    string   `yaml:"image"`
		Hostname string   `yaml:"hostname"`
		Command  []string `yaml:"command"`
		Build    *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Profiles    []string          `yaml:"profiles"`
		StopGrace   string            `yaml:"stop_grace_period"`
		StopSignal  string            `yaml:"stop_signal"`
		Restart     string            `yaml:"restart"`
		DependsOn   any               `yaml:"depends_on"`
		Healthcheck *struct {
			Test        []string `yaml:"test"`
			Interval    string   `yaml:"interval"`
			Timeout     string   `yaml:"timeout"`
			Retries     int      `yaml:"retries"`
			StartPeriod string   `yaml:"start_period"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true) // a misspelt compose key fails here
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

func TestCompose(t *testing.T) {
	c := readCompose(t)
	for _, name := range []string{"kafka", "fleetgate", "kafka-ui"} {
		if s, ok := c.Services[name]; !ok || len(s.Profiles) > 0 {
			t.Fatalf("service %s missing, or not started by default", name)
		}
	}
	k := c.Services["kafka"]
	if !strings.HasPrefix(k.Image, "apache/kafka:") || !strings.Contains(k.Environment["KAFKA_PROCESS_ROLES"], "controller") {
		t.Errorf("kafka: want a KRaft apache/kafka node, got %s %v", k.Image, k.Environment["KAFKA_PROCESS_ROLES"])
	}
	if k.Healthcheck == nil {
		t.Error("kafka has no healthcheck: the gateway would start before it")
	}

	g := c.Services["fleetgate"]
	if g.Build == nil || g.Build.Context != ".." || g.Build.Dockerfile != "Dockerfile" {
		t.Fatalf("fleetgate must build ../Dockerfile: %+v", g.Build)
	}
	if _, err := os.Stat(filepath.Join(g.Build.Context, g.Build.Dockerfile)); err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"1883", "8443", "8080"} {
		if !slices.ContainsFunc(g.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
			t.Errorf("fleetgate does not publish port %s", port)
		}
	}
	// The gateway reaches Kafka on a listener Kafka advertises to containers.
	if adv := k.Environment["KAFKA_ADVERTISED_LISTENERS"]; !strings.Contains(adv, "://"+g.Environment["FLEETGATE_KAFKA_BROKERS"]) {
		t.Errorf("FLEETGATE_KAFKA_BROKERS=%s is not among Kafka's advertised listeners %s", g.Environment["FLEETGATE_KAFKA_BROKERS"], adv)
	}
	if ui := c.Services["kafka-ui"].Environment["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"]; ui != g.Environment["FLEETGATE_KAFKA_BROKERS"] {
		t.Errorf("the Kafka UI reads %s, the gateway writes %s", ui, g.Environment["FLEETGATE_KAFKA_BROKERS"])
	}

	// The image's configuration with compose's overrides is a valid
	// configuration: every FLEETGATE_* key exists and its value parses.
	cfg, err := config.Load("config.yaml", func(k string) (string, bool) { v, ok := g.Environment[k]; return v, ok })
	if err != nil {
		t.Fatalf("config.yaml with compose's environment: %v", err)
	}
	if len(cfg.Kafka.Brokers) != 1 || !cfg.Kafka.Topics.Create || cfg.Admin.Listen != "0.0.0.0:8080" {
		t.Errorf("configuration in compose: brokers %v create %v admin %q", cfg.Kafka.Brokers, cfg.Kafka.Topics.Create, cfg.Admin.Listen)
	}
	grace, err := time.ParseDuration(g.StopGrace)
	if err != nil || grace <= gateway.DrainTimeout(cfg) {
		t.Errorf("stop_grace_period %q must exceed the drain timeout %s, or the drain is SIGKILLed", g.StopGrace, gateway.DrainTimeout(cfg))
	}

	// Files mounted into the containers exist.
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			}
		}
	}
}

func TestImageConfigLoads(t *testing.T) {
	cfg, err := config.Load("config.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Format != "json" || cfg.Admin.PProf {
		t.Errorf("the image defaults to JSON logs and no pprof: %+v %+v", cfg.Log, cfg.Admin)
	}
	// Secure by default: authentication, one identity per client id, and
	// the shipped policy (docs/security.md).
	a := cfg.MQTT.Auth
	if a.AllowAnonymous || !a.EnforceDeviceIdentity || a.UsersFile != "users" || cfg.MQTT.ACLFile != "acl.yaml" {
		t.Errorf("the image must turn MQTT authentication and the default policy on: auth %+v acl_file %q", a, cfg.MQTT.ACLFile)
	}
	acl, err := os.ReadFile("acl.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(acl) != string(policy.DefaultYAML()) {
		t.Error("deploy/acl.yaml differs from the built-in default policy (policy/default.yaml); keep them the same")
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := string(b)
	for _, want := range []string{
		"CGO_ENABLED=0",                 // static binary
		"FROM gcr.io/distroless/static", // CA certificates and tzdata, no shell
		"USER 65532:65532",              // non-root
		"EXPOSE 1883 8883 8443 8080",    // MQTT, MQTT/TLS, legacy HTTPS, admin
		"COPY --chown=65532:65532 deploy/config.yaml /etc/fleetgate/config.yaml",
		"COPY --chown=65532:65532 deploy/users deploy/acl.yaml /etc/fleetgate/",
		`CMD ["serve", "--config", "/etc/fleetgate/config.yaml"]`,
		// go mod download reads the replaced mochi's go.mod (go.mod: replace
		// github.com/mochi-mqtt/server/v2 => ./third_party/mochi)
		"COPY third_party/mochi/go.mod third_party/mochi/go.sum ./third_party/mochi/\nRUN --mount=type=cache,target=/go/pkg/mod go mod download",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if n := strings.Count(d, "\nFROM "); n < 2 {
		t.Errorf("Dockerfile has %d stages; want a build stage and a small final one", n)
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ignore), "\n") {
		if line = strings.TrimSpace(line); line == "deploy" || line == "deploy/" || line == "cmd" || line == "third_party" || line == "third_party/" {
			t.Errorf(".dockerignore drops %s, which the build needs", line)
		}
	}
}

// knownSeries is every series name the gateway exports, found by using
// every observer method once (a vector shows in Gather only once it has a
// child).
func knownSeries(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	m.WatchInflight(fakeBudget{})
	m.WatchReadiness(func() error { return nil }, func() error { return nil })
	m.Message("mqtt")
	m.Unmatched("mqtt")
	m.ErrorRecord("r", "eval_error")
	m.Dropped("r", "eval_error")
	m.Failed("mqtt")
	m.Refused(router.ReasonInflightLimit)
	m.Produced("message-log", time.Millisecond)
	m.Acked("mqtt", time.Millisecond)
	m.ClientConnected()
	m.ClientDisconnected()
	m.ClientRefused()
	m.AccessRefused("connect", "bad_password")
	m.Resent()
	m.Responded(200)
	m.RulesReloaded(true)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				names[mf.GetName()+s] = true
			}
		}
	}
	return names
}

type fakeBudget struct{}

func (fakeBudget) InUse() (int64, int64)  { return 0, 0 }
func (fakeBudget) Limits() (int64, int64) { return 1, 1 }

var seriesName = regexp.MustCompile(`\b(fleetgate_[a-z_]+|process_[a-z_]+|go_[a-z_]+)\b`)

func checkSeries(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	for _, name := range seriesName.FindAllString(expr, -1) {
		if !known[name] {
			t.Errorf("%s queries %s, which the gateway does not export", where, name)
		}
	}
}

func TestDashboardQueriesExistingSeries(t *testing.T) {
	b, err := os.ReadFile("grafana/fleetgate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	known := knownSeries(t)
	queried := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkSeries(t, "panel "+p.Title, tg.Expr, known)
			for _, n := range seriesName.FindAllString(tg.Expr, -1) {
				queried[n] = true
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, want := range []string{
		"fleetgate_messages_received_total", "fleetgate_records_produced_total", "fleetgate_ack_latency_seconds_bucket",
		"fleetgate_errors_total", "fleetgate_inflight_messages", "fleetgate_mqtt_connections",
	} {
		if !queried[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

func TestPrometheusFiles(t *testing.T) {
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	b, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &prom); err != nil {
		t.Fatal(err)
	}
	if len(prom.ScrapeConfigs) == 0 || !slices.Contains(prom.ScrapeConfigs[0].StaticConfigs[0].Targets, "fleetgate:8080") {
		t.Errorf("prometheus.yml does not scrape fleetgate:8080: %+v", prom.ScrapeConfigs)
	}

	var alerts struct {
		Groups []struct {
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Expr   string            `yaml:"expr"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	b, err = os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &alerts); err != nil {
		t.Fatal(err)
	}
	known := knownSeries(t)
	n := 0
	for _, g := range alerts.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" {
				t.Errorf("alert %q lacks a name, an expression or a severity", r.Alert)
			}
			checkSeries(t, "alert "+r.Alert, r.Expr, known)
		}
	}
	if n < 5 {
		t.Errorf("%d alerts; docs/operations.md describes more", n)
	}
}
