package iotsql

import (
	"strings"
	"testing"
)

// awsNested is the message of AWS's "Nested object queries" examples.
const awsNested = `{"e": [{"n": "temperature", "u": "Fahrenheit", "v": 80}, {"n": "light", "u": "lumens", "v": 1000}, {"n": "acidity", "u": "pH", "v": 7}]}`

// queryCase is one statement, the payload it reads and the output it must
// give (its JSON), with where the case comes from.
type queryCase struct{ sql, payload, want, doc string }

// runQueryCases evaluates each case's statement against its payload.
func runQueryCases(t *testing.T, cases []queryCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			q, err := ParseQuery(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			out, ok, err := q.Eval(NewEnv(testMessage(c.payload)))
			if err != nil || !ok || string(out) != c.want {
				t.Errorf("%s\n got %s %v %v\nwant %s (%s)", c.sql, out, ok, err, c.want, c.doc)
			}
		})
	}
}

func TestNestedSelect(t *testing.T) {
	runQueryCases(t, []queryCase{
		{"SELECT (SELECT VALUE n FROM e) as sensors FROM 'my/topic'", awsNested,
			`{"sensors":["temperature","light","acidity"]}`, "AWS: nested object queries, first example"},
		{"SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'my/topic'", awsNested,
			`{"temperature":[{"v":80}]}`, "AWS: nested object queries, second example"},
		{"SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v as temperature FROM 'topic'", awsNested,
			`{"temperature":80}`, "AWS: nested object queries, third example"},
		{"SELECT (SELECT c FROM e) AS d FROM 'a/b'", `{"e": [{"c": 1}, {"c": 2, "x": 0}, {"y": 3}]}`,
			`{"d":[{"c":1},{"c":2},{}]}`, "AWS: SELECT (SELECT c FROM e) AS d; an element without c gives {}"},
		{"SELECT (SELECT * FROM e WHERE v > 100) AS big FROM 't'", awsNested,
			`{"big":[{"n":"light","u":"lumens","v":1000}]}`, "* is the element"},
		{"SELECT (SELECT n, v * 2 AS v2 FROM e WHERE u <> 'pH') AS x FROM 't'", awsNested,
			`{"x":[{"n":"temperature","v2":160},{"n":"light","v2":2000}]}`, ""},
		{"SELECT (SELECT VALUE v FROM e WHERE v > 5000) AS none FROM 't'", awsNested, `{"none":[]}`, "nothing selected: an empty Array"},
		{"SELECT (SELECT VALUE x FROM missing) AS m FROM 't'", awsNested, `{}`, "FROM not an array: Undefined"},
		{"SELECT (SELECT VALUE k FROM o) AS m FROM 't'", `{"o": {"k": 1}}`, `{"m":1}`, "FROM an object: its one output [fleetgate]"},
		{"SELECT (SELECT VALUE (SELECT VALUE q FROM p) FROM e) AS deep FROM 't'", `{"e": [{"p": [{"q": 1}, {"q": 2}]}, {"p": [{"q": 3}]}]}`,
			`{"deep":[[1,2],[3]]}`, "nested twice; the inner FROM reads the outer element"},
		{"SELECT (SELECT VALUE s.k FROM e) AS viaAlias FROM 't'", `{"e": [{"s": {"k": "a"}}]}`, `{"viaAlias":["a"]}`, "paths inside the element"},
		{"SELECT e FROM 't' WHERE (SELECT VALUE v FROM e WHERE v = 7) = [7]", awsNested,
			`{"e":[{"n":"temperature","u":"Fahrenheit","v":80},{"n":"light","u":"lumens","v":1000},{"n":"acidity","u":"pH","v":7}]}`, "in WHERE"},
	})
}

func TestNestedSelectErrors(t *testing.T) {
	for _, c := range []struct{ sql, want string }{
		{"SELECT (SELECT c FROM 'a/b') FROM 't'", "column 23: a nested SELECT reads an array of the message (FROM name), not a topic"},
		{"SELECT (SELECT c FROM e FROM 't'", "expected ')'"},
		{"SELECT (SELECT c e) FROM 't'", "expected FROM"},
		{"SELECT (SELECT * , * FROM e) FROM 't'", "'*' may appear only once"},
	} {
		_, err := ParseQuery(c.sql)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.sql, err, c.want)
		}
	}
}
