package iotsql

import (
	"strings"
	"testing"
)

func TestMatchTopic(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"report", "report", true},
		{"report", "reports", false},
		{"report", "report/x", false},
		{"report/x", "report", false},
		{"#", "report", true},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"#", "$SYS/x", false},
		{"+", "report", true},
		{"+", "a/b", false},
		{"+", "", true},
		{"+", "$SYS", false},
		{"fleet/+/report", "fleet/D1/report", true},
		{"fleet/+/report", "fleet//report", true},
		{"fleet/+/report", "fleet/D1/log", false},
		{"fleet/+/report", "fleet/D1/report/x", false},
		{"fleet/#", "fleet", true},
		{"fleet/#", "fleet/", true},
		{"fleet/#", "fleet/a/b", true},
		{"fleet/#", "fleets/a", false},
		{"fleet/+", "fleet", false},
		{"fleet/+", "fleet/", true},
		{"+/+", "a/b", true},
		{"+/+", "/b", true},
		{"+/#", "a", true},
		{"/#", "/a", true},
		{"/#", "a", false},
		{"$SYS/#", "$SYS/broker", true},
		{"a/b", "a/b/", false},
		{"a/b/", "a/b/", true},
	}
	for _, tt := range tests {
		t.Run(tt.filter+" "+tt.topic, func(t *testing.T) {
			if got := MatchTopic(tt.filter, tt.topic); got != tt.want {
				t.Errorf("MatchTopic(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
			}
		})
	}
}

func TestValidFilter(t *testing.T) {
	tests := []struct {
		filter string
		err    string
	}{
		{"report", ""},
		{"#", ""},
		{"+", ""},
		{"a/+/b/#", ""},
		{"/", ""},
		{"a//b", ""},
		{"", "empty"},
		{"a/#/b", `"#" must be the whole last level`},
		{"a#", `"#" must be the whole last level`},
		{"a/b+", `"+" must be a whole level`},
		{"a/+b/c", `"+" must be a whole level`},
		{"a\x00b", "NUL"},
		{"a\xffb", "UTF-8"},
		{strings.Repeat("a", 65536), "longer than"},
	}
	for _, tt := range tests {
		name := tt.filter
		if len(name) > 20 {
			name = name[:20]
		}
		t.Run(name, func(t *testing.T) {
			err := ValidFilter(tt.filter)
			if tt.err == "" {
				if err != nil {
					t.Errorf("ValidFilter(%q) = %v", tt.filter, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ValidFilter(%q) = %v, want %q", tt.filter, err, tt.err)
			}
		})
	}
}
