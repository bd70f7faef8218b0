package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestProblemPositions checks that each problem points at the file, line
// and (for SQL, foreach and template syntax errors) column at fault.
func TestProblemPositions(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // problems, without the file name
	}{
		{"plain sql", `
rules:
  - name: a
    sql: SELECT * FORM 'x'
    actions: [{kafka: {topic: t}}]
`, []string{":4:19: rules[0] (a) sql: line 1, column 10: expected FROM, found 'FORM'"}},
		{"double-quoted sql", `
rules:
  - name: a
    sql: "SELECT a FROM 'x' WHERE"
    actions: [{kafka: {topic: t}}]
`, []string{":4:34: rules[0] (a) sql: line 1, column 24: expected an expression, found end of input"}},
		{"escape before the error: line only", `
rules:
  - name: a
    sql: "SELECT \"a\" FROM 'x' WHERE"
    actions: [{kafka: {topic: t}}]
`, []string{":4: rules[0] (a) sql: line 1, column 26: expected an expression, found end of input"}},
		{"literal block, more indented line", `
rules:
  - name: a
    sql: |
      SELECT a
        , b
      FROM 'x' WHERE b >
    actions: [{kafka: {topic: t}}]
`, []string{":7:25: rules[0] (a) sql: line 4, column 1: expected an expression, found end of input"}},
		{"folded block", `
rules:
  - name: a
    sql: >-
      SELECT a,
      nope( FROM 'x'
    actions: [{kafka: {topic: t}}]
`, []string{":6:7: rules[0] (a) sql: line 1, column 11: unknown function 'nope'"}},
		{"plain over two lines", `
rules:
  - name: a
    sql: SELECT a
      FROM x
    actions: [{kafka: {topic: t}}]
`, []string{":5:12: rules[0] (a) sql: line 1, column 15: expected a quoted topic filter after FROM, found 'x'"}},
		{"template", `
rules:
  - name: a
    sql: SELECT * FROM 'x'
    actions:
      - kafka:
          topic: message-${type
`, []string{":7:26: rules[0] (a) actions[0].kafka.topic: line 1, column 9: unclosed '${': expected '}'"}},
		{"header with a dot in its name", `
rules:
  - name: a
    sql: SELECT * FROM 'x'
    actions:
      - kafka:
          topic: t
          headers:
            X-Trace.Id: "${a..b}"
`, []string{":9:30: rules[0] (a) actions[0].kafka.headers.X-Trace.Id: line 1, column 5: expected a member name after '.', found '.'"}},
		{"missing fields point at the rule and the key", `
rules:
  - sql: SELECT * FROM 'x'
    actions:
      - {}
`, []string{":3: rules[0] name: every rule needs a name", ":5: rules[0] actions[0]: the action is empty; give kafka: or republish:"}},
		{"unknown keys and wrong types", `
rules:
  - name: a
    sqll: x
    sql: SELECT * FROM 'x'
    actions:
      - republish: {topic: t, qos: 300, retain: true}
`, []string{
			":4:5: rules[0] (a): unknown key \"sqll\" (known: name, foreach, sql, actions, error_action)",
			":7:41: rules[0] (a) actions[0].republish: unknown key \"retain\" (known: topic, qos)",
			":7: rules: cannot unmarshal !!int `300` into uint8",
		}},
		{"other sections", `
log:
  level: loud
kafka:
  brokers: [b1:9092]
  required_acks: "1"
`, []string{":3: log.level: \"loud\" is not one of debug, info, warn, error", ":4: kafka.idempotent needs kafka.required_acks: all (or set kafka.idempotent: false)"}},
		{"yaml syntax", "kafka:\n  brokers: [\n  - x\n", []string{":2: YAML: did not find expected node content"}},
		{"not a mapping", "- a\n- b\n", []string{":1: the file must hold a YAML mapping of keys (such as kafka: or rules:)"}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Lines count from the literal's leading newline: "rules:" is line 2.
			path := writeFile(t, dir, "config.yaml", c.yaml)
			_, err := Load(path, noEnv)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want an *Error", err)
			}
			var got []string
			for _, p := range ce.Problems {
				got = append(got, strings.TrimPrefix(p.String(), path))
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestRulesFileResolvedAgainstTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "rules"), "main.yaml", `
rules:
  - name: headers-keep-their-case
    sql: SELECT * FROM 'report'
    actions: [{kafka: {topic: t, headers: {X-Device-No: "${device_no}"}}}]
`)
	cfgPath := writeFile(t, dir, "fleetgate.yaml", "rules_file: rules/main.yaml\n")
	cfg, err := Load(cfgPath, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RulesFile != filepath.Join(dir, "rules", "main.yaml") {
		t.Errorf("RulesFile = %q", cfg.RulesFile)
	}
	if h := cfg.Rules[0].Actions[0].Kafka.Headers; h["X-Device-No"] != "${device_no}" {
		t.Errorf("headers %v: the name lost its case", h)
	}
	// From the environment, a relative rules_file is relative to the
	// working directory.
	cfg, err = Load("", envOf(map[string]string{"FLEETGATE_RULES_FILE": "testdata/rules.yaml"}))
	if err != nil || len(cfg.Rules) != 2 {
		t.Fatalf("rules_file from the environment: %v %+v", err, cfg)
	}
	// A missing rules file is reported at the key that names it.
	bad := writeFile(t, dir, "bad.yaml", "log: {level: info}\nrules_file: nope.yaml\n")
	if _, err := Load(bad, noEnv); err == nil || !strings.HasPrefix(err.Error(), bad+":2: rules_file: stat "+filepath.Join(dir, "nope.yaml")) {
		t.Fatalf("got %v", err)
	}
}

func TestLoadRules(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "rules.yaml", `
rules:
  - name: one
    sql: SELECT * FROM 'report'
    actions: [{kafka: {topic: message-one}}]
`)
	rules, cfgs, err := LoadRules(good, true)
	if err != nil || rules.Len() != 1 || cfgs[0].Name != "one" || rules.LiteralTopics()[0] != "message-one" {
		t.Fatalf("LoadRules: %v %v %v", rules, cfgs, err)
	}
	// A configuration file without rules: has the default rule.
	cfgFile := writeFile(t, dir, "config.yaml", "log: {level: info}\n")
	if rules, _, err := LoadRules(cfgFile, false); err != nil || rules.Names()[0] != "device-reports" {
		t.Fatalf("default rule: %v %v", rules, err)
	}
	// A rules file holds nothing but rules.
	extra := writeFile(t, dir, "extra.yaml", "kafka: {}\nrules: []\n")
	if _, _, err := LoadRules(extra, true); err == nil || err.Error() != extra+`:1:1: unknown key "kafka"; a rules file holds only rules:` {
		t.Fatalf("got %v", err)
	}
	bad := writeFile(t, dir, "bad.yaml", "rules:\n  - name: x\n    sql: SELECT\n    actions: [{kafka: {topic: t}}]\n")
	if _, _, err := LoadRules(bad, true); err == nil || !strings.HasPrefix(err.Error(), bad+":3:16: rules[0] (x) sql: line 1, column 7:") {
		t.Fatalf("got %v", err)
	}
}
