package iotsql

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Math functions of the AWS IoT SQL reference (SQL version 2016-03-23). As
// there, an Int, a Decimal or a String that converts to a number
// (^-?\d+(\.\d+)?((?i)E-?\d+)?$) is accepted; anything else (Boolean,
// Array, Object, Null, Undefined) gives Undefined. So does a result that is
// not a number (sqrt(-1), ln(0), asin(2)).

func mathFuncs() []*funcDef {
	return []*funcDef{
		{name: "abs", minArgs: 1, maxArgs: 1, call: fnAbs},
		{name: "round", minArgs: 1, maxArgs: 1, call: roundFunc(math.Round)},
		{name: "ceil", minArgs: 1, maxArgs: 1, call: roundFunc(math.Ceil)},
		{name: "floor", minArgs: 1, maxArgs: 1, call: roundFunc(math.Floor)},
		{name: "mod", minArgs: 2, maxArgs: 2, call: fnMod},
		{name: "power", minArgs: 2, maxArgs: 2, call: fnPower},
		{name: "sqrt", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Sqrt)},
		{name: "sign", minArgs: 1, maxArgs: 1, call: fnSign},
		{name: "trunc", minArgs: 2, maxArgs: 2, call: fnTrunc},
		{name: "ln", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Log)},
		{name: "log", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Log10)},
		{name: "exp", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Exp)},
		{name: "sin", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Sin)},
		{name: "cos", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Cos)},
		{name: "tan", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Tan)},
		{name: "asin", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Asin)},
		{name: "acos", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Acos)},
		{name: "atan", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Atan)},
		{name: "atan2", minArgs: 2, maxArgs: 2, call: fnAtan2},
		{name: "sinh", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Sinh)},
		{name: "cosh", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Cosh)},
		{name: "tanh", minArgs: 1, maxArgs: 1, call: decimalFunc(math.Tanh)},
		{name: "remainder", minArgs: 2, maxArgs: 2, call: fnMod},
		{name: "rand", call: fnRand},
	}
}

// decimal returns f as a Decimal, or Undefined when it is not a finite number.
func decimal(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return undef
	}
	return f
}

// numArgs evaluates the first n (1 or 2) arguments of c as numbers; ok is
// false when one does not convert.
func numArgs(env *Env, c *callExpr, n int) (a, b num, ok bool, err error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return num{}, num{}, false, err
	}
	if a, ok = toNum(v); !ok || n == 1 {
		return a, num{}, ok, nil
	}
	if v, err = c.args[1].eval(env); err != nil {
		return num{}, num{}, false, err
	}
	b, ok = toNum(v)
	return a, b, ok, nil
}

// decimalFunc is a function of one number with a Decimal result: sqrt, ln,
// log (base 10), exp and the trigonometric functions (radians).
func decimalFunc(f func(float64) float64) func(*Env, *callExpr) (any, error) {
	return func(env *Env, c *callExpr) (any, error) {
		x, _, ok, err := numArgs(env, c, 1)
		if err != nil || !ok {
			return undef, err
		}
		return decimal(f(x.float())), nil
	}
}

// rand() is a random Decimal in [0, 1), a new one at each call.
func fnRand(*Env, *callExpr) (any, error) { return rand.Float64(), nil }

// mod(a, b), and remainder(a, b) which AWS defines as the same, is a % b: an Int for two Ints (its sign is a's, as in Java),
// otherwise a Decimal; Undefined when b is zero.
func fnMod(env *Env, c *callExpr) (any, error) {
	a, b, ok, err := numArgs(env, c, 2)
	if err != nil || !ok {
		return undef, err
	}
	return arith(tPercent, numValue(a), numValue(b)), nil
}

// numValue returns n as a value of the value model.
func numValue(n num) any {
	if n.isInt {
		return n.i
	}
	return n.f
}

// power(x, y) is x to the power y, a Decimal.
func fnPower(env *Env, c *callExpr) (any, error) {
	x, y, ok, err := numArgs(env, c, 2)
	if err != nil || !ok {
		return undef, err
	}
	return decimal(math.Pow(x.float(), y.float())), nil
}

// atan2(y, x) is the angle in radians of the point (x, y), a Decimal.
func fnAtan2(env *Env, c *callExpr) (any, error) {
	y, x, ok, err := numArgs(env, c, 2)
	if err != nil || !ok {
		return undef, err
	}
	return decimal(math.Atan2(y.float(), x.float())), nil
}

// sign(x) is -1, 0 or 1, an Int, for an Int or a Decimal alike.
func fnSign(env *Env, c *callExpr) (any, error) {
	x, _, ok, err := numArgs(env, c, 1)
	if err != nil || !ok {
		return undef, err
	}
	f := x.float()
	switch {
	case x.isInt && x.i > 0, !x.isInt && f > 0:
		return int64(1), nil
	case x.isInt && x.i < 0, !x.isInt && f < 0:
		return int64(-1), nil
	case math.IsNaN(f):
		return undef, nil
	}
	return int64(0), nil
}

// maxTruncPlaces is where trunc clamps its places, as AWS does (34, the
// precision of its Decimal).
const maxTruncPlaces = 34

// trunc(x, places) cuts x to places decimal digits (toward zero), places
// being rounded down and clamped to 0..34; an Int stays as it is. The digits
// are cut in x's shortest decimal form, so trunc(0.29, 2) is 0.29, not the
// 0.28 that scaling the binary float would give.
func fnTrunc(env *Env, c *callExpr) (any, error) {
	x, p, ok, err := numArgs(env, c, 2)
	if err != nil || !ok {
		return undef, err
	}
	if x.isInt {
		return x.i, nil
	}
	places := maxTruncPlaces
	if p.isInt {
		places = int(max(0, min(p.i, maxTruncPlaces)))
	} else if f := math.Floor(p.f); f < maxTruncPlaces {
		places = int(max(0, f))
	}
	if math.IsNaN(x.f) || math.IsInf(x.f, 0) {
		return undef, nil
	}
	s := strconv.FormatFloat(x.f, 'f', -1, 64)
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		if places == 0 {
			s = s[:dot]
		} else if len(s) > dot+1+places {
			s = s[:dot+1+places]
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return undef, nil
	}
	if f == 0 {
		f = 0 // no negative zero
	}
	return f, nil
}

// abs keeps Ints as Ints; Decimals and numeric Strings give Decimals.
func fnAbs(env *Env, c *callExpr) (any, error) {
	n, _, ok, err := numArgs(env, c, 1)
	if err != nil || !ok {
		return undef, err
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
		n, _, ok, err := numArgs(env, c, 1)
		if err != nil || !ok {
			return undef, err
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
