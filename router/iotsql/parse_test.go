package iotsql

import (
	"errors"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name   string
		sql    string
		filter string
		names  []string // output names of the items, "*" for the star
	}{
		{"default rule", `SELECT *, parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) AS timestamp FROM 'report'`, "report", []string{"*", "timestamp"}},
		{"lower-case keywords", `select a as b from 'x' where c > 1`, "x", []string{"b"}},
		{"mixed-case keywords", `SeLeCt a FrOm "x/+/y"`, "x/+/y", []string{"a"}},
		{"hash filter", `SELECT * FROM '#'`, "#", []string{"*"}},
		{"nested path names its last member", `SELECT a.b.c, arr[0].x, d FROM 't'`, "t", []string{"c", "x", "d"}},
		{"index path gets a position name", `SELECT arr[0], a FROM 't'`, "t", []string{"_1", "a"}},
		{"call gets the function name", `SELECT topic(2), clientid() FROM 't'`, "t", []string{"topic", "clientid"}},
		{"expressions get position names", `SELECT *, 1 + 2, 'x', a AS y, -b FROM 't'`, "t", []string{"*", "_2", "_3", "y", "_5"}},
		{"backquoted names", "SELECT `from`, `a-b` AS `c d` FROM 't'", "t", []string{"from", "c d"}},
		{"string alias", `SELECT a AS 'my key' FROM 't'`, "t", []string{"my key"}},
		{"cast", `SELECT cast(a AS Int) AS i, cast(b as string) FROM 't'`, "t", []string{"i", "cast"}},
		{"case", `SELECT CASE a WHEN 1 THEN 'one' ELSE 'many' END AS n FROM 't'`, "t", []string{"n"}},
		{"literals", `SELECT {'k': [1, 2.5, true, null]} AS o FROM 't'`, "t", []string{"o"}},
		{"where with everything", `SELECT * FROM 't' WHERE NOT (a = 1 OR b <> 'x') AND c >= 2 * (3 - d) % 4 AND e != f || 'x'`, "t", []string{"*"}},
		{"multi-line", "SELECT a,\n  b\nFROM 't'\nWHERE a < b", "t", []string{"a", "b"}},
		{"function call member", `SELECT get(a, 0).b FROM 't'`, "t", []string{"b"}},
		{"dynamic index", `SELECT arr[i] AS v FROM 't'`, "t", []string{"v"}},
		{"value is a field", `SELECT value FROM 't'`, "t", []string{"value"}},
		{"value is a field in a path", `SELECT value.x, value FROM 't'`, "t", []string{"x", "value"}},
		{"value is a field in arithmetic", `SELECT value * 2 AS v FROM 't'`, "t", []string{"v"}},
		{"encode star", `SELECT encode(*, 'base64') AS data FROM 't'`, "t", []string{"data"}},
		{"function names are case-insensitive", `SELECT UPPER(a) AS u, isundefined(b) AS i, ParSe_Time('yyyy', 0) AS p FROM 't'`, "t", []string{"u", "i", "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseQuery(tt.sql)
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			if q.Filter() != tt.filter {
				t.Errorf("Filter() = %q, want %q", q.Filter(), tt.filter)
			}
			var names []string
			for _, it := range q.items {
				if it.star {
					names = append(names, "*")
				} else {
					names = append(names, it.name)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.names, ",") {
				t.Errorf("item names = %q, want %q", names, tt.names)
			}
			if q.String() != tt.sql {
				t.Errorf("String() = %q", q.String())
			}
		})
	}
}

func TestParseQueryErrors(t *testing.T) {
	tests := []struct {
		name      string
		sql       string
		line, col int
		msg       string
	}{
		{"misspelt FROM", "SELECT temperature FORM 'report'", 1, 20, "expected FROM, found 'FORM'"},
		{"missing SELECT", "SELEC * FROM 'a'", 1, 1, "expected SELECT, found 'SELEC'"},
		{"empty", "", 1, 1, "expected SELECT, found end of input"},
		{"no items", "SELECT FROM 'a'", 1, 8, "expected an expression, found keyword 'FROM'"},
		{"unknown function", "SELECT foo(a) FROM 'a'", 1, 8, "unknown function 'foo'"},
		{"too few arguments", "SELECT parse_time('yyyy') FROM 'a'", 1, 8, "parse_time() takes 2 to 3 arguments, got 1"},
		{"too many arguments", "SELECT timestamp(1) FROM 'a'", 1, 8, "timestamp() takes 0 arguments, got 1"},
		{"bad joda letter", "SELECT parse_time('yyyy-qq', timestamp()) FROM 'a'", 1, 19, `illegal pattern component "qq"`},
		{"unknown zone", "SELECT parse_time('yyyy', 0, 'Mars/Olympus') FROM 'a'", 1, 30, `unknown time zone "Mars/Olympus"`},
		{"bad jdk pattern", "SELECT time_to_epoch(a, 'yyyy[MM]') FROM 'a'", 1, 25, "unsupported pattern character"},
		{"encode scheme", "SELECT encode(*, 'hex') FROM 'a'", 1, 18, "encode: the encoding must be the literal 'base64'"},
		{"topic level", "SELECT topic(0) FROM 'a'", 1, 14, "topic: the level must be a number >= 1"},
		{"cast type", "SELECT cast(a AS Float) FROM 'a'", 1, 18, "cast: unknown type 'Float'"},
		{"unbalanced quotes", "SELECT 'abc FROM 'a'", 1, 19, "expected FROM, found 'a'"},
		{"unterminated string at end", "SELECT a FROM 'abc", 1, 15, "unterminated string"},
		{"filter not quoted", "SELECT a FROM report", 1, 15, "expected a quoted topic filter after FROM, found 'report'"},
		{"invalid filter", "SELECT a FROM 'a/#/b'", 1, 15, `invalid topic filter "a/#/b"`},
		{"trailing garbage", "SELECT a FROM 'a' WHERE b = 1 c", 1, 31, "expected end of statement, found 'c'"},
		{"second line", "SELECT a,\n  b c\nFROM 'x'", 2, 5, "expected FROM, found 'c'"},
		{"unclosed paren", "SELECT (a + 1 FROM 'x'", 1, 15, "expected ')', found 'FROM'"},
		{"alias keyword", "SELECT a AS from FROM 'x'", 1, 13, "expected a name after AS"},
		{"double star", "SELECT *, * FROM 'x'", 1, 11, "'*' may appear only once"},
		{"bad character", "SELECT a ? b FROM 'x'", 1, 10, "unexpected character '?'"},
		{"bad escape", `SELECT 'a\qb' FROM 'x'`, 1, 10, `unknown escape \q`},
		{"case without when", "SELECT CASE a END FROM 'x'", 1, 15, "expected WHEN"},
		{"case without end", "SELECT CASE WHEN a THEN 1 FROM 'x'", 1, 27, "expected END"},
		{"dot without name", "SELECT a. FROM 'x'", 1, 11, "expected a member name"},
		{"star outside call", "SELECT a * FROM 'x'", 1, 12, "expected an expression, found keyword 'FROM'"},
		{"number then letters", "SELECT 12ab FROM 'x'", 1, 8, "malformed number"},
		{"column counts characters", "SELECT 'é' FORM 'x'", 1, 12, "expected FROM"},
		{"deep nesting", "SELECT " + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300) + " FROM 'x'", 1, 0, "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseQuery(tt.sql)
			if err == nil {
				t.Fatalf("ParseQuery succeeded: %+v", q)
			}
			if q != nil {
				t.Errorf("ParseQuery returned a query with the error")
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *SyntaxError", err, err)
			}
			if se.Line != tt.line || (tt.col != 0 && se.Col != tt.col) {
				t.Errorf("position = line %d, column %d; want line %d, column %d (%v)", se.Line, se.Col, tt.line, tt.col, err)
			}
			if !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("message = %q, want it to contain %q", se.Msg, tt.msg)
			}
			if want := "line "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestSyntaxErrorFormat(t *testing.T) {
	_, err := ParseQuery("SELECT * FORM 'report'")
	if got, want := err.Error(), "line 1, column 10: expected FROM, found 'FORM'"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var se *SyntaxError
	if errors.As(err, &se); se.Pos != 9 {
		t.Errorf("Pos = %d, want 9", se.Pos)
	}
}
