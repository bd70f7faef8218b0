package config

import (
	"errors"
	"testing"
)

// FuzzRulesFile loads arbitrary rules files: no panic, every problem is an
// *Error whose positions lie inside the file.
func FuzzRulesFile(f *testing.F) {
	for _, s := range []string{
		rulesYAML("t"),
		"rules:\n  - name: a\n    sql: |\n      SELECT *\n        FORM 'x'\n    actions: [{kafka: {topic: t}}]\n",
		"rules:\n  - name: a\n    sql: >-\n      SELECT a,\n      b( FROM 'x'\n    actions: [{kafka: {topic: \"m-${\"}}]\n",
		"rules:\n  - &r {name: a, sql: \"SELECT \\\"x\\\" FROM 'x' WHERE\", actions: [{republish: {topic: t, qos: 9}}]}\n  - *r\n",
		"rules: [{name: a, foreach: s AS, sql: SELECT, actions: [{}], extra: 1}]\nkafka: {}\n",
		"rules:\n\t- bad indentation\n", "- a\n", "", "rules: 5\n", "rules:\r\n  - name: a\r\n    sql: SELECT * FROM\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		var err error
		if file, perr := parseYAML("rules.yaml", []byte(content)); perr != nil {
			err = perr
		} else {
			_, _, err = compileRules(file, true)
		}
		if err == nil {
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("error %T is not an *Error: %v", err, err)
		}
		lines := splitLines(content)
		for _, p := range ce.Problems {
			if p.Line < 0 || p.Line > len(lines)+1 {
				t.Fatalf("problem %q: line outside the file (%d lines)", p, len(lines))
			}
			if p.Column > 0 && p.Line > 0 && p.Line <= len(lines) && p.Column > len([]rune(lines[p.Line-1]))+1 {
				t.Fatalf("problem %q: column past the end of line %q", p, lines[p.Line-1])
			}
		}
	})
}
