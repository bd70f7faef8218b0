package iotsql

import (
	"errors"
	"strings"
	"testing"
)

// awsTransform is the message of AWS's transform examples 1 and 2.
const awsTransform = `{"attributes": {"data1": 1, "data2": 2}, "values": [{"a": 3}, {"b": 4}, {"c": 5}]}`

// awsTransform3 is the message of AWS's transform example 3.
const awsTransform3 = `{"data1": "example", "data2": {"a": "first attribute", "b": "second attribute",
  "c": [{"x": {"someInt": 5, "someString": "hello"}, "y": true}, {"x": {"someInt": 10, "someString": "world"}, "y": false}]}}`

func TestTransform(t *testing.T) {
	runQueryCases(t, []queryCase{
		{`select value transform("enrichArray", attributes, values) from 'A/B'`, awsTransform,
			`[{"a":3,"data1":1,"data2":2},{"b":4,"data1":1,"data2":2},{"c":5,"data1":1,"data2":2}]`, "AWS: transform example 1"},
		{`select value transform("enrichArray", {"key": attributes.data1}, values) from 'A/B'`, awsTransform,
			`[{"a":3,"key":1},{"b":4,"key":1},{"c":5,"key":1}]`, "AWS: transform example 2"},
		{`select value transform('enrichArray', (select a, b from data2), (select value c from data2)) from 'A/B'`, awsTransform3,
			`[{"a":"first attribute","b":"second attribute","x":{"someInt":5,"someString":"hello"},"y":true},` +
				`{"a":"first attribute","b":"second attribute","x":{"someInt":10,"someString":"world"},"y":false}]`, "AWS: transform example 3"},
		{`select transform(m, attributes, values) AS t from 'A/B'`, `{"m": "other", "attributes": {}, "values": [{}]}`, `{}`,
			"AWS: Any other value (mode): Undefined"},
		{`select transform('enrichArray', values, values) AS t from 'A/B'`, awsTransform, `{}`, "AWS: an Object that is not an Object: Undefined"},
		{`select transform('enrichArray', attributes, attributes) AS t from 'A/B'`, awsTransform, `{}`, "AWS: an Array that is not an Array: Undefined"},
		{`select transform('enrichArray', attributes, values) AS t from 'A/B'`, `{"attributes": {"a": 9}, "values": [{"a": 3, "z": 0}, 7, []]}`,
			`{"t":[{"a":9,"z":0}]}`, "[fleetgate] the object's member wins; elements that are not Objects are left out"},
		{`select transform('enrichArray', attributes, values) AS t from 'A/B'`, `{"attributes": {}, "values": []}`, `{"t":[]}`, ""},
	})
}

// TestTransformLimit: AWS limits the returned array to 128 KiB; past it
// the rule fails rather than a cut or unbounded result.
func TestTransformLimit(t *testing.T) {
	q, err := ParseQuery(`select value transform('enrichArray', attributes, values) from 'A/B'`)
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"attributes": {"pad": "` + strings.Repeat("x", 1000) + `"}, "values": [` + strings.Repeat(`{"a":1},`, 199) + `{"a":1}]}`
	_, _, err = q.Eval(NewEnv(testMessage(payload)))
	var ee *EvalError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "128 KiB") {
		t.Errorf("200 x 1 KB: %v, want an *EvalError about 128 KiB", err)
	}
	small := `{"attributes": {"pad": "x"}, "values": [` + strings.Repeat(`{"a":1},`, 199) + `{"a":1}]}`
	if _, _, err := q.Eval(NewEnv(testMessage(small))); err != nil {
		t.Errorf("200 small elements: %v", err)
	}
}

func TestTransformModeChecked(t *testing.T) {
	if _, err := ParseQuery(`select transform('enrich', a, b) from 't'`); err == nil || !strings.Contains(err.Error(), "transform: the mode must be 'enrichArray'") {
		t.Errorf("literal mode 'enrich': %v", err)
	}
}
