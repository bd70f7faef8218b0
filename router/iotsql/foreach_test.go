package iotsql

import (
	"strings"
	"testing"
)

func TestParseForeach(t *testing.T) {
	for _, c := range []struct{ src, alias, err string }{
		{"samples AS s", "s", ""},
		{"data.samples as sample", "sample", ""},
		{"concat(a, b) AS x", "x", ""},
		{"samples", "", "line 1, column 8: expected AS and a name for the element (e.g. samples AS s), found end of input"},
		{"samples AS", "", "line 1, column 11: expected a name for the element after AS, found end of input"},
		{"samples AS select", "", "column 12: expected a name for the element after AS"},
		{"samples AS s t", "", "column 14: expected end of foreach"},
		{"SELECT AS s", "", "column 1: expected an expression, found keyword"},
	} {
		f, err := ParseForeach(c.src)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.src, err, c.err)
			}
			continue
		}
		if err != nil || f.Alias() != c.alias || f.String() != c.src {
			t.Errorf("%q: %v %v", c.src, f, err)
		}
	}
}
