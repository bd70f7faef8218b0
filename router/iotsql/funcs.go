package iotsql

import (
	"github.com/fleetgate/fleetgate/router/timefmt"

	"crypto/rand"
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// funcDef describes a built-in function. Names are matched case-insensitively.
type funcDef struct {
	name             string
	minArgs, maxArgs int // maxArgs < 0: any number
	call             func(env *Env, c *callExpr) (any, error)
	// check validates and precompiles literal arguments at parse time; it returns
	// the index of the offending argument (-1 for the call) and a message.
	check func(c *callExpr) (int, string)
	// compile, for a registered Function, builds the call's evaluator.
	compile func(deps Deps, args []Arg) (Evaluator, error)
}

func (f *funcDef) arity() string {
	switch {
	case f.maxArgs < 0:
		return "at least " + plural(f.minArgs, "argument")
	case f.minArgs == f.maxArgs:
		return plural(f.minArgs, "argument")
	}
	return strconv.Itoa(f.minArgs) + " to " + plural(f.maxArgs, "argument")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

var funcConcat = &funcDef{name: "concat", minArgs: 0, maxArgs: -1, call: fnConcat}

// funcs maps lower-case function names to their definitions.
// builtinGroups are the built-in functions, one group per file; NewRegistry
// puts them in each new registry.
var builtinGroups = []func() []*funcDef{coreFuncs, mathFuncs, bitFuncs, stringFuncs, cryptoFuncs, regexpFuncs, messageFuncs, encodingFuncs, defaultFuncs}

// coreFuncs are the functions of this file.
func coreFuncs() []*funcDef {
	return []*funcDef{
		{name: "timestamp", call: fnTimestamp},
		{name: "parse_time", minArgs: 2, maxArgs: 3, call: fnParseTime, check: checkParseTime},
		{name: "time_to_epoch", minArgs: 2, maxArgs: 2, call: fnTimeToEpoch, check: checkTimeToEpoch},
		{name: "topic", minArgs: 0, maxArgs: 1, call: fnTopic, check: checkTopic},
		{name: "clientid", call: fnClientID},
		{name: "principal", call: fnPrincipal},
		{name: "newuuid", call: fnNewUUID},
		{name: "lower", minArgs: 1, maxArgs: 1, call: stringFunc(strings.ToLower)},
		{name: "upper", minArgs: 1, maxArgs: 1, call: stringFunc(strings.ToUpper)},
		{name: "trim", minArgs: 1, maxArgs: 1, call: stringFunc(strings.TrimSpace)},
		{name: "ltrim", minArgs: 1, maxArgs: 1, call: stringFunc(func(s string) string { return strings.TrimLeftFunc(s, unicode.IsSpace) })},
		{name: "rtrim", minArgs: 1, maxArgs: 1, call: stringFunc(func(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) })},
		{name: "indexof", minArgs: 2, maxArgs: 2, call: fnIndexOf},
		{name: "replace", minArgs: 3, maxArgs: 3, call: fnReplace},
		{name: "index", call: fnIndex},
		{name: "length", minArgs: 1, maxArgs: 1, call: fnLength},
		funcConcat,
		{name: "substring", minArgs: 2, maxArgs: 3, call: fnSubstring},
		{name: "startswith", minArgs: 2, maxArgs: 2, call: affixFunc(strings.HasPrefix)},
		{name: "endswith", minArgs: 2, maxArgs: 2, call: affixFunc(strings.HasSuffix)},
		{name: "isUndefined", minArgs: 1, maxArgs: 1, call: fnIsUndefined},
		{name: "isNull", minArgs: 1, maxArgs: 1, call: fnIsNull},
		{name: "get", minArgs: 2, maxArgs: 2, call: fnGet},
		{name: "encode", minArgs: 2, maxArgs: 2, call: fnEncode, check: checkEncode},
		{name: "abs", minArgs: 1, maxArgs: 1, call: fnAbs},
		{name: "round", minArgs: 1, maxArgs: 1, call: roundFunc(math.Round)},
		{name: "ceil", minArgs: 1, maxArgs: 1, call: roundFunc(math.Ceil)},
		{name: "floor", minArgs: 1, maxArgs: 1, call: roundFunc(math.Floor)},
	}
}

// literalString returns the value of argument i when it is a string literal; lit
// reports whether the argument is a literal at all.
func literalString(c *callExpr, i int) (s string, isString, lit bool) {
	l, ok := c.args[i].(*litExpr)
	if !ok {
		return "", false, false
	}
	s, isString = l.v.(string)
	return s, isString, true
}

func fnTimestamp(env *Env, _ *callExpr) (any, error) {
	return env.now.UnixMilli(), nil
}

func checkParseTime(c *callExpr) (int, string) {
	if s, isStr, lit := literalString(c, 0); lit {
		if !isStr {
			return 0, "parse_time: the pattern must be a string"
		}
		p, err := timefmt.CompileJoda(s)
		if err != nil {
			return 0, "parse_time: " + err.Error()
		}
		c.joda = p
	}
	if call, ok := c.args[1].(*callExpr); ok && call.fn.name == "timestamp" {
		c.atNow = true
	}
	if len(c.args) == 3 {
		if s, isStr, lit := literalString(c, 2); lit {
			if !isStr {
				return 2, "parse_time: the time zone must be a string"
			}
			z, err := timefmt.LoadZone(s)
			if err != nil {
				return 2, "parse_time: " + err.Error()
			}
			c.zone = z
		}
	}
	return 0, ""
}

// parse_time(pattern, epoch_ms[, zone]) formats an instant with a Joda-Time pattern
// in a time zone (UTC by default). The epoch is an Int, a Decimal (truncated) or a
// numeric String; anything else gives Undefined. A pattern or zone computed at run
// time that is invalid is an error, as it is in IoT Core.
func fnParseTime(env *Env, c *callExpr) (any, error) {
	p := c.joda
	if p == nil {
		v, err := c.args[0].eval(env)
		if err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			return undef, nil
		}
		if p, err = timefmt.CachedJoda(s); err != nil {
			return nil, &EvalError{Msg: "parse_time: invalid pattern", Err: err}
		}
	}
	var ms int64
	if c.atNow {
		ms = env.now.UnixMilli() // saves boxing timestamp()'s Int
	} else {
		v, err := c.args[1].eval(env)
		if err != nil {
			return nil, err
		}
		var ok bool
		if ms, ok = epochMillis(v); !ok {
			return undef, nil
		}
	}
	z := c.zone
	if z == nil {
		z = timefmt.UTC()
		if len(c.args) == 3 {
			v, err := c.args[2].eval(env)
			if err != nil {
				return nil, err
			}
			s, ok := v.(string)
			if !ok {
				return undef, nil
			}
			if z, err = timefmt.LoadZone(s); err != nil {
				return nil, &EvalError{Msg: "parse_time: invalid time zone", Err: err}
			}
		}
	}
	var buf [64]byte
	return string(p.AppendFormat(buf[:0], ms, z)), nil
}

func epochMillis(v any) (int64, bool) {
	n, ok := toNum(v)
	if !ok {
		return 0, false
	}
	if n.isInt {
		return n.i, true
	}
	return floatToInt(math.Trunc(n.f))
}

func checkTimeToEpoch(c *callExpr) (int, string) {
	if s, isStr, lit := literalString(c, 1); lit {
		if !isStr {
			return 1, "time_to_epoch: the pattern must be a string"
		}
		p, err := timefmt.CompileJDK(s)
		if err != nil {
			return 1, "time_to_epoch: " + err.Error()
		}
		c.jdk = p
	}
	return 0, ""
}

// time_to_epoch(timestamp, pattern) parses a time string with a java.time
// DateTimeFormatter pattern and returns epoch milliseconds (Int). A string that
// does not match the pattern is an error, as in IoT Core.
func fnTimeToEpoch(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	s, ok := toStr(v)
	if !ok {
		return undef, nil
	}
	p := c.jdk
	if p == nil {
		v, err := c.args[1].eval(env)
		if err != nil {
			return nil, err
		}
		ps, ok := v.(string)
		if !ok {
			return undef, nil
		}
		if p, err = timefmt.CachedJDK(ps); err != nil {
			return nil, &EvalError{Msg: "time_to_epoch: invalid pattern", Err: err}
		}
	}
	ms, err := p.Parse(s)
	if err != nil {
		return nil, &EvalError{Msg: "time_to_epoch: cannot parse " + strconv.Quote(s), Err: err}
	}
	return ms, nil
}

func checkTopic(c *callExpr) (int, string) {
	if len(c.args) == 1 {
		if l, ok := c.args[0].(*litExpr); ok {
			if n, ok := toInt(l.v); !ok || n < 1 {
				return 0, "topic: the level must be a number >= 1"
			}
		}
	}
	return 0, ""
}

// topic() is the message topic; topic(n) its n-th level, 1-based (Undefined when
// there is no such level).
func fnTopic(env *Env, c *callExpr) (any, error) {
	if len(c.args) == 0 {
		return env.msg.Topic, nil
	}
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	n, ok := toInt(v)
	if !ok || n < 1 {
		return undef, nil
	}
	t := env.msg.Topic
	for ; n > 1; n-- {
		i := strings.IndexByte(t, '/')
		if i < 0 {
			return undef, nil
		}
		t = t[i+1:]
	}
	if i := strings.IndexByte(t, '/'); i >= 0 {
		t = t[:i]
	}
	return t, nil
}

// clientid() is the MQTT client id, "n/a" when there is none.
func fnClientID(env *Env, _ *callExpr) (any, error) {
	if env.msg.ClientID == "" {
		return "n/a", nil
	}
	return env.msg.ClientID, nil
}

// principal() is the authenticated identity, Undefined for anonymous clients.
func fnPrincipal(env *Env, _ *callExpr) (any, error) {
	if env.msg.Principal == "" {
		return undef, nil
	}
	return env.msg.Principal, nil
}

// newuuid() is a random (version 4) UUID.
func fnNewUUID(*Env, *callExpr) (any, error) { return newUUID(), nil }

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // never fails (crypto/rand crashes the program instead)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
		j += 2
	}
	return string(b[:])
}

// stringFunc applies f to the argument converted to a String.
func stringFunc(f func(string) string) func(*Env, *callExpr) (any, error) {
	return func(env *Env, c *callExpr) (any, error) {
		v, err := c.args[0].eval(env)
		if err != nil {
			return nil, err
		}
		s, ok := toStr(v)
		if !ok {
			return undef, nil
		}
		return f(s), nil
	}
}

// length(s) is the number of characters of s converted to a String.
func fnLength(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	s, ok := toStr(v)
	if !ok {
		return undef, nil
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
	v, err := c.args[2].eval(env)
	if err != nil {
		return nil, err
	}
	repl, ok := toStr(v)
	if !ok {
		return undef, nil
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

// index() is the 0-based position of the current element under a rule's
// foreach; Undefined elsewhere (fleetgate's own, IoT Core has no foreach).
func fnIndex(env *Env, _ *callExpr) (any, error) {
	if !env.inElem {
		return undef, nil
	}
	return int64(env.elemIdx), nil
}

// substring(s, start[, end]) with 0-based character indexes, end exclusive;
// indexes are clamped to [0, len(s)] and start >= end gives "".
func fnSubstring(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	s, ok := toStr(v)
	if !ok {
		return undef, nil
	}
	n := int64(utf8.RuneCountInString(s))
	clamp := func(i int64) int64 { return max(0, min(i, n)) }
	v, err = c.args[1].eval(env)
	if err != nil {
		return nil, err
	}
	start, ok := toInt(v)
	if !ok {
		return undef, nil
	}
	start, end := clamp(start), n
	if len(c.args) == 3 {
		v, err = c.args[2].eval(env)
		if err != nil {
			return nil, err
		}
		e, ok := toInt(v)
		if !ok {
			return undef, nil
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

func fnIsUndefined(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	return isUndef(v), nil
}

func fnIsNull(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	return v == nil, nil
}

// get(array, index), get(string, index) (a one-character String) and
// get(object, key); anything else, or an index out of range, is Undefined.
func fnGet(env *Env, c *callExpr) (any, error) {
	coll, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	k, err := c.args[1].eval(env)
	if err != nil {
		return nil, err
	}
	switch coll := coll.(type) {
	case map[string]any:
		if s, ok := k.(string); ok {
			return memberValue(coll, s), nil
		}
	case []any:
		if i, ok := toInt(k); ok && i >= 0 && i < int64(len(coll)) {
			return coll[i], nil
		}
	case string:
		if i, ok := toInt(k); ok && i >= 0 {
			for _, r := range coll {
				if i == 0 {
					return string(r), nil
				}
				i--
			}
		}
	}
	return undef, nil
}

func checkEncode(c *callExpr) (int, string) {
	if s, isStr, _ := literalString(c, 1); !isStr || !strings.EqualFold(s, "base64") {
		return 1, "encode: the encoding must be the literal 'base64'"
	}
	return 0, ""
}

// encode(*, 'base64') is the raw payload in base64, whatever its format; encode(x,
// 'base64') encodes x converted to a String.
func fnEncode(env *Env, c *callExpr) (any, error) {
	if _, ok := c.args[0].(starExpr); ok {
		return base64.StdEncoding.EncodeToString(env.msg.Payload), nil
	}
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	s, ok := toStr(v)
	if !ok {
		return undef, nil
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}

// abs keeps Ints as Ints; Decimals and numeric Strings give Decimals.
func fnAbs(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	n, ok := toNum(v)
	if !ok {
		return undef, nil
	}
	if n.isInt {
		if n.i >= 0 {
			return n.i, nil
		}
		if n.i != math.MinInt64 {
			return -n.i, nil
		}
	}
	return math.Abs(n.float()), nil
}

// roundFunc implements round (half away from zero: round(-1.5) = -2), ceil and
// floor; the result is an Int.
func roundFunc(f func(float64) float64) func(*Env, *callExpr) (any, error) {
	return func(env *Env, c *callExpr) (any, error) {
		v, err := c.args[0].eval(env)
		if err != nil {
			return nil, err
		}
		n, ok := toNum(v)
		if !ok {
			return undef, nil
		}
		if n.isInt {
			return n.i, nil
		}
		i, ok := floatToInt(f(n.f))
		if !ok {
			return undef, nil
		}
		return i, nil
	}
}
