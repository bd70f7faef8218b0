package iotsql

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testPayload is the payload of the expression tests.
const testPayload = `{"i":7,"j":2,"d":2.5,"s":"abc","n":"10","t":true,"f":false,"z":null,` +
	`"a":[1,2,3],"o":{"k":"v","n":1},"ts":1763780000123,"neg":-3,"nest":{"b":[{"c":1}]},"u":"héllo"}`

// testReceived is the receive time of the test messages: timestamp() returns it.
var testReceived = time.UnixMilli(1763780000123)

func testMessage(payload string) *Message {
	return &Message{Source: "mqtt", Topic: "fleet/D1/report", ClientID: "D1", Payload: []byte(payload), Received: testReceived}
}

// evalValue evaluates one expression against payload and returns its value as JSON,
// "undefined" for Undefined, or "error: ..." for an evaluation error.
func evalValue(t *testing.T, src, payload string) string {
	t.Helper()
	q, err := ParseQuery("SELECT VALUE (" + src + ") FROM '#'")
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	out, matched, err := q.Eval(NewEnv(testMessage(payload)))
	switch {
	case err != nil:
		return "error: " + err.Error()
	case !matched:
		t.Fatalf("%q: not matched", src)
	case len(out) == 0:
		return "undefined"
	}
	return string(out)
}

func TestOperators(t *testing.T) {
	tests := []struct{ expr, want string }{
		// arithmetic: Int op Int stays Int
		{"i + j", "9"}, {"i - j", "5"}, {"i * j", "14"}, {"i / j", "3"}, {"i % j", "1"},
		{"neg / j", "-1"}, {"neg % j", "-1"}, {"-i", "-7"}, {"- -i", "7"}, {"+i", "7"},
		// Int op Decimal is Decimal
		{"i + d", "9.5"}, {"i / d", "2.8"}, {"d * 2", "5"}, {"d - 0.5", "2"}, {"7.5 % 2", "1.5"}, {"-d", "-2.5"},
		// division and remainder by zero are Undefined
		{"i / 0", "undefined"}, {"d / 0", "undefined"}, {"i % 0", "undefined"}, {"d % 0.0", "undefined"},
		// "+" concatenates when a side is a String
		{"s + i", `"abc7"`}, {"i + s", `"7abc"`}, {"s + t", `"abctrue"`}, {"s + d", `"abc2.5"`},
		{"s + a", `"abc[1,2,3]"`}, {"s + z", "undefined"}, {"s + missing", "undefined"}, {"'a' + 'b'", `"ab"`},
		// other operators convert numeric Strings to Decimals
		{"n - 1", "9"}, {"n * 2", "20"}, {"n / 4", "2.5"}, {"-n", "-10"}, {"'x' - 1", "undefined"},
		{"'1e2' * 1", "100"}, {"'1.' * 1", "undefined"},
		// other types are Undefined
		{"t + 1", "undefined"}, {"z + 1", "undefined"}, {"a * 2", "undefined"}, {"-s", "undefined"}, {"-t", "undefined"},
		{"missing + 1", "undefined"}, {"1 + missing", "undefined"},
		// int64 overflow continues as Decimal
		{"9223372036854775807 + 1", "9223372036854776000"}, {"-9223372036854775807 - 2", "-9223372036854776000"},
		{"4611686018427387904 * 4", "18446744073709552000"}, {"(-9223372036854775807 - 1) / -1", "9223372036854776000"},
		// precedence and associativity
		{"1 + 2 * 3", "7"}, {"(1 + 2) * 3", "9"}, {"10 - 2 - 3", "5"}, {"2 * 3 % 4", "2"}, {"100 / 10 / 5", "2"},
		{"ts + 0", "1763780000123"},
		// concatenation operator
		{"'a' || 'b'", `"ab"`}, {"1 || 2", `"12"`}, {"s || missing", "undefined"},
		// equality
		{"i = 7", "true"}, {"i = 7.0", "true"}, {"d = 2.5", "true"}, {"i = '7'", "false"}, {"s = 'abc'", "true"},
		{`s = "abc"`, "true"}, {"i <> j", "true"}, {"i != 7", "false"}, {"i <> '7'", "true"},
		{"z = null", "true"}, {"z <> null", "false"}, {"t = true", "true"}, {"t = 'true'", "false"},
		{"a = [1, 2, 3]", "true"}, {"a = [1, 3, 2]", "false"}, {"a = [1.0, 2, 3]", "true"},
		{"o = {'n': 1, 'k': 'v'}", "true"}, {"o = {'k': 'v'}", "false"}, {"nest = {'b': [{'c': 1}]}", "true"},
		{"missing = 1", "undefined"}, {"missing <> 1", "undefined"}, {"missing = missing", "undefined"},
		// ordering converts both sides to numbers
		{"i > j", "true"}, {"i >= 7", "true"}, {"i < d", "false"}, {"i <= 7.5", "true"}, {"n > 9", "true"},
		{"'2' < '10'", "true"}, {"s > 1", "undefined"}, {"t > 0", "undefined"}, {"missing < 1", "undefined"},
		{"ts > 1763780000122", "true"}, {"9007199254740993 > 9007199254740992", "true"},
		// logic: Booleans or "true"/"false" strings, anything else is Undefined
		{"t AND f", "false"}, {"t AND t", "true"}, {"t OR f", "true"}, {"f OR f", "false"}, {"NOT t", "false"},
		{"NOT 'false'", "true"}, {"t AND 'TRUE'", "true"}, {"t AND missing", "undefined"},
		{"f AND missing", "undefined"}, {"t OR missing", "undefined"}, {"NOT 1", "undefined"}, {"NOT missing", "undefined"},
		{"t OR i", "undefined"}, {"NOT i = 7", "false"}, {"i = 7 AND j = 2 OR f", "true"}, {"f AND f OR t", "true"},
		// paths
		{"o.k", `"v"`}, {"o.missing", "undefined"}, {"o.k.x", "undefined"}, {"s.x", "undefined"},
		{"a[1]", "2"}, {"a[5]", "undefined"}, {"a[-1]", "undefined"}, {"a[j]", "3"}, {"a[1 + 1]", "3"},
		{"a['1']", "undefined"}, {"o['k']", `"v"`}, {"nest.b[0].c", "1"}, {"nest.b[0]", `{"c":1}`},
		{"missing.x.y", "undefined"}, {"`i`", "7"}, {"i.x", "undefined"}, {"get(o, 'k').x", "undefined"},
		{"[a, o][1].n", "1"},
		// literals
		{"'x'", `"x"`}, {`"x"`, `"x"`}, {"1.5", "1.5"}, {"-1.5", "-1.5"}, {"true", "true"}, {"null", "null"},
		{"[1, 'a', z]", `[1,"a",null]`}, {"[missing]", "[null]"}, {"{'k': i, \"l\": missing}", `{"k":7}`},
		{"{}", "{}"}, {"[]", "[]"}, {`'tab\there \u00e9 \'q\''`, `"tab\there é 'q'"`}, {"1e3", "1000"},
		{"0.000001", "0.000001"}, {"0.0000001", "1e-7"},
		// CASE
		{"CASE i WHEN 7 THEN 'seven' ELSE 'other' END", `"seven"`},
		{"CASE i WHEN 8 THEN 'eight' ELSE 'other' END", `"other"`},
		{"CASE WHEN i > 10 THEN 'big' WHEN i > 5 THEN 'mid' END", `"mid"`},
		{"CASE WHEN f THEN 1 END", "undefined"}, {"case missing when 1 then 1 else 2 end", "2"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			if got := evalValue(t, tt.expr, testPayload); got != tt.want {
				t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
			}
		})
	}
}

func TestFunctions(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"timestamp()", "1763780000123"},
		{"topic()", `"fleet/D1/report"`}, {"topic(1)", `"fleet"`}, {"topic(3)", `"report"`},
		{"topic(4)", "undefined"}, {"topic(j)", `"D1"`}, {"topic('2')", `"D1"`}, {"topic(2.9)", `"D1"`},
		{"topic(neg)", "undefined"}, {"topic(s)", "undefined"},
		{"clientid()", `"D1"`}, {"principal()", "undefined"},
		{"lower('AbC')", `"abc"`}, {"upper(s)", `"ABC"`}, {"lower(1)", `"1"`}, {"upper(a)", `"[1,2,3]"`},
		{"lower(z)", "undefined"}, {"upper(missing)", "undefined"}, {"upper(u)", `"HÉLLO"`},
		{"trim('  hi ')", `"hi"`}, {"ltrim('  hi ')", `"hi "`}, {"rtrim('  hi ')", `"  hi"`}, {"ltrim(z)", "undefined"},
		{"indexof('abcd', 'bc')", "1"}, {"indexof(u, 'l')", "2"}, {"indexof(s, 'x')", "-1"}, {"indexof(123, 2)", "1"},
		{"indexof(s, missing)", "undefined"}, {"indexof(z, 'a')", "undefined"},
		{"replace('a-b-c', '-', '/')", `"a/b/c"`}, {"replace(i, 7, 'seven')", `"seven"`}, {"replace(s, 'b', z)", "undefined"},
		{"replace(missing, 'a', 'b')", "undefined"},
		{"index()", "undefined"}, {"length(u)", "5"}, {"length(false)", "5"}, {"length(z)", "undefined"},
		{"concat()", "undefined"}, {"concat(s)", `"abc"`}, {"concat(i)", "7"}, {"concat(s, 'd', i)", `"abcd7"`},
		{"concat(1, 2)", `"12"`}, {"concat(a, 4)", "[1,2,3,4]"}, {"concat(a, 'x', [5, 6])", `[1,2,3,"x",5,6]`},
		{"concat(s, missing)", "undefined"}, {"concat(s, z)", "undefined"},
		{"substring('012345', 0)", `"012345"`}, {"substring('012345', 2)", `"2345"`},
		{"substring('012345', 2.745)", `"2345"`}, {"substring(123, 2)", `"3"`},
		{"substring('012345', -1)", `"012345"`}, {"substring(true, 1.2)", `"rue"`},
		{"substring(false, -2.411E247)", `"false"`}, {"substring('012345', 1, 3)", `"12"`},
		{"substring('012345', -50, 50)", `"012345"`}, {"substring('012345', 3, 1)", `""`},
		{"substring(u, 1, 3)", `"él"`}, {"substring(s, 'x')", "undefined"}, {"substring(z, 1)", "undefined"},
		{"startswith('ranger', 'ran')", "true"}, {"startswith(s, 'b')", "false"}, {"startswith(123, 1)", "true"},
		{"startswith(z, 'a')", "undefined"}, {"startswith(s, missing)", "undefined"},
		{"endswith('cat', 'at')", "true"}, {"endswith(s, 'a')", "false"},
		{"isUndefined(missing)", "true"}, {"isUndefined(z)", "false"}, {"isUndefined(floor(a))", "true"},
		{"isNull(z)", "true"}, {"isNull(missing)", "false"}, {"isNull(5)", "false"},
		{"cast(true AS Int)", "1"}, {"cast(false AS Integer)", "0"}, {"cast('12.7' AS Int)", "12"},
		{"cast(-12.7 AS Int)", "-12"}, {"cast(i AS Int)", "7"}, {"cast(d AS String)", `"2.5"`},
		{"cast(i AS varchar)", `"7"`}, {"cast(i AS Decimal)", "7"}, {"cast('1.25' AS Double)", "1.25"},
		{"cast(false AS Decimal)", "0"}, {"cast(0 AS Bool)", "false"}, {"cast(d AS Boolean)", "true"},
		{"cast('TRUE' AS Bool)", "true"}, {"cast('yes' AS Bool)", "undefined"}, {"cast(z AS String)", "undefined"},
		{"cast(o AS String)", `"{\"k\":\"v\",\"n\":1}"`}, {"cast(a AS Int)", "undefined"}, {"cast(missing AS Int)", "undefined"},
		{"cast(s AS Int)", "undefined"}, {"cast(n AS Int) + 1", "11"},
		{"get(a, 1)", "2"}, {"get(a, '1')", "2"}, {"get(a, 1.7)", "2"}, {"get(o, 'k')", `"v"`}, {"get(o, 1)", "undefined"},
		{"get('abc', 1)", `"b"`}, {"get(u, 1)", `"é"`}, {"get(a, 9)", "undefined"}, {"get(i, 0)", "undefined"},
		{"get(*, 's')", `"abc"`}, {"get(get(nest, 'b'), 0)", `{"c":1}`},
		{"encode(s, 'BASE64')", `"YWJj"`}, {"encode(i, 'base64')", `"Nw=="`}, {"encode(missing, 'base64')", "undefined"},
		{"abs(-5)", "5"}, {"abs(neg)", "3"}, {"abs(-2.5)", "2.5"}, {"abs('-5.123')", "5.123"}, {"abs(t)", "undefined"},
		{"abs(-9223372036854775807 - 1)", "9223372036854776000"},
		{"round(1.5)", "2"}, {"round(-1.5)", "-2"}, {"round(1.2)", "1"}, {"round(-1.1)", "-1"}, {"round(i)", "7"},
		{"round('2.5')", "3"}, {"ceil(1.2)", "2"}, {"ceil(-1.2)", "-1"}, {"floor(1.7)", "1"}, {"floor(-1.2)", "-2"},
		{"floor(s)", "undefined"},
		{`parse_time("yyyy-MM-dd'T'HH:mm:ssz", 1763780000000)`, `"2025-11-22T02:53:20UTC"`},
		{`parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp())`, `"2025-11-22T02:53:20UTC"`},
		{`parse_time('yyyy-MM-dd HH:mm', ts, 'Asia/Seoul')`, `"2025-11-22 11:53"`},
		{`parse_time('HH:mm', '1763780000123')`, `"02:53"`}, {`parse_time('HH:mm:ss.SSS', 1763780000123.9)`, `"02:53:20.123"`},
		{`parse_time('yyyy', s)`, "undefined"}, {`parse_time('yyyy', missing)`, "undefined"},
		{`parse_time(lower('YYYY'), 0)`, `"1970"`}, {`parse_time('HH', 0, concat('Asia/', 'Seoul'))`, `"09"`},
		{`parse_time('yyyy', 0, i)`, "undefined"}, {`parse_time(i, 0)`, "undefined"},
		{`time_to_epoch('2025-11-22 11:53:20', 'yyyy-MM-dd HH:mm:ss')`, "1763812400000"},
		{`time_to_epoch(missing, 'yyyy')`, "undefined"}, {`time_to_epoch(concat('20', '25'), 'yyyy')`, "1735689600000"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			if got := evalValue(t, tt.expr, testPayload); got != tt.want {
				t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
			}
		})
	}
}

func TestFunctionsOfTheMessage(t *testing.T) {
	q, err := ParseQuery("SELECT clientid() AS c, principal() AS p, newuuid() AS u, newuuid() AS v, encode(*, 'base64') AS b FROM '#'")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("anonymous without client id", func(t *testing.T) {
		msg := &Message{Topic: "t", Payload: []byte("\x00\x01 not json")}
		out, _, err := q.Eval(NewEnv(msg))
		if err != nil {
			t.Fatal(err)
		}
		m := decodeObject(t, out)
		if m["c"] != "n/a" {
			t.Errorf("clientid() = %v, want n/a", m["c"])
		}
		if _, ok := m["p"]; ok {
			t.Errorf("principal() = %v, want it left out", m["p"])
		}
		if m["b"] != base64.StdEncoding.EncodeToString(msg.Payload) {
			t.Errorf("encode(*) = %v", m["b"])
		}
		uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
		if u, _ := m["u"].(string); !uuid.MatchString(u) {
			t.Errorf("newuuid() = %q, not a v4 UUID", u)
		}
		if m["u"] == m["v"] {
			t.Errorf("two newuuid() calls gave %v", m["u"])
		}
	})
	t.Run("authenticated", func(t *testing.T) {
		msg := &Message{Topic: "t", ClientID: "STS-1", Principal: "user1", Payload: []byte(`{}`)}
		out, _, err := q.Eval(NewEnv(msg))
		if err != nil {
			t.Fatal(err)
		}
		m := decodeObject(t, out)
		if m["c"] != "STS-1" || m["p"] != "user1" {
			t.Errorf("clientid() = %v, principal() = %v", m["c"], m["p"])
		}
	})
	t.Run("now defaults to the current time", func(t *testing.T) {
		q, _ := ParseQuery("SELECT VALUE timestamp() FROM '#'")
		before := time.Now().UnixMilli()
		out, _, _ := q.Eval(NewEnv(&Message{Payload: []byte("{}")}))
		v, err := decodeJSON(out)
		if ms, ok := v.(int64); err != nil || !ok || ms < before || ms > time.Now().UnixMilli() {
			t.Errorf("timestamp() = %s", out)
		}
	})
}

func decodeObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	v, err := decodeJSON(b)
	if err != nil {
		t.Fatalf("output %q is not JSON: %v", b, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("output %q is not an object", b)
	}
	return m
}

func TestQueryEval(t *testing.T) {
	const defaultRule = `SELECT *, parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) AS timestamp FROM 'report'`
	tests := []struct {
		name, sql, payload string
		want               string // output; "" when not matched
	}{
		{"default rule", defaultRule,
			`{"type":"log","device_no":"D1","ts":1763780000123,"v":12.6,"big":123456789012345678901234567890,"e":1E+2,"s":"\u00e9\n"}`,
			`{"type":"log","device_no":"D1","ts":1763780000123,"v":12.6,"big":123456789012345678901234567890,"e":1E+2,"s":"\u00e9\n","timestamp":"2025-11-22T02:53:20UTC"}`},
		{"default rule replaces an existing timestamp in place", defaultRule,
			` { "timestamp" : 1, "a" : [ 1 , 2 ] } `, `{"timestamp":"2025-11-22T02:53:20UTC","a":[ 1 , 2 ]}`},
		{"SELECT * alone passes the payload through", `SELECT * FROM '#'`, " {\"a\": 1}\n", " {\"a\": 1}\n"},
		{"SELECT * alone passes binary through", `SELECT * FROM '#'`, "\x00\xff", "\x00\xff"},
		{"SELECT * alone with a WHERE on functions only", `SELECT * FROM '#' WHERE timestamp() % 1 = 0`, "bin", "bin"},
		{"field", `SELECT color FROM '#'`, `{"color":"red", "temperature":50}`, `{"color":"red"}`},
		{"aliases", `SELECT color AS my_color, temperature AS fahrenheit FROM '#'`,
			`{"color":"red", "temperature":50}`, `{"my_color":"red","fahrenheit":50}`},
		{"star with extra", `SELECT *, 15 AS speed FROM '#'`, `{"color":"red", "temperature":50}`,
			`{"color":"red","temperature":50,"speed":15}`},
		{"nested", `SELECT color.red AS red_value FROM '#'`, `{"color":{"red":255,"green":0,"blue":0}}`, `{"red_value":255}`},
		{"arithmetic and functions", `SELECT (temperature - 32) * 5 / 9 AS celsius, upper(color) AS my_color FROM '#'`,
			`{"color":"red", "temperature":50}`, `{"celsius":10,"my_color":"RED"}`},
		{"undefined items are left out", `SELECT a, b, c.d FROM '#'`, `{"a":1,"c":{}}`, `{"a":1}`},
		{"null is kept", `SELECT a, NULL AS n FROM '#'`, `{"a":null}`, `{"a":null,"n":null}`},
		{"undefined does not remove a payload member", `SELECT *, missing AS type FROM '#'`, `{"type":"log"}`, `{"type":"log"}`},
		{"duplicate payload keys collapse on override", `SELECT *, 3 AS a FROM '#'`, `{"a":1,"b":0,"a":2}`, `{"a":3,"b":0}`},
		{"payload overrides items before *", `SELECT 1 AS a, 2 AS c, * FROM '#'`, `{"a":5,"b":6}`, `{"c":2,"a":5,"b":6}`},
		{"later item wins", `SELECT 1 AS a, 2 AS a FROM '#'`, `{}`, `{"a":2}`},
		{"escaped payload key", `SELECT *, 'x' AS type FROM '#'`, `{"t\u0079pe":"log"}`, `{"t\u0079pe":"x"}`},
		{"object and array values", `SELECT o, a, {'z': 1, 'y': [true]} AS lit FROM '#'`, `{"o":{"b":1,"a":2},"a":[1,"x"]}`,
			`{"o":{"a":2,"b":1},"a":[1,"x"],"lit":{"y":[true],"z":1}}`},
		{"numbers keep their value", `SELECT big, f, i, neg FROM '#'`, `{"big":123456789012345678901234567890,"f":1.5e300,"i":-0,"neg":-12}`,
			`{"big":123456789012345678901234567890,"f":1.5e+300,"i":0,"neg":-12}`},
		{"epoch ms stays an integer", `SELECT ts, ts + 1 AS next FROM '#'`, `{"ts":1763780000123}`, `{"ts":1763780000123,"next":1763780000124}`},
		{"string escaping", `SELECT s FROM '#'`, `{"s":"a\"b\\c\u0001\u2028<>&"}`, `{"s":"a\"b\\c\u0001\u2028<>&"}`},
		{"WHERE true", `SELECT a FROM '#' WHERE a = 1`, `{"a":1}`, `{"a":1}`},
		{"WHERE false", `SELECT a FROM '#' WHERE a = 2`, `{"a":1}`, ""},
		{"WHERE undefined", `SELECT a FROM '#' WHERE b = 2`, `{"a":1}`, ""},
		{"WHERE not boolean", `SELECT a FROM '#' WHERE a`, `{"a":1}`, ""},
		{"WHERE string true", `SELECT a FROM '#' WHERE 'True'`, `{"a":1}`, `{"a":1}`},
		{"WHERE reads the payload, not the output", `SELECT 1 AS x FROM '#' WHERE x = 5`, `{"x":5}`, `{"x":1}`},
		{"SELECT VALUE", `SELECT VALUE color FROM '#'`, `{"color":"red"}`, `"red"`},
		{"SELECT VALUE object", `SELECT VALUE o FROM '#'`, `{"o":{"a":1}}`, `{"a":1}`},
		{"non-object JSON: fields are undefined", `SELECT a, 1 AS b FROM '#'`, `[1,2]`, `{"b":1}`},
		{"non-object JSON: star alone passes through", `SELECT * FROM '#'`, `"str"`, `"str"`},
		{"binary payload with functions only", `SELECT encode(*, 'base64') AS data, timestamp() AS ts FROM '#'`, "\x01\x02",
			`{"data":"AQI=","ts":1763780000123}`},
		{"empty object", `SELECT *, 1 AS x FROM '#'`, `{}`, `{"x":1}`},
		{"nothing selected", `SELECT a FROM '#'`, `{}`, `{}`},
		{"many items", `SELECT 1 AS a, 2 AS b, 3 AS c, 4 AS d, 5 AS e, 6 AS f, 7 AS g, 8 AS h, 9 AS i, 10 AS j FROM '#'`, `{}`,
			`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseQuery(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			msg := testMessage(tt.payload)
			msg.Received = time.UnixMilli(1763780000123)
			out, matched, err := q.Eval(NewEnv(msg))
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if matched != (tt.want != "") {
				t.Fatalf("matched = %v (output %q)", matched, out)
			}
			if string(out) != tt.want {
				t.Errorf("output\n got %s\nwant %s", out, tt.want)
			}
			if !q.starOnly && q.value == nil && matched && cap(out) != len(out) {
				t.Errorf("output of %d bytes in a buffer of %d: the size is not exact", len(out), cap(out))
			}
		})
	}
}

// TestEvalOutputOutlivesTheNextEval: the Env reuses its buffer of item
// values from one Eval to the next (a foreach evaluates once per element);
// an output handed out (to a record the sink holds) must not share it.
func TestEvalOutputOutlivesTheNextEval(t *testing.T) {
	c := NewCompiler(nil, Deps{})
	q, err := c.Query(`SELECT s.v AS v, parse_time('yyyy', s.t) AS y, s AS whole FROM '#'`, "s")
	if err != nil {
		t.Fatal(err)
	}
	each, err := c.Foreach("e AS s")
	if err != nil {
		t.Fatal(err)
	}
	// Long, short, long: the short one's output would sit in the buffer's
	// room that the third one's values need.
	long := strings.Repeat("long ", 60)
	env := NewEnv(testMessage(`{"e":[{"v":"` + long + `","t":0},{"v":"short","t":1e12},{"v":"` + long + long + `","t":-1e12}]}`))
	elems, err := each.Elements(env)
	if err != nil {
		t.Fatal(err)
	}
	var outs [][]byte
	var want []string
	for i, el := range elems {
		env.SetElement(i, el)
		out, _, err := q.Eval(env)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
		want = append(want, string(out))
	}
	for i := range outs {
		if string(outs[i]) != want[i] {
			t.Errorf("output %d was %s when made, is %s after the later ones", i, want[i], outs[i])
		}
	}
	if !strings.Contains(want[1], `"v":"short"`) || !strings.Contains(want[1], `"y":"2001"`) {
		t.Errorf("outputs %q", want)
	}
}

func TestManyPayloadMembers(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 40 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":1`)
	}
	b.WriteString("}")
	q, _ := ParseQuery("SELECT *, 2 AS k39, k0 AS first FROM '#'")
	out, _, err := q.Eval(NewEnv(testMessage(b.String())))
	if err != nil {
		t.Fatal(err)
	}
	m := decodeObject(t, out)
	if len(m) != 41 || m["k39"] != int64(2) || m["first"] != int64(1) {
		t.Errorf("output %s", out)
	}
}

func TestEvalErrors(t *testing.T) {
	tests := []struct {
		name, sql, payload, want string
	}{
		{"field of a non-JSON payload", `SELECT a FROM '#'`, `{"a":`, "payload is not valid JSON"},
		{"WHERE on a non-JSON payload", `SELECT * FROM '#' WHERE a = 1`, `not json`, "payload is not valid JSON"},
		{"star and items on a non-JSON payload", `SELECT *, 1 AS x FROM '#'`, "\x00", "payload is not valid JSON"},
		{"star and items on a JSON array", `SELECT *, 1 AS x FROM '#'`, "[1]", "needs a JSON object payload"},
		{"trailing data", `SELECT a FROM '#'`, `{"a":1} {"b":2}`, "data after the JSON value"},
		{"get(*) of a non-JSON payload", `SELECT get(*, 'a') AS a FROM '#'`, `x`, "payload is not valid JSON"},
		{"invalid pattern at run time", `SELECT parse_time(p, 0) AS t FROM '#'`, `{"p":"yyyy-qq"}`, "parse_time: invalid pattern"},
		{"invalid zone at run time", `SELECT parse_time('yyyy', 0, z) AS t FROM '#'`, `{"z":"Nowhere/City"}`, "parse_time: invalid time zone"},
		{"unparseable time", `SELECT time_to_epoch(s, 'yyyy-MM-dd') AS t FROM '#'`, `{"s":"2025/11/22"}`, "time_to_epoch: cannot parse"},
		{"invalid jdk pattern at run time", `SELECT time_to_epoch('2025', p) AS t FROM '#'`, `{"p":"yyyy[MM]"}`, "time_to_epoch: invalid pattern"},
		{"error inside an operator", `SELECT VALUE 1 + a FROM '#'`, `{`, "payload is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseQuery(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			out, matched, err := q.Eval(NewEnv(testMessage(tt.payload)))
			var ee *EvalError
			if !errors.As(err, &ee) {
				t.Fatalf("Eval = %q, %v, %v; want an *EvalError", out, matched, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if matched || out != nil {
				t.Errorf("Eval returned output %q, matched %v with the error", out, matched)
			}
		})
	}
}

func TestEnvDecoded(t *testing.T) {
	t.Run("object", func(t *testing.T) {
		env := NewEnv(testMessage(`{"a":1,"b":[1.5,"x",null,true],"c":{"d":12345678901234},"a":2}`))
		v, err := env.Decoded()
		if err != nil {
			t.Fatal(err)
		}
		m := v.(map[string]any)
		if m["a"] != int64(2) {
			t.Errorf("a = %#v, want the last duplicate, 2", m["a"])
		}
		b := m["b"].([]any)
		if b[0] != 1.5 || b[1] != "x" || b[2] != nil || b[3] != true {
			t.Errorf("b = %#v", b)
		}
		if m["c"].(map[string]any)["d"] != int64(12345678901234) {
			t.Errorf("c = %#v", m["c"])
		}
		if v2, err := env.Decoded(); err != nil || len(v2.(map[string]any)) != 3 {
			t.Errorf("second call = %v, %v", v2, err)
		}
	})
	t.Run("arrays of objects", func(t *testing.T) {
		// Keys that repeat, more distinct keys than the key cache holds,
		// escaped keys, nested arrays, more elements than the stack buffer.
		var b strings.Builder
		b.WriteString(`{"e":[`)
		for i := range 20 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"ax":%d,"k%d":"v","\u0061y":[{"ax":1},{"bx":[]}],"az":{"ax":"%d"}}`, i, i%7, i)
		}
		b.WriteString(`],"f":[[1],[],[{"a":1}],"s",null]}`)
		v, err := NewEnv(testMessage(b.String())).Decoded()
		if err != nil {
			t.Fatal(err)
		}
		var want any
		d := json.NewDecoder(strings.NewReader(b.String()))
		d.UseNumber()
		if err := d.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(want)) {
			t.Errorf("Decoded = %v\nwant %v", v, want)
		}
	})
	t.Run("scalar", func(t *testing.T) {
		v, err := NewEnv(testMessage(` "x" `)).Decoded()
		if err != nil || v != "x" {
			t.Errorf("Decoded = %#v, %v", v, err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for _, p := range []string{"", "{", `{"a"}`, `{"a":1,}`, `[1,]`, `{"a":01}`, `"\x01"`, `{"a":tru}`, `nul`, `1.`, `-`, `"\u12"`, `{} x`} {
			if v, err := NewEnv(testMessage(p)).Decoded(); err == nil {
				t.Errorf("Decoded(%q) = %#v, want an error", p, v)
			}
		}
	})
}

// TestFieldJSON: FieldJSON gives what SELECT VALUE gives, copying the text
// as written only where that is the same.
func TestFieldJSON(t *testing.T) {
	for _, tt := range []struct {
		value string // as written
		want  string // as SELECT VALUE gives it
		count int
	}{
		{`"STS-00000123"`, `"STS-00000123"`, 1},
		{`"Kim 김"`, `"Kim 김"`, 1},
		{`"a\u0041\n"`, `"aA\n"`, 1},
		{`"a\/b"`, `"a/b"`, 1},
		{"\"\xffx\"", `"\ufffdx"`, 1},
		{"\"a\u2028b\u2029\"", `"a\u2028b\u2029"`, 1},
		{`12`, `12`, 1},
		{`-12`, `-12`, 1},
		{`-0`, `0`, 1},
		{`123456789012345678901234567890`, `123456789012345678901234567890`, 1},
		{`12.50`, `12.5`, 1},
		{`1e3`, `1000`, 1},
		{`true`, `true`, 1},
		{`null`, `null`, 1},
		{`[1, "x"]`, `[1,"x"]`, 1},
		{`{"b":1, "a":2}`, `{"a":2,"b":1}`, 1},
	} {
		t.Run(tt.value, func(t *testing.T) {
			env := NewEnv(testMessage(`{"k":0,"f":` + tt.value + `}`))
			got, n := env.FieldJSON("f")
			if string(got) != tt.want || n != tt.count {
				t.Errorf("FieldJSON = %s, %d; want %s, %d", got, n, tt.want, tt.count)
			}
			q := mustQuery("SELECT VALUE f FROM '#'")
			if want, _, _ := q.Eval(NewEnv(testMessage(`{"k":0,"f":` + tt.value + `}`))); string(want) != string(got) {
				t.Errorf("FieldJSON = %s, SELECT VALUE = %s", got, want)
			}
		})
	}
	t.Run("duplicates", func(t *testing.T) {
		got, n := NewEnv(testMessage(`{"f":"a","\u0066":"b","g":1,"f":"c"}`)).FieldJSON("f")
		if string(got) != `"c"` || n != 3 {
			t.Errorf("FieldJSON = %s, %d; want the last one, \"c\", of 3", got, n)
		}
	})
	for _, p := range []string{`{"g":1}`, `[1]`, `"f"`, `not json`, `{"f":1`} {
		if got, n := NewEnv(testMessage(p)).FieldJSON("f"); got != nil || n != 0 {
			t.Errorf("FieldJSON on %s = %s, %d; want nothing", p, got, n)
		}
	}
}

// TestEnvReset: a reset Env is a new Env for its message, with nothing of
// the earlier message left, but the buffer of item values kept.
func TestEnvReset(t *testing.T) {
	a := testMessage(`{"type":"a","e":[{"v":1},{"v":2}],"device_no":"A","s":"x"}`)
	b := testMessage(`{"type":"b","device_no":"B"}`)
	b.Received = time.UnixMilli(1763780009999)
	env := NewEnv(a)
	q := mustQuery(`SELECT *, traceid() AS t, (SELECT VALUE v FROM e) AS vs, upper(s) AS u FROM '#'`)
	if _, _, err := q.Eval(env); err != nil {
		t.Fatal(err)
	}
	env.SetElement(1, "el")
	if _, err := env.Decoded(); err != nil {
		t.Fatal(err)
	}
	kept := cap(env.itemJSON)
	env.Reset(b)
	if cap(env.itemJSON) != kept || len(env.itemJSON) != 0 {
		t.Errorf("item buffer: cap %d len %d, want cap %d len 0", cap(env.itemJSON), len(env.itemJSON), kept)
	}
	if fresh := NewEnv(b); !reflect.DeepEqual(env.envState, fresh.envState) {
		t.Errorf("reset Env differs from NewEnv:\n%+v\n%+v", env.envState, fresh.envState)
	}
	env.Reset(b)
	out, _, err := mustQuery(`SELECT type, device_no, timestamp() AS ts, index() AS i FROM '#'`).Eval(env)
	if err != nil || string(out) != `{"type":"b","device_no":"B","ts":1763780009999}` {
		t.Errorf("after Reset: %s, %v", out, err)
	}
	if env.Reset(nil); !reflect.DeepEqual(env.envState, envState{}) {
		t.Errorf("Reset(nil) kept %+v", env.envState)
	}
	env.itemJSON = make([]byte, 0, 2*maxKeptItemJSON)
	if env.Reset(b); env.itemJSON != nil {
		t.Errorf("Reset kept a buffer of %d bytes", cap(env.itemJSON))
	}
}

// TestSpecialIn checks the eight-byte test of scanString against the
// byte-by-byte one: every byte value in every position among plain bytes,
// and words of random bytes.
func TestSpecialIn(t *testing.T) {
	special := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' }
	check := func(w [8]byte) {
		want := false
		for _, c := range w {
			want = want || special(c)
		}
		if got := specialIn(binary.LittleEndian.Uint64(w[:])); got != want {
			t.Fatalf("specialIn(%q) = %v, want %v", w, got, want)
		}
	}
	for _, fill := range []byte{' ', 'a', '!', '#', '[', ']', 0x7f, 0x80, 0xff} {
		for pos := range 8 {
			for c := range 256 {
				var w [8]byte
				for i := range w {
					w[i] = fill
				}
				w[pos] = byte(c)
				check(w)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		check(w)
	}
}

func TestUnquote(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"plain"`, "plain"},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t"},
		{`"\u00e9\u20ac"`, "é€"},
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud83d"`, "\ufffd"},
		{`"\ud83dx"`, "\ufffdx"},
		{`"\ude00\u0041"`, "\ufffdA"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := unquote([]byte(tt.in), true); got != tt.want {
				t.Errorf("unquote(%s) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestConcurrentEval shares compiled queries and templates between goroutines, as
// the engine does; run with -race.
func TestConcurrentEval(t *testing.T) {
	q := mustQuery(`SELECT *, parse_time(p, timestamp(), 'Asia/Seoul') AS local, time_to_epoch(s, f) AS e FROM '#' WHERE n > 1`)
	tp := mustTemplate("message-${type}-${parse_time(p, ts)}")
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 200 {
				payload := `{"type":"log","n":2,"ts":1763780000123,"p":"yyyy-MM-dd HH:mm '` + strconv.Itoa(g*1000+i%7) +
					`'","s":"2025-11-22","f":"yyyy-MM-dd"}`
				env := NewEnv(testMessage(payload))
				if _, _, e := q.Eval(env); e != nil {
					err = e
				}
				if _, e := tp.Eval(env); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
