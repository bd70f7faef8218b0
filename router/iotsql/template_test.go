package iotsql

import (
	"errors"
	"strings"
	"testing"
)

func TestTemplateEval(t *testing.T) {
	const payload = `{"type":"log","device_no":"D1","n":42,"d":12.6,"b":true,"z":null,"o":{"k":"v"},"a":[1,"x"],"ts":1763780000123}`
	tests := []struct {
		tmpl, payload, want string
	}{
		{"message-${type}", payload, "message-log"},
		{"message-${type}", `{"device_no":"D1"}`, "message-"},
		{"${device_no}", payload, "D1"},
		{"${n}", payload, "42"},
		{"${d}|${b}|${z}|${o}|${a}|${missing}", payload, `12.6|true|null|{"k":"v"}|[1,"x"]|`},
		{"${ts}", payload, "1763780000123"},
		{"${clientid()}", payload, "D1"},
		{"${topic(2)}/${topic()}", payload, "D1/fleet/D1/report"},
		{"${upper(type)}-${n + 1}-${concat(type, '-', device_no)}", payload, "LOG-43-log-D1"},
		{`${parse_time("yyyy/MM/dd", timestamp())}`, payload, "2025/11/22"},
		{`${parse_time('yyyy', timestamp(), 'Asia/Seoul')}`, payload, "2025"},
		{"${o.k}${a[1]}", payload, "vx"},
		{"${get(o, 'k')}", payload, "v"},
		{"cost: $5, ${n}$", payload, "cost: $5, 42$"},
		{"$${type}", payload, "$log"},
		{"${ type }", payload, "log"},
		{"{${type}}", payload, "{log}"},
		{"${{'k': n}}", payload, `{"k":42}`},
		{"${CASE WHEN n > 40 THEN 'big' ELSE 'small' END}", payload, "big"},
		{"plain", payload, "plain"},
		{"", payload, ""},
		{"${'lit'}", "not json", "lit"},
		{"${clientid()}-${timestamp()}", "not json", "D1-1763780000123"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			tp, err := ParseTemplate(tt.tmpl)
			if err != nil {
				t.Fatalf("ParseTemplate: %v", err)
			}
			got, err := tp.Eval(NewEnv(testMessage(tt.payload)))
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if got != tt.want {
				t.Errorf("Eval = %q, want %q", got, tt.want)
			}
			if tp.String() != tt.tmpl {
				t.Errorf("String() = %q", tp.String())
			}
		})
	}
}

// TestTemplateCopiesPayloadText: a member that a template copies from the
// payload's text renders as its decoded value does.
func TestTemplateCopiesPayloadText(t *testing.T) {
	direct, viaValue := mustTemplate("<${a}>"), mustTemplate("<${get(*, 'a')}>")
	for _, tt := range []struct{ value, want string }{
		{`"D1"`, "<D1>"},
		{`"Kim 김"`, "<Kim 김>"},
		{"\"\xff\u2028\"", "<\xff\u2028>"},
		{`"a\u0041\"\\"`, `<aA"\>`},
		{`""`, "<>"},
		{`42`, "<42>"},
		{`-0`, "<0>"},
		{`12.50`, "<12.5>"},
		{`1E2`, "<100>"},
		{`99999999999999999999`, "<99999999999999999999>"},
		{`true`, "<true>"},
		{`null`, "<null>"},
		{`{"k":"v", "b":1}`, `<{"b":1,"k":"v"}>`},
		{`[1, "x"]`, `<[1,"x"]>`},
	} {
		t.Run(tt.value, func(t *testing.T) {
			payload := `{"a":0,"b":1,"a":` + tt.value + `}`
			got, err := direct.AppendEval([]byte("x"), NewEnv(testMessage(payload)))
			if err != nil || string(got) != "x"+tt.want {
				t.Errorf("AppendEval = %q, %v; want %q", got, err, "x"+tt.want)
			}
			if want, _ := viaValue.Eval(NewEnv(testMessage(payload))); want != tt.want {
				t.Errorf("via the decoded value: %q, want %q", want, tt.want)
			}
		})
	}
	for payload, want := range map[string]string{`{"b":1}`: "<>", `[1]`: "<>", `"a"`: "<>"} {
		if got, err := direct.Eval(NewEnv(testMessage(payload))); err != nil || got != want {
			t.Errorf("Eval on %s = %q, %v; want %q", payload, got, err, want)
		}
	}
	got, err := direct.AppendEval([]byte("x"), NewEnv(testMessage(`not json`)))
	if err == nil || string(got) != "x" {
		t.Errorf("AppendEval on a non-JSON payload = %q, %v; want x and an error", got, err)
	}
}

func TestTemplateSeesThePayloadNotTheOutput(t *testing.T) {
	q, _ := ParseQuery("SELECT 'x' AS type, timestamp() AS t FROM '#'")
	tp, _ := ParseTemplate("${type}-${t}-${timestamp()}")
	env := NewEnv(&Message{Payload: []byte(`{"type":"log"}`)}) // Received is zero: now is fixed by the Env
	out, _, err := q.Eval(env)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.Eval(env)
	if err != nil {
		t.Fatal(err)
	}
	ts := decodeObject(t, out)["t"].(int64)
	if want := "log--" + itoa(ts); got != want {
		t.Errorf("template = %q, want %q (same timestamp as the SELECT)", got, want)
	}
}

func itoa(i int64) string { return string(appendJSON(nil, i)) }

func TestTemplateLiteral(t *testing.T) {
	tests := []struct {
		tmpl    string
		literal bool
		text    string
	}{
		{"message-dlq", true, "message-dlq"},
		{"", true, ""},
		{"$ {x} $", true, "$ {x} $"},
		{"message-${type}", false, "message-${type}"},
		{"${type}", false, "${type}"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			tp, err := ParseTemplate(tt.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			if tp.IsLiteral() != tt.literal || tp.Literal() != tt.text {
				t.Errorf("IsLiteral() = %v, Literal() = %q", tp.IsLiteral(), tp.Literal())
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct {
		tmpl      string
		line, col int
		msg       string
	}{
		{"message-${type", 1, 9, "unclosed '${': expected '}'"},
		{"message-${", 1, 9, "unclosed '${'"},
		{"a-${}", 1, 3, "empty ${}"},
		{"${type x}", 1, 8, "expected '}', found 'x'"},
		{"${nope()}", 1, 3, "unknown function 'nope'"},
		{"${topic(1, 2)}", 1, 3, "topic() takes 0 to 1 argument"},
		{"ok-${a}-${b +}", 1, 14, "expected an expression, found '}'"},
		{"${'abc}", 1, 3, "unterminated string"},
		{"line1\n${a b}", 2, 5, "expected '}'"},
		{"${parse_time('qq', 0)}", 1, 14, "illegal pattern component"},
		{"${*}", 1, 3, "expected an expression, found '*'"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			tp, err := ParseTemplate(tt.tmpl)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseTemplate = %v, %v; want a *SyntaxError", tp, err)
			}
			if tp != nil {
				t.Error("ParseTemplate returned a template with the error")
			}
			if se.Line != tt.line || se.Col != tt.col || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("error = %v; want line %d, column %d: ...%s...", err, tt.line, tt.col, tt.msg)
			}
		})
	}
}

func TestTemplateEvalErrors(t *testing.T) {
	tp, _ := ParseTemplate("message-${type}")
	_, err := tp.Eval(NewEnv(testMessage("\x00binary")))
	var ee *EvalError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "payload is not valid JSON") {
		t.Errorf("Eval on a binary payload = %v, want an *EvalError", err)
	}
	tp, _ = ParseTemplate("${type}")
	if _, err := tp.Eval(NewEnv(testMessage("{"))); err == nil {
		t.Error("single-expression template: no error on a broken payload")
	}
}
