package iotsql

import (
	"strings"
)

// Template is a compiled substitution template such as "message-${type}": literal
// text with ${expression} parts, where an expression is any expression of the rule
// language (a path, a function call such as clientid() or topic(2), arithmetic...).
// "$" not followed by "{" is literal text. A Template is immutable and safe for
// concurrent use.
type Template struct {
	src   string
	parts []templatePart
}

// templatePart is literal text, or an expression when x is not nil.
type templatePart struct {
	lit string
	x   expr
}

// ParseTemplate compiles a substitution template. Errors are *SyntaxError with the
// position in s: an expression that does not parse, an empty "${}" or a "${" with
// no closing "}".
//
// ParseTemplate knows the built-in functions only; a Compiler knows more.
func ParseTemplate(s string) (t *Template, err error) {
	return parseTemplate(s, "")
}

// parseTemplate is ParseTemplate for a rule with a foreach alias elem ("" for
// none).
func parseTemplate(s, elem string) (*Template, error) {
	return NewCompiler(nil, Deps{}).parseTemplate(s, elem)
}

func (c *Compiler) parseTemplate(s, elem string) (t *Template, err error) {
	t = &Template{src: s}
	var p *parser
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bail)
			if !ok {
				panic(r)
			}
			t, err = nil, b.err
		}
	}()
	var lit strings.Builder
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			lit.WriteString(s[i:])
			break
		}
		lit.WriteString(s[i : i+j])
		open := i + j
		p = c.parser(s, open+2)
		p.elem = elem
		p.advance()
		if p.tok.kind == tRBrace {
			p.fail(open, "empty ${}")
		}
		if p.tok.kind == tEOF {
			p.fail(open, "unclosed '${'")
		}
		x := p.parseExpr()
		switch p.tok.kind {
		case tRBrace:
		case tEOF:
			p.fail(open, "unclosed '${': expected '}'")
		default:
			p.fail(p.tok.pos, "expected '}', found %s", p.found())
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, templatePart{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, templatePart{x: x})
		i = p.tok.end
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, templatePart{lit: lit.String()})
	}
	return t, nil
}

// IsLiteral reports whether the template has no ${...} part, so that Literal is
// its value for every message.
func (t *Template) IsLiteral() bool {
	for _, p := range t.parts {
		if p.x != nil {
			return false
		}
	}
	return true
}

// Literal returns the text of a template without ${...} parts (see IsLiteral);
// for other templates it returns the source text.
func (t *Template) Literal() string {
	if !t.IsLiteral() {
		return t.src
	}
	if len(t.parts) == 0 {
		return ""
	}
	return t.parts[0].lit
}

// String returns the template's source text.
func (t *Template) String() string { return t.src }

// Eval renders the template for one message. As in IoT Core, expressions read the
// original payload, not the SELECT output (so AS aliases are not visible).
// Strings are inserted as they are (no quotes), numbers and booleans in their
// JSON form, arrays, objects and null as JSON, and Undefined as nothing. The error
// is an *EvalError, e.g. when an expression reads a field of a non-JSON payload.
func (t *Template) Eval(env *Env) (string, error) {
	switch len(t.parts) {
	case 0:
		return "", nil
	case 1:
		p := t.parts[0]
		if p.x == nil {
			return p.lit, nil
		}
		v, err := p.x.eval(env)
		if err != nil {
			return "", err
		}
		if s, ok := v.(string); ok {
			return s, nil
		}
		return string(appendTemplateValue(nil, v)), nil
	}
	var buf [128]byte
	b, err := t.AppendEval(buf[:0], env)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// AppendEval appends the template's rendering for one message to b (see
// Eval) and returns the extended buffer; on error, b as it was.
func (t *Template) AppendEval(b []byte, env *Env) ([]byte, error) {
	n := len(b)
	for _, p := range t.parts {
		if p.x == nil {
			b = append(b, p.lit...)
			continue
		}
		var err error
		if b, err = appendTemplateExpr(b, env, p.x); err != nil {
			return b[:n], err
		}
	}
	return b, nil
}

// appendTemplateExpr appends the value of x as a template inserts it. A
// member of the payload is copied from the payload's text where it can be,
// without decoding it.
func appendTemplateExpr(b []byte, env *Env, x expr) ([]byte, error) {
	if name, ok := topField(x); ok {
		i, err := env.lookup(name)
		if i < 0 {
			return b, err // Undefined inserts nothing
		}
		return env.appendMemberText(b, i), nil
	}
	v, err := x.eval(env)
	if err != nil {
		return b, err
	}
	return appendTemplateValue(b, v), nil
}

func appendTemplateValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return append(b, v...)
	case undefinedT:
		return b
	}
	return appendJSON(b, v)
}
