package iotsql

import "math"

// Functions that stand in a default for a missing value.

func defaultFuncs() []*funcDef {
	return []*funcDef{
		{name: "nanvl", minArgs: 2, maxArgs: 2, call: fnNanvl},
		{name: "get_or_default", minArgs: 1, maxArgs: 2, call: fnGetOrDefault},
	}
}

// nanvl(x, default) is x unless x is Undefined, Null or a Decimal that is
// NaN, when it is default (AWS's table: "Undefined | Null | Decimal (NaN):
// the second argument"). fleetgate's evaluator never yields NaN (an
// operation that would is Undefined), so in practice nanvl replaces
// Undefined and Null; other values are returned as they are.
func fnNanvl(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return nil, err
	}
	if f, ok := v.(float64); v == nil || isUndef(v) || ok && math.IsNaN(f) {
		return c.args[1].eval(env)
	}
	return v, nil
}

// get_or_default(x[, default]) is x, or default (Undefined without one) when
// x is Undefined, Null, or fails to evaluate (a payload that is not JSON, a
// function error).
func fnGetOrDefault(env *Env, c *callExpr) (any, error) {
	v, err := c.args[0].eval(env)
	if err == nil && v != nil && !isUndef(v) {
		return v, nil
	}
	if len(c.args) == 1 {
		return undef, nil
	}
	return c.args[1].eval(env)
}
