package iotsql

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	runDocCases(t, testMessage(`{"doc": "eyJhIjoxLCJiIjpbIngiXX0=", "text": "aGVsbG8=", "nopad": "aGVsbG8", "bad": "!!", "i": 1}`), []docCase{
		{`decode(doc, 'base64')`, map[string]any{"a": int64(1), "b": []any{"x"}}, "AWS: decode, a JSON document gives an addressable object"},
		{`decode(doc, 'base64').b[0]`, "x", "AWS: decode, addressable"},
		{`decode(text, 'base64')`, "hello", "AWS: decode, otherwise the decoded String"},
		{`decode(nopad, 'base64')`, "hello", "padding is optional, as in Java's decoder"},
		{`decode(bad, 'base64')`, nil, "AWS: NULL when the string cannot be decoded"},
		{`decode(encode(text, 'base64'), 'BASE64')`, "aGVsbG8=", "round trip"},
		{`decode(i, 'base64')`, undef, ""}, {`decode(missing, 'base64')`, undef, ""},
	})
	// decode(*, 'base64'): the whole payload is the base64 text.
	q, err := ParseQuery(`SELECT decode(*, 'base64').a AS a, decode(*, 'base64') AS doc FROM 't'`)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := q.Eval(NewEnv(testMessage("eyJhIjoxLCJiIjpbIngiXX0=\n")))
	if err != nil || string(out) != `{"a":1,"doc":{"a":1,"b":["x"]}}` {
		t.Errorf("decode(*): %s %v", out, err)
	}
	if _, err := ParseQuery(`SELECT decode(a, 'proto') FROM 't'`); err == nil || !strings.Contains(err.Error(), "decode: the encoding must be the literal 'base64'") {
		t.Errorf("decode with proto: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	runDocCases(t, testMessage(docPayload), []docCase{
		{"nanvl(8, 3)", int64(8), "AWS: nanvl example"},
		{"nanvl(missing, 3)", int64(3), "Undefined is no valid Decimal"},
		{"nanvl(sqrt(-1), 0.0)", 0.0, "an operation that is not a number"},
		{"nanvl(d, 3)", 2.5, ""}, {"nanvl(n, 3)", int64(3), "AWS: nanvl table, Null | Any value: the second argument"}, {"nanvl(s, 3)", "hello", ""},
		{"get_or_default(s, 'x')", "hello", ""},
		{"get_or_default(missing, 'x')", "x", "AWS: get_or_default, Undefined gives the default"},
		{"get_or_default(n, 0)", int64(0), "AWS: get_or_default, Null gives the default"},
		{"get_or_default(o.k, 'x')", "v", ""}, {"get_or_default(o.nope, 'x')", "x", ""},
		{"get_or_default(missing)", undef, "AWS: without a default, Undefined"},
	})
	// AWS: a first argument that fails gives the default.
	q, err := ParseQuery(`SELECT VALUE get_or_default(a.b, 'not json') FROM 't'`)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := q.Eval(NewEnv(testMessage("\x00 binary")))
	if err != nil || string(out) != `"not json"` {
		t.Errorf("failing argument: %s %v", out, err)
	}
}
