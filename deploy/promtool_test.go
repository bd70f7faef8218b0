package deploy

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// tool returns the path of an outside program a test needs, or fails the
// test saying where it comes from.
func tool(t *testing.T, name, from string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: %s", name, from)
	}
	return p
}

// TestAlertRules runs Prometheus' own checker and the unit tests of every
// alert (prometheus/alerts_test.yml) with promtool.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool", "install the Debian package prometheus (.ci/run does)")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestAlertUnitTestsCoverEveryAlert: every alert in alerts.yml has a unit
// test where it fires and one where it stays silent.
func TestAlertUnitTestsCoverEveryAlert(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			Name  string `yaml:"name"`
			Cases []struct {
				Alert string `yaml:"alertname"`
				Exp   []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	for f, v := range map[string]any{"prometheus/alerts.yml": &rules, "prometheus/alerts_test.yml": &tests} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if !slices.Equal(tests.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("alerts_test.yml tests %v, want alerts.yml", tests.RuleFiles)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, c := range tc.Cases {
			if len(c.Exp) > 0 {
				fires[c.Alert] = true
			} else {
				silent[c.Alert] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("alert %s has no promtool test where it fires", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("alert %s has no promtool test where it stays silent", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts read from alerts.yml")
	}
}
