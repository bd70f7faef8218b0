package iotsql

import (
	"strings"
	"testing"
)

func TestRegexpFunctions(t *testing.T) {
	runDocCases(t, testMessage(`{"s": "hihihello", "p": "h(i)", "bad": "a(", "r": "[$1]", "i": 1234, "arr": [1], "r2": "$2", "dollar": "$"}`), []docCase{
		{`regexp_matches("aaaa", "a{2,}")`, true, "AWS: regexp_matches example"},
		{`regexp_matches("aaaa", "b")`, false, "AWS: regexp_matches example"},
		{`regexp_matches("aaa", "(aaa|bbb)")`, true, "AWS: regexp_matches example"},
		{`regexp_matches("bbb", "(aaa|bbb)")`, true, "AWS: regexp_matches example"},
		{`regexp_matches("ccc", "(aaa|bbb)")`, false, "AWS: regexp_matches example"},
		{`regexp_matches(i, '^12')`, true, "an Int is matched as its String"},
		{`regexp_matches(s, p)`, true, "a pattern computed per message"},
		{`regexp_matches(s, bad)`, undef, "an invalid computed pattern"},
		{`regexp_matches(s, i)`, false, "AWS: a pattern that is not a String is converted to one (1234)"},
		{`regexp_matches("x1234", i)`, true, "AWS: second argument, Non-string types are converted to String"},
		{`regexp_matches("a2b", 2)`, true, "a literal number pattern is converted too"},
		{`regexp_matches(s, null)`, undef, "a Null pattern does not convert"},
		{`regexp_matches(missing, 'a')`, undef, ""},
		{`regexp_matches(arr, '1')`, true, "AWS: first argument, Array: the String representation of the Array ('[1]')"},
		{`regexp_matches(arr, '^\\[1\\]$')`, true, "the subject is the Array's JSON"},
		{`regexp_substr(arr, '[0-9]')`, "1", "AWS: regexp_substr first argument, Array: its String representation"},
		{`regexp_replace(arr, '1', 'x')`, "[x]", "AWS: regexp_replace first argument, Array: its String representation"},
		{`regexp_replace("a1", "1", 2)`, "a2", "AWS: third argument, Non-string types are converted to String"},
		{`regexp_matches(null, 'a')`, undef, "AWS: first argument, Null: Undefined"},
		{`regexp_replace("abcd", "bc", "x")`, "axd", "AWS: regexp_replace example"},
		{`regexp_replace("abcd", "b(.*)d", "$1")`, "ac", "AWS: regexp_replace example"},
		{`regexp_replace("abcd", "[ae]", "")`, "bcd", ""},
		{`regexp_replace("abc", "x*", "-")`, "-a-b-c-", "empty matches, as Java's replaceAll"},
		{`regexp_replace("a1b22", "([0-9])", "<$1>")`, "a<1>b<2><2>", ""},
		{`regexp_replace("ab", "(a)", "$10")`, "a0b", "Java: $1 then 0, as there is no group 10"},
		{`regexp_replace("ab", "(?P<x>a)", "${x}${x}")`, "aab", "named groups"},
		{`regexp_replace("ab", "a", "\\$")`, "$b", "a backslash quotes"},
		{`regexp_replace("ab", "a", r2)`, undef, "no group 2"},
		{`regexp_replace("ab", "a", dollar)`, undef, "Java: illegal group reference"},
		{`regexp_replace(s, p, r)`, "[i][i]hello", ""},
		{`regexp_replace("ab", "x", "y")`, "ab", "no match"},
		{`regexp_replace(s, 'h', missing)`, undef, ""},
		{`regexp_substr("hihihello", "hi")`, "hi", "AWS: regexp_substr example"},
		{`regexp_substr("hihihello", "(hi)*")`, "hihi", "AWS: regexp_substr example"},
		{`regexp_substr("hello", "x")`, "", "no match: the empty String [fleetgate]"},
		{`regexp_substr(s, p)`, "hi", ""},
	})
}

func TestRegexpCompileErrors(t *testing.T) {
	for _, c := range []struct{ sql, want string }{
		{`SELECT regexp_matches(s, 'a(') FROM 't'`, "line 1, column 26: regexp_matches: error parsing regexp: missing closing ): `a(`"},
		{`SELECT regexp_substr(s, '(?=a)') FROM 't'`, "column 25: regexp_substr: error parsing regexp: invalid or unsupported Perl syntax"},
		{`SELECT regexp_replace(s, 1.5, '$1') FROM 't'`, "column 31: regexp_replace: the replacement refers to a group"},
		{`SELECT regexp_replace(s, 'a', '$2') FROM 't'`, "column 31: regexp_replace: the replacement refers to a group the pattern does not have"},
		{`SELECT regexp_replace(s, '(a)', 'x$') FROM 't'`, "column 33: regexp_replace: the replacement"},
	} {
		_, err := ParseQuery(c.sql)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.sql, err, c.want)
		}
	}
}

// TestRegexpRunTimeCacheIsBounded: patterns computed per message are cached
// per call, up to regexpCacheSize; past it they still work.
func TestRegexpRunTimeCacheIsBounded(t *testing.T) {
	q, err := ParseQuery(`SELECT VALUE regexp_matches(s, p) FROM 't'`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range regexpCacheSize + 10 {
		p := strings.Repeat("a", i+1)
		out, _, err := q.Eval(NewEnv(testMessage(`{"s": "` + p + `", "p": "` + p + `"}`)))
		if err != nil || string(out) != "true" {
			t.Fatalf("pattern %d: %s %v", i, out, err)
		}
	}
	call := q.value.(*callExpr)
	if n := call.reCache.n.Load(); n != regexpCacheSize {
		t.Errorf("%d patterns cached, want %d", n, regexpCacheSize)
	}
	long := strings.Repeat("a", maxRegexpLen+1)
	out, _, _ := q.Eval(NewEnv(testMessage(`{"s": "a", "p": "` + long + `"}`)))
	if len(out) != 0 {
		t.Errorf("a pattern of %d bytes gave %s, want Undefined", len(long), out)
	}
}

// TestRegexpConcurrentCache: one call site compiling patterns from many
// goroutines at once (run with -race).
func TestRegexpConcurrentCache(t *testing.T) {
	q, err := ParseQuery(`SELECT VALUE regexp_substr(s, p) FROM 't'`)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 8)
	for g := range 8 {
		go func() {
			bad := ""
			for i := range 200 {
				p := "x" + strings.Repeat("y", (g*200+i)%90)
				out, _, err := q.Eval(NewEnv(testMessage(`{"s": "a` + p + `b", "p": "` + p + `"}`)))
				if err != nil || string(out) != `"`+p+`"` {
					bad = string(out)
				}
			}
			done <- bad
		}()
	}
	for range 8 {
		if bad := <-done; bad != "" {
			t.Errorf("got %s", bad)
		}
	}
}
