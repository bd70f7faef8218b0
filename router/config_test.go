package router

import (
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for key, mutate := range map[string]func(*Config){
		"router.identity.field":       func(c *Config) { c.Identity.Field = "device no" },
		"router.identity.max_length":  func(c *Config) { c.Identity.MaxLength = 0 },
		"router.identity.pattern":     func(c *Config) { c.Identity.Pattern = "[" },
		"router.max_foreach_elements": func(c *Config) { c.MaxForeachElements = 0 },
	} {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", key, err)
		}
	}
}

func TestForeachTooLarge(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxForeachElements = 3
	rules := compileYAML(t, `
rules:
  - name: each
    foreach: samples AS s
    sql: SELECT s.v AS v FROM 'report'
    actions:
      - kafka: {topic: samples}
    error_action:
      kafka: {topic: message-dlq}
`)
	for n, want := range map[int]string{3: "samples", 4: "message-dlq"} {
		sink := &fakeSink{}
		e := NewEngine(rules, sink, Options{Config: cfg}, zap.NewNop())
		payload := `{"samples":[` + strings.TrimSuffix(strings.Repeat(`{"v":1},`, n), ",") + `]}`
		if err := processAs(t, e, "mqtt", "", payload); err != nil {
			t.Fatal(err)
		}
		switch want {
		case "samples":
			if len(sink.records) != n {
				t.Fatalf("%d elements: %d records", n, len(sink.records))
			}
		default:
			if len(sink.records) != 1 || sink.records[0].Topic != want || !strings.HasPrefix(headers(sink.records[0])["error"], "foreach_too_large: ") {
				t.Fatalf("%d elements: records %+v", n, sink.records)
			}
		}
	}
}
