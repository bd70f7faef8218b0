package iotsql

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzFunctions evaluates one expression, with the functions of issue 12 and
// nested SELECTs among the seeds, against one payload. Whatever the input:
// no panic, and a statement that parses evaluates to valid JSON or to an
// *EvalError.
func FuzzFunctions(f *testing.F) {
	const payload = `{"e":[{"n":"t","v":80},{"n":"l","v":1000},5,null],"s":"hihihello","i":13,"d":2.5,"o":{"k":[1,2]},"b64":"eyJhIjoxfQ=="}`
	for _, x := range []string{
		"mod(i, 3)", "power(d, i)", "sqrt(-1)", "sign(d)", "trunc(d, 40)", "trunc(1e300, 3)", "ln(0)", "log(i)", "exp(800)",
		"atan2(i, d)", "bitnot(i)", "bitand(d, '7')", "chr(1114111)", "lpad(s, 99999)", "rpad(o, 2)", "numbytes(s)",
		"regexp_matches(s, 'h(i)+')", "regexp_replace(s, '(h)(i)', '$2$1$10')", "regexp_substr(s, s)", "regexp_replace(s, '', '\\\\')",
		"md5(o)", "sha512(e)", "decode(b64, 'base64').a", "decode(s, 'base64')", "nanvl(missing, 1)", "get_or_default(x.y, e)",
		"sourceip()", "traceid()", "get_mqtt_property('content_type')", "get_user_properties(s)",
		"(SELECT VALUE v FROM e WHERE n = 't')", "(SELECT *, v * 2 AS w FROM e)", "(SELECT VALUE (SELECT VALUE k FROM o) FROM e)",
		"get((SELECT v FROM e), 0).v", "(SELECT VALUE k FROM o)",
		`parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp())`, `parse_time("yyyy 'é\"' MM", i, 'Asia/Seoul')`, "parse_time(s, d)", "parse_time('yyyy', s)", "parse_time('yyyy', i, s)", "s", "i", "d", "o",
		"transform('enrichArray', o, e)", "transform('enrichArray', (SELECT * FROM o), (SELECT VALUE e FROM o))", "regexp_matches(o, 1)", "regexp_replace(e, i, d)", "lpad(e, '3')", "numbytes(o)", "nanvl(null, e)", "sha256(e)",
	} {
		f.Add(x, []byte(payload))
	}
	f.Fuzz(func(t *testing.T, x string, payload []byte) {
		q, err := ParseQuery("SELECT VALUE (" + x + ") FROM '#'")
		if err != nil {
			return
		}
		msg := &Message{Source: "mqtt", Topic: "report", ClientID: "D1", Payload: payload, Received: time.UnixMilli(1763780000000)}
		out, _, err := q.Eval(NewEnv(msg))
		if err != nil {
			if _, ok := err.(*EvalError); !ok {
				t.Fatalf("%s: error %T %v, want an *EvalError", x, err, err)
			}
			return
		}
		if len(out) > 0 && !json.Valid(out) {
			t.Fatalf("%s: output %q is not JSON", x, out)
		}
		if lx := strings.ToLower(x); strings.Contains(lx, "rand") || strings.Contains(lx, "uuid") || strings.Contains(lx, "traceid") {
			return // random
		}
		// Written straight into the output, the value is what it is as a value.
		v, err := q.value.eval(NewEnv(msg))
		if err != nil {
			t.Fatalf("%s: eval: %v; Eval gave %s", x, err, out)
		}
		if want := appendJSON(nil, v); !bytes.Equal(out, want) || isUndef(v) != (len(out) == 0) {
			t.Fatalf("%s: Eval gave %s, the value is %s", x, out, want)
		}
	})
}
