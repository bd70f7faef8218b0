package ident

import (
	"strings"
	"testing"
	"unicode/utf8"
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
	f.Add("a\xffb")
	f.Add("a\x01b")
	f.Fuzz(func(t *testing.T, s string) {
		p := Problem(s, MaxLen)
		if pb := Problem([]byte(s), MaxLen); pb != p {
			t.Fatalf("Problem(%q) = %q but %q for its bytes", s, p, pb)
		}
		if p != "" {
			return
		}
		switch {
		case s == "", len(s) > MaxLen, !utf8.ValidString(s), s[0] == ' ', s[len(s)-1] == ' ', strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			t.Fatalf("Problem(%q) accepted it", s)
		}
	})
}
