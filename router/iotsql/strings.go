package iotsql

import (
	"strings"
	"unicode/utf8"
)

// String functions of the AWS IoT SQL reference added with issue 12 (the
// older ones are in funcs.go).

func stringFuncs() []*funcDef {
	return []*funcDef{
		{name: "chr", minArgs: 1, maxArgs: 1, call: fnChr},
		{name: "lpad", minArgs: 2, maxArgs: 2, call: padFunc(true)},
		{name: "rpad", minArgs: 2, maxArgs: 2, call: padFunc(false)},
		{name: "numbytes", minArgs: 1, maxArgs: 1, call: fnNumBytes},
	}
}

// chr(n) is the one-character String of Unicode code point n (an Int; a
// Decimal or numeric String is rounded down); Undefined for a number that is
// no code point (negative, a surrogate, above U+10FFFF) or another type.
func fnChr(env *Env, c *callExpr) (any, error) {
	n, ok, err := intArg(env, c, 0)
	if err != nil || !ok {
		return undef, err
	}
	if n < 0 || n > utf8.MaxRune || !utf8.ValidRune(rune(n)) {
		return undef, nil
	}
	return string(rune(n)), nil
}

// maxPad is the most spaces lpad and rpad add; AWS clamps the count to
// 0..1000.
const maxPad = 1000

// padFunc implements lpad(s, n) and rpad(s, n): s converted to a String
// with n spaces added on the left (or right). n is an Int (a Decimal or
// numeric String is rounded down) clamped to 0..1000.
func padFunc(left bool) func(*Env, *callExpr) (any, error) {
	return func(env *Env, c *callExpr) (any, error) {
		v, err := c.args[0].eval(env)
		if err != nil {
			return nil, err
		}
		n, ok, err := intArg(env, c, 1)
		if err != nil || !ok {
			return undef, err
		}
		s, ok := toStr(v)
		if !ok {
			return undef, nil
		}
		pad := strings.Repeat(" ", int(max(0, min(n, maxPad))))
		if left {
			return pad + s, nil
		}
		return s + pad, nil
	}
}

// numbytes(s) is the number of bytes of the String s in UTF-8, an Int;
// Undefined for anything but a String.
func fnNumBytes(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	s, ok := v.(string)
	if !ok {
		return undef, nil
	}
	return int64(len(s)), nil
}
