package iotsql

// Bitwise functions of the AWS IoT SQL reference. Arguments are converted
// to Ints: a Decimal, or a String that converts to a number, is rounded
// down to the nearest Int; anything else gives Undefined. Ints are 64-bit
// two's complement.

func bitFuncs() []*funcDef {
	return []*funcDef{
		{name: "bitand", minArgs: 2, maxArgs: 2, call: bitFunc(func(a, b int64) int64 { return a & b })},
		{name: "bitor", minArgs: 2, maxArgs: 2, call: bitFunc(func(a, b int64) int64 { return a | b })},
		{name: "bitxor", minArgs: 2, maxArgs: 2, call: bitFunc(func(a, b int64) int64 { return a ^ b })},
		{name: "bitnot", minArgs: 1, maxArgs: 1, call: fnBitNot},
	}
}

// intArg evaluates argument i of c as an Int (see toInt).
func intArg(env *Env, c *callExpr, i int) (int64, bool, error) {
	v, err := c.args[i].eval(env)
	if err != nil {
		return 0, false, err
	}
	n, ok := toInt(v)
	return n, ok, nil
}

func bitFunc(op func(a, b int64) int64) func(*Env, *callExpr) (any, error) {
	return func(env *Env, c *callExpr) (any, error) {
		a, ok, err := intArg(env, c, 0)
		if err != nil || !ok {
			return undef, err
		}
		b, ok, err := intArg(env, c, 1)
		if err != nil || !ok {
			return undef, err
		}
		return op(a, b), nil
	}
}

// bitnot(x) inverts every bit of the Int x, as AWS's prose says ("performs
// a bitwise NOT on the bits of the Int argument"): bitnot(13) is -14. AWS's
// example gives 2, which is the NOT of only the four low bits
// (bitand(bitnot(13), 15)); see docs/rules.md.
func fnBitNot(env *Env, c *callExpr) (any, error) {
	a, ok, err := intArg(env, c, 0)
	if err != nil || !ok {
		return undef, err
	}
	return ^a, nil
}
