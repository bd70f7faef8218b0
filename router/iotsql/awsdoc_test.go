package iotsql

import (
	"math"
	"reflect"
	"testing"
)

// docCase is one table case of the functions added for issue 12: an
// expression, its value as a Go value (so that an Int, int64, and a Decimal,
// float64, are told apart; undef for Undefined) and, for the AWS doc
// examples, where AWS shows it ("AWS: <function> example").
type docCase struct {
	expr string
	want any
	doc  string
}

// docPayload is the payload the cases read.
const docPayload = `{"i": 13, "d": 2.5, "s": "hello", "ns": "9", "b": true, "n": null, "a": [1, 2], "o": {"k": "v"}, "neg": -7}`

// evalAny evaluates src against msg and returns its value; an evaluation
// error fails the test.
func evalAny(t *testing.T, src string, msg *Message) any {
	t.Helper()
	q, err := ParseQuery("SELECT VALUE (" + src + ") FROM '#'")
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	v, err := q.value.eval(NewEnv(msg))
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return v
}

// sameValue compares values, Decimals within a relative 1e-15 (libm and
// Java's StrictMath may differ in the last bit).
func sameValue(got, want any) bool {
	if g, ok := got.(float64); ok {
		w, ok := want.(float64)
		return ok && (g == w || math.Abs(g-w) <= 1e-15*math.Max(math.Abs(g), math.Abs(w)))
	}
	return reflect.DeepEqual(got, want)
}

func runDocCases(t *testing.T, msg *Message, cases []docCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			got := evalAny(t, c.expr, msg)
			if !sameValue(got, c.want) {
				t.Errorf("%s = %#v (%T), want %#v (%T) %s", c.expr, got, got, c.want, c.want, c.doc)
			}
		})
	}
}

func TestDecodeJSONIsTheValueModel(t *testing.T) {
	v, err := DecodeJSON([]byte(`{"plate": "12가3456", "seats": 5, "kw": 150.5, "tags": ["a"]}`))
	want := map[string]any{"plate": "12가3456", "seats": int64(5), "kw": 150.5, "tags": []any{"a"}}
	if err != nil || !reflect.DeepEqual(v, want) {
		t.Errorf("DecodeJSON = %#v, %v", v, err)
	}
	if _, err := DecodeJSON([]byte(`{"a":`)); err == nil {
		t.Error("DecodeJSON accepted broken JSON")
	}
}
