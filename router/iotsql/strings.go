package iotsql

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// String functions. Unless a function says otherwise, its arguments are
// converted to Strings (numbers in their JSON form), and Null or Undefined
// give Undefined.

// strArg evaluates argument i of c converted to a String; ok is false for
// Null, Undefined and anything else that does not convert.
func strArg(env *Env, c *callExpr, i int) (s string, ok bool, err error) {
	v, err := c.args[i].eval(env)
	if err != nil {
		return "", false, err
	}
	s, ok = toStr(v)
	return s, ok, nil
}

// stringArg evaluates argument i of c, which must be a String (ok false
// otherwise): no conversion.
func stringArg(env *Env, c *callExpr, i int) (s string, ok bool, err error) {
	v, err := c.args[i].eval(env)
	if err != nil {
		return "", false, err
	}
	s, ok = v.(string)
	return s, ok, nil
}

func stringFuncs() []*funcDef {
	return []*funcDef{
		{name: "lower", minArgs: 1, maxArgs: 1, call: stringFunc(strings.ToLower)},
		{name: "upper", minArgs: 1, maxArgs: 1, call: stringFunc(strings.ToUpper)},
		{name: "trim", minArgs: 1, maxArgs: 1, call: stringFunc(strings.TrimSpace)},
		{name: "ltrim", minArgs: 1, maxArgs: 1, call: stringFunc(func(s string) string { return strings.TrimLeftFunc(s, unicode.IsSpace) })},
		{name: "rtrim", minArgs: 1, maxArgs: 1, call: stringFunc(func(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) })},
		{name: "indexof", minArgs: 2, maxArgs: 2, call: fnIndexOf},
		{name: "replace", minArgs: 3, maxArgs: 3, call: fnReplace},
		{name: "length", minArgs: 1, maxArgs: 1, call: fnLength},
		funcConcat,
		{name: "substring", minArgs: 2, maxArgs: 3, call: fnSubstring},
		{name: "startswith", minArgs: 2, maxArgs: 2, call: affixFunc(strings.HasPrefix)},
		{name: "endswith", minArgs: 2, maxArgs: 2, call: affixFunc(strings.HasSuffix)},
		{name: "chr", minArgs: 1, maxArgs: 1, call: fnChr},
		{name: "lpad", minArgs: 2, maxArgs: 2, call: padFunc(true)},
		{name: "rpad", minArgs: 2, maxArgs: 2, call: padFunc(false)},
		{name: "numbytes", minArgs: 1, maxArgs: 1, call: fnNumBytes},
	}
}

// chr(n) is the ASCII character n (an Int; a Decimal or numeric String is
// rounded down); Undefined for a number that is no ASCII value (AWS: "if the
// argument is not a valid ASCII value, the result is Undefined") or another
// type.
func fnChr(env *Env, c *callExpr) (any, error) {
	n, ok, err := intArg(env, c, 0)
	if err != nil || !ok {
		return undef, err
	}
	if n < 0 || n > unicode.MaxASCII {
		return undef, nil
	}
	return string(rune(n)), nil
}

// maxPad is the most spaces lpad and rpad add; AWS clamps the count to
// 0..1000.
const maxPad = 1000

// padFunc implements lpad(s, n) and rpad(s, n): s converted to a String by
// the standard conversions (AWS: "Other value | Int/Decimal/String: the
// first value is converted to a String using the standard conversions"; an
// Array or Object gives its JSON) with n spaces added on the left (or
// right). n is an Int (a Decimal or numeric String is rounded down) clamped
// to 0..1000; another type gives Undefined.
func padFunc(left bool) func(*Env, *callExpr) (any, error) {
	return func(env *Env, c *callExpr) (any, error) {
		s, ok, err := strArg(env, c, 0)
		if err != nil || !ok {
			return undef, err
		}
		n, ok, err := intArg(env, c, 1)
		if err != nil || !ok {
			return undef, err
		}
		pad := strings.Repeat(" ", int(max(0, min(n, maxPad))))
		if left {
			return pad + s, nil
		}
		return s + pad, nil
	}
}

// numbytes(s) is the number of bytes in UTF-8 of s converted to a String
// (AWS: "Standard conversion rules apply to non-String arguments":
// numbytes(123) is 3), an Int; Null or Undefined gives Undefined.
func fnNumBytes(env *Env, c *callExpr) (any, error) {
	s, ok, err := strArg(env, c, 0)
	if err != nil || !ok {
		return undef, err
	}
	return int64(len(s)), nil
}

var funcConcat = &funcDef{name: "concat", minArgs: 0, maxArgs: -1, call: fnConcat}

// stringFunc applies f to the argument converted to a String.
func stringFunc(f func(string) string) func(*Env, *callExpr) (any, error) {
	return func(env *Env, c *callExpr) (any, error) {
		s, ok, err := strArg(env, c, 0)
		if err != nil || !ok {
			return undef, err
		}
		return f(s), nil
	}
}

// length(s) is the number of characters of s converted to a String.
func fnLength(env *Env, c *callExpr) (any, error) {
	s, ok, err := strArg(env, c, 0)
	if err != nil || !ok {
		return undef, err
	}
	return int64(utf8.RuneCountInString(s)), nil
}

// concat: no argument is Undefined; one is returned as is; with several, if any is
// an Array the result is an Array of all of them (arrays spliced in), otherwise the
// String concatenation of their string forms. A Null or Undefined argument makes
// the string concatenation Undefined.
func fnConcat(env *Env, c *callExpr) (any, error) {
	switch len(c.args) {
	case 0:
		return undef, nil
	case 1:
		return c.args[0].eval(env)
	}
	var vbuf [4]any
	vals := vbuf[:0]
	hasArray := false
	for _, a := range c.args {
		v, err := a.eval(env)
		if err != nil {
			return nil, err
		}
		if _, ok := v.([]any); ok {
			hasArray = true
		}
		vals = append(vals, v)
	}
	if hasArray {
		var out []any
		for _, v := range vals {
			if a, ok := v.([]any); ok {
				out = append(out, a...)
			} else if !isUndef(v) {
				out = append(out, v)
			}
		}
		return out, nil
	}
	var sb strings.Builder
	for _, v := range vals {
		s, ok := toStr(v)
		if !ok {
			return undef, nil
		}
		sb.WriteString(s)
	}
	return sb.String(), nil
}

// indexof(s, sub) is the 0-based character position of the first sub in s,
// or -1; both are converted to Strings, Null or Undefined give Undefined.
func fnIndexOf(env *Env, c *callExpr) (any, error) {
	s, sub, ok, err := twoStrings(env, c)
	if err != nil || !ok {
		return undef, err
	}
	i := strings.Index(s, sub)
	if i < 0 {
		return int64(-1), nil
	}
	return int64(utf8.RuneCountInString(s[:i])), nil
}

// replace(s, old, new) replaces every old in s with new; all three are
// converted to Strings, Null or Undefined give Undefined.
func fnReplace(env *Env, c *callExpr) (any, error) {
	s, old, ok, err := twoStrings(env, c)
	if err != nil || !ok {
		return undef, err
	}
	repl, ok, err := strArg(env, c, 2)
	if err != nil || !ok {
		return undef, err
	}
	return strings.ReplaceAll(s, old, repl), nil
}

// twoStrings evaluates a call's first two arguments as Strings.
func twoStrings(env *Env, c *callExpr) (a, b string, ok bool, err error) {
	av, err := c.args[0].eval(env)
	if err != nil {
		return "", "", false, err
	}
	bv, err := c.args[1].eval(env)
	if err != nil {
		return "", "", false, err
	}
	if a, ok = toStr(av); !ok {
		return "", "", false, nil
	}
	b, ok = toStr(bv)
	return a, b, ok, nil
}

// substring(s, start[, end]) with 0-based character indexes, end exclusive;
// indexes are clamped to [0, len(s)] and start >= end gives "".
func fnSubstring(env *Env, c *callExpr) (any, error) {
	s, ok, err := strArg(env, c, 0)
	if err != nil || !ok {
		return undef, err
	}
	n := int64(utf8.RuneCountInString(s))
	clamp := func(i int64) int64 { return max(0, min(i, n)) }
	start, ok, err := intArg(env, c, 1)
	if err != nil || !ok {
		return undef, err
	}
	start, end := clamp(start), n
	if len(c.args) == 3 {
		e, ok, err := intArg(env, c, 2)
		if err != nil || !ok {
			return undef, err
		}
		end = clamp(e)
	}
	if start >= end {
		return "", nil
	}
	if n == int64(len(s)) { // ASCII
		return s[start:end], nil
	}
	return string([]rune(s)[start:end]), nil
}

// affixFunc implements startswith/endswith: both arguments converted to Strings;
// Null or Undefined gives Undefined.
func affixFunc(f func(s, affix string) bool) func(*Env, *callExpr) (any, error) {
	return func(env *Env, c *callExpr) (any, error) {
		a, err := c.args[0].eval(env)
		if err != nil {
			return nil, err
		}
		b, err := c.args[1].eval(env)
		if err != nil {
			return nil, err
		}
		as, ok := toStr(a)
		if !ok {
			return undef, nil
		}
		bs, ok := toStr(b)
		if !ok {
			return undef, nil
		}
		return f(as, bs), nil
	}
}
