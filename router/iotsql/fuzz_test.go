package iotsql

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var fuzzQuerySeeds = []string{
	`SELECT *, parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) AS timestamp FROM 'report'`,
	`SELECT a.b[1].c, arr[0], topic(2), clientid() FROM 'fleet/+/report' WHERE a > 1 AND NOT b = 'x'`,
	`SELECT VALUE {'k': [1, 2.5, true, null, "s"]} FROM '#'`,
	`SELECT CASE a WHEN 1 THEN 'one' ELSE 'many' END AS n, cast(b AS Int) FROM 't'`,
	`SELECT encode(*, 'base64') AS data, get(*, 'k') FROM 't' WHERE (1 + 2) * 3 % 4 <> 0 OR x || 'y' = 'zy'`,
	`SELECT time_to_epoch(s, 'yyyyMMddHHmmss') AS ts, substring(s, -1, 3), concat(a, [1]) FROM 't'`,
	"SELECT `weird key` AS 'out', -a, 1e3, 'é\\u00e9' FROM \"t\"",
	`SELECT indexof(s, 'x'), replace(s, 'a', 'b'), ltrim(s), rtrim(s), index() FROM 't'`,
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range fuzzQuerySeeds {
		f.Add(s)
	}
	payloads := [][]byte{[]byte(`{"a":{"b":[0,{"c":1}]},"arr":[1],"s":"20251122115320","k":"v"}`), []byte("\x00binary"), []byte("[1]")}
	f.Fuzz(func(t *testing.T, sql string) {
		q, err := ParseQuery(sql)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("error %T is not a *SyntaxError", err)
			}
			return
		}
		for _, p := range payloads {
			env := NewEnv(&Message{Topic: "fleet/D1/report", Payload: p, Received: time.UnixMilli(1763780000000)})
			out, matched, err := q.Eval(env)
			if err != nil {
				if _, ok := err.(*EvalError); !ok {
					t.Fatalf("error %T is not an *EvalError", err)
				}
				continue
			}
			if matched && !q.starOnly && (q.value == nil || len(out) > 0) && !json.Valid(out) {
				t.Fatalf("query %q on %q: invalid JSON output %q", sql, p, out)
			}
		}
	})
}

func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{
		"message-${type}", "${clientid()}", "${topic(2)}-${upper(device_no)}", "$${a}$", "${",
		`${parse_time("yyyy/MM/dd", timestamp(), 'Asia/Seoul')}`, "${a.b[0]}${'}'}", "plain text", "${{'k':1}}",
	} {
		f.Add(s)
	}
	payload := []byte(`{"type":"log","device_no":"D1","a":{"b":["x"]}}`)
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTemplate(s)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("error %T is not a *SyntaxError", err)
			}
			return
		}
		got, err := tp.Eval(NewEnv(&Message{Topic: "a/b", Payload: payload}))
		if err != nil {
			if _, ok := err.(*EvalError); !ok {
				t.Fatalf("error %T is not an *EvalError", err)
			}
			return
		}
		if tp.IsLiteral() && got != tp.Literal() {
			t.Fatalf("literal template %q evaluated to %q, Literal() = %q", s, got, tp.Literal())
		}
		if !strings.Contains(s, "${") && got != s {
			t.Fatalf("template without ${ changed: %q -> %q", s, got)
		}
	})
}

var (
	fuzzStarPlus = mustQuery(`SELECT *, 1 AS zz_extra FROM '#'`)
	fuzzDefault  = mustQuery(`SELECT *, parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) AS timestamp FROM 'report'`)
	fuzzFields   = mustQuery(`SELECT a, a.b, arr[1], lower(s), cast(n AS Int) AS i, n + 1, s || n, concat(arr, s),
		substring(s, 1, 3), get(*, 'type'), time_to_epoch(s, 'yyyyMMdd') AS e, parse_time('yyyy', n) AS y
		FROM '#' WHERE isUndefined(zz) OR zz <> 3`)
	fuzzTemplate = mustTemplate("message-${type}-${device_no}-${n * 2}")
	// fuzzEarlier is the message an Env evaluates before it is reset to the
	// fuzzed one: many members, long values, in the fields fuzzFields reads.
	fuzzEarlier = `{"a":{"b":[1,2,3]},"arr":["x","y"],"s":"` + strings.Repeat("long ", 40) + `","n":"12345","zz":1,` +
		`"type":"t","device_no":"D0","k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,` +
		`"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18,"k19":19,"k20":20,"k21":21,"k22":22,"k23":23,"k24":24,"k25":25,"k26":26,"k27":27,"k28":28,"k29":29,"k30":30}`
)

func mustQuery(sql string) *Query {
	q, err := ParseQuery(sql)
	if err != nil {
		panic(err)
	}
	return q
}

func mustTemplate(s string) *Template {
	t, err := ParseTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

func FuzzEval(f *testing.F) {
	for _, s := range []string{
		`{"type":"log","device_no":"D1","ts":1763780000123,"v":12.6}`,
		`{"a":{"b":1},"arr":[1,"x",null],"s":"20251122","n":"42","zz":3}`,
		` { "a" : "\u00e9\ud83d\ude00\n" , "a" : [ ] } `,
		`{"big":123456789012345678901234567890,"f":1.5e300,"inf":1e999,"neg":-0.0}`,
		`[1,2]`, `"str"`, `null`, `{"a":1}{`, "\x00\xff", `{"\u0074ype":"x"}`, `{"a":"\xff"}`, "",
		"{\"\":\"\xfb\xe1\"}", "{\"\x89\":0}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		msg := &Message{Topic: "report", ClientID: "D1", Payload: payload, Received: time.UnixMilli(1763780000000)}

		// The validating scanner agrees with encoding/json.
		valid := validJSON(payload) == nil
		if valid != json.Valid(payload) {
			t.Fatalf("validJSON = %v, json.Valid = %v for %q", valid, !valid, payload)
		}

		// Decoded agrees with encoding/json.
		env := NewEnv(msg)
		dec, err := env.Decoded()
		if (err == nil) != valid {
			t.Fatalf("Decoded error %v for valid=%v payload %q", err, valid, payload)
		}
		if valid {
			var want any
			d := json.NewDecoder(bytes.NewReader(payload))
			d.UseNumber()
			if err := d.Decode(&want); err != nil {
				t.Fatal(err)
			}
			if got := normalize(dec); !reflect.DeepEqual(got, normalize(want)) {
				t.Fatalf("Decoded = %#v, encoding/json = %#v", got, want)
			}
		}

		// SELECT *, x keeps every member of an object payload and adds x.
		out, matched, err := fuzzStarPlus.Eval(NewEnv(msg))
		obj, isObj := dec.(map[string]any)
		switch {
		case isObj:
			if err != nil || !matched {
				t.Fatalf("SELECT *, 1 on an object: %v %v", matched, err)
			}
			var got map[string]any
			d := json.NewDecoder(bytes.NewReader(out))
			d.UseNumber()
			if err := d.Decode(&got); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			want := make(map[string]any, len(obj)+1)
			for k, v := range obj {
				want[k] = v
			}
			want["zz_extra"] = int64(1)
			if g, w := normalize(got), normalize(want); !reflect.DeepEqual(g, w) {
				t.Fatalf("SELECT *, 1 AS zz_extra\n got %#v\nwant %#v", g, w)
			}
			// Byte for byte: each member as written, then the item.
			if _, has := obj["zz_extra"]; !has {
				env := NewEnv(msg)
				env.scan()
				b := []byte{'{'}
				for i := range env.members {
					b = append(append(append(b, env.rawKey(i)...), ':'), env.rawValue(i)...)
					b = append(b, ',')
				}
				if b = append(b, `"zz_extra":1}`...); !bytes.Equal(out, b) {
					t.Fatalf("SELECT *, 1 AS zz_extra\n got %s\nwant %s", out, b)
				}
			}
		case err == nil:
			t.Fatalf("SELECT *, 1 on a non-object payload %q: no error", payload)
		}

		// FieldJSON gives what SELECT VALUE gives, for every top-level name
		// a SQL string can spell.
		if isObj {
			for k := range obj {
				if !utf8.ValidString(k) {
					continue // a SQL string cannot name it
				}
				got, n := NewEnv(msg).FieldJSON(k)
				q := mustQuery("SELECT VALUE get(*, " + string(appendJSONString(nil, k)) + ") FROM '#'")
				want, _, _ := q.Eval(NewEnv(msg))
				if !bytes.Equal(got, want) || n < 1 {
					t.Fatalf("FieldJSON(%q) = %s, %d; SELECT VALUE gives %s", k, got, n, want)
				}
				if strings.Contains(k, "`") {
					continue
				}
				// A template copies the member's text as its value renders.
				direct, err := ParseTemplate("<${`" + k + "`}>")
				if err != nil {
					continue // not a name the lexer takes
				}
				viaValue := mustTemplate("<${get(*, " + string(appendJSONString(nil, k)) + ")}>")
				d, err1 := direct.Eval(NewEnv(msg))
				v, err2 := viaValue.Eval(NewEnv(msg))
				if d != v || err1 != nil || err2 != nil {
					t.Fatalf("template of %q: %q (%v), via its value %q (%v)", k, d, err1, v, err2)
				}
			}
		}

		// The other queries and templates never panic and produce JSON; an
		// Env reset from an earlier message gives what a new one gives.
		used := NewEnv(&Message{Topic: "report", Payload: []byte(fuzzEarlier)})
		for _, q := range []*Query{fuzzStarPlus, fuzzDefault, fuzzFields} {
			_, _, _ = q.Eval(used)
		}
		used.Reset(msg)
		for _, q := range []*Query{fuzzDefault, fuzzFields, fuzzStarPlus} {
			out, matched, err := q.Eval(NewEnv(msg))
			if err == nil && matched && !json.Valid(out) {
				t.Fatalf("query %q: invalid JSON %q", q, out)
			}
			if err != nil && isObj {
				t.Fatalf("query %q on an object payload: %v", q, err)
			}
			out2, matched2, err2 := q.Eval(used)
			if !bytes.Equal(out, out2) || matched != matched2 || (err == nil) != (err2 == nil) {
				t.Fatalf("query %q: %s %v %v on a new Env, %s %v %v on a reset one", q, out, matched, err, out2, matched2, err2)
			}
		}
		if _, err := fuzzTemplate.Eval(NewEnv(msg)); err != nil && valid {
			t.Fatalf("template on valid JSON: %v", err)
		}
	})
}

// normalize maps decoded JSON to comparable values: numbers become float64.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[validUTF8(k)] = normalize(e)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			a[i] = normalize(e)
		}
		return a
	case json.Number:
		f, _ := v.Float64()
		return f
	case int64:
		return float64(v)
	case string:
		return validUTF8(v)
	}
	return v
}

// validUTF8 replaces each invalid byte with U+FFFD, as encoding/json does.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

// FuzzForeach compiles a foreach clause with a query and a template that use
// its alias, and runs them over every element of a payload: nothing
// panics, errors have the documented types, output is JSON.
func FuzzForeach(f *testing.F) {
	for _, s := range []string{"samples AS s", "a.b[0] AS x", "concat(a, [1]) AS s", "samples", "AS s", "s AS select", "[1, {'k': 2}] AS e"} {
		f.Add(s)
	}
	payload := []byte(`{"samples":[{"ax":1},{"ax":2.5},3,null,"s"],"a":{"b":[[1,2]]},"s":"field"}`)
	f.Fuzz(func(t *testing.T, src string) {
		fe, err := ParseForeach(src)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("error %T is not a *SyntaxError", err)
			}
			return
		}
		alias := fe.Alias()
		q, err := parseQuery("SELECT "+alias+", "+alias+".ax AS ax, index() AS i FROM '#'", alias)
		if err != nil {
			return // an alias that cannot be an expression, e.g. a keyword
		}
		tmpl, err := parseTemplate("${"+alias+"}-${index()}", alias)
		if err != nil {
			t.Fatalf("template with alias %q: %v", alias, err)
		}
		env := NewEnv(&Message{Topic: "t", Payload: payload, Received: time.UnixMilli(1763780000000)})
		elems, err := fe.Elements(env)
		if err != nil {
			if _, ok := err.(*EvalError); !ok {
				t.Fatalf("error %T is not an *EvalError", err)
			}
			return
		}
		for i, el := range elems {
			env.SetElement(i, el)
			out, ok, err := q.Eval(env)
			if err == nil && ok && !json.Valid(out) {
				t.Fatalf("element %d: invalid JSON %q", i, out)
			}
			if _, err := tmpl.Eval(env); err != nil {
				t.Fatalf("template: %v", err)
			}
		}
		env.ClearElement()
	})
}
