package iotsql

import (
	"strconv"
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
	// appendJSON, when set, appends the JSON of what call returns (as
	// appendJSON writes it) without making the value, and reports whether
	// the value is defined; the SELECT output uses it.
	appendJSON func(env *Env, c *callExpr, b []byte) ([]byte, bool, error)
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

// builtinGroups are the built-in functions, one group per file; NewRegistry
// puts them in each new registry.
var builtinGroups = []func() []*funcDef{
	timeFuncs, messageFuncs, stringFuncs, typeFuncs, mathFuncs, bitFuncs,
	cryptoFuncs, regexpFuncs, encodingFuncs, defaultFuncs, transformFuncs,
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
