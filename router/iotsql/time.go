package iotsql

import (
	"math"
	"strconv"

	"github.com/fleetgate/fleetgate/router/timefmt"
)

// Time functions: timestamp(), parse_time (Joda-Time patterns) and
// time_to_epoch (java.time patterns); the patterns are router/timefmt's.

func timeFuncs() []*funcDef {
	return []*funcDef{
		{name: "timestamp", call: fnTimestamp},
		{name: "parse_time", minArgs: 2, maxArgs: 3, call: fnParseTime, check: checkParseTime, appendJSON: appendParseTime},
		{name: "time_to_epoch", minArgs: 2, maxArgs: 2, call: fnTimeToEpoch, check: checkTimeToEpoch},
	}
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
	var buf [64]byte
	b, ok, err := formatParseTime(buf[:0], env, c)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return undef, nil
	}
	return string(b), nil
}

// appendParseTime is parse_time's appendJSON: its String as JSON, made
// without a String.
func appendParseTime(env *Env, c *callExpr, b []byte) ([]byte, bool, error) {
	var buf [64]byte
	t, ok, err := formatParseTime(buf[:0], env, c)
	if err != nil || !ok {
		return b, false, err
	}
	return appendJSONStringBytes(b, t), true, nil
}

// formatParseTime appends parse_time's result to b; ok is false when it is
// Undefined.
func formatParseTime(b []byte, env *Env, c *callExpr) (_ []byte, ok bool, err error) {
	p := c.joda
	if p == nil {
		s, ok, err := stringArg(env, c, 0)
		if err != nil || !ok {
			return b, false, err
		}
		if p, err = timefmt.CachedJoda(s); err != nil {
			return b, false, &EvalError{Msg: "parse_time: invalid pattern", Err: err}
		}
	}
	var ms int64
	if c.atNow {
		ms = env.now.UnixMilli() // saves boxing timestamp()'s Int
	} else {
		v, err := c.args[1].eval(env)
		if err != nil {
			return b, false, err
		}
		if ms, ok = epochMillis(v); !ok {
			return b, false, nil
		}
	}
	z := c.zone
	if z == nil {
		z = timefmt.UTC()
		if len(c.args) == 3 {
			s, ok, err := stringArg(env, c, 2)
			if err != nil || !ok {
				return b, false, err
			}
			if z, err = timefmt.LoadZone(s); err != nil {
				return b, false, &EvalError{Msg: "parse_time: invalid time zone", Err: err}
			}
		}
	}
	return p.AppendFormat(b, ms, z), true, nil
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
	s, ok, err := strArg(env, c, 0)
	if err != nil || !ok {
		return undef, err
	}
	p := c.jdk
	if p == nil {
		ps, ok, err := stringArg(env, c, 1)
		if err != nil || !ok {
			return undef, err
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
