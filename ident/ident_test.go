package ident

import (
	"strings"
	"testing"
)

func TestProblem(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"ABC-00000001", ""},
		{"차량-7", ""},
		{"a b", ""},
		{strings.Repeat("x", MaxLen), ""},
		{"", "is empty"},
		{strings.Repeat("x", MaxLen+1), "is longer than 128 bytes"},
		{"a\xffb", "is not valid UTF-8"},
		{" a", "has leading or trailing spaces"},
		{"a ", "has leading or trailing spaces"},
		{"a\x00b", "contains a control character"},
		{"a\nb", "contains a control character"},
		{"a\x7fb", "contains a control character"},
	} {
		if got := Problem(c.in, MaxLen); got != c.want {
			t.Errorf("Problem(%q) = %q; want %q", c.in, got, c.want)
		}
		if got := Problem([]byte(c.in), MaxLen); got != c.want {
			t.Errorf("Problem([]byte(%q)) = %q; want %q", c.in, got, c.want)
		}
	}
	if got := Problem("abcd", 3); got != "is longer than 3 bytes" {
		t.Errorf("Problem with maxLen 3 = %q", got)
	}
}

func FuzzProblem(f *testing.F) {
	f.Add("ABC-1")
	f.Add(" x\x00")
	f.Fuzz(func(t *testing.T, s string) {
		if p := Problem(s, MaxLen); p == "" && (s == "" || len(s) > MaxLen || strings.ContainsAny(s, "\x00\n\r\t\x7f") || strings.TrimSpace(s) != s && (s[0] == ' ' || s[len(s)-1] == ' ')) {
			t.Fatalf("Problem(%q) accepted it", s)
		}
	})
}
