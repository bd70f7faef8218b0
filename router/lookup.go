package router

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

// LookupFunction is lookup('table', key): the row of a lookup table as an
// object, or Undefined when the key is absent (or not a string or number).
// The table is named by a string literal and resolved when the rule is
// compiled, from iotsql.Deps.Lookups: an unknown table is a compile error,
// and the message path only reads the table's in-memory snapshot. A number
// key is looked up as its decimal text (42 and "42" find the same row).
var LookupFunction = iotsql.Function{
	Name: "lookup", MinArgs: 2, MaxArgs: 2,
	Compile: compileLookup,
}

// NewFunctions returns the gateway's SQL functions: the built-in ones and
// lookup().
func NewFunctions() *iotsql.Registry {
	r := iotsql.NewRegistry()
	if err := r.Register(LookupFunction); err != nil {
		panic(err) // a name clash with a built-in function: a programming error
	}
	return r
}

func compileLookup(deps iotsql.Deps, args []iotsql.Arg) (iotsql.Evaluator, error) {
	lit, ok := args[0].Literal()
	name, isString := lit.(string)
	if !ok || !isString {
		return nil, &iotsql.ArgError{Index: 0, Err: errors.New("the table must be a string literal naming a table of lookups:")}
	}
	var table iotsql.LookupTable
	if deps.Lookups != nil {
		table, ok = deps.Lookups.Table(name)
	}
	if !ok || table == nil {
		return nil, &iotsql.ArgError{Index: 0, Err: fmt.Errorf("unknown lookup table %q (lookups: defines the tables)", name)}
	}
	return func(env *iotsql.Env, args []iotsql.Arg) (any, error) {
		k, err := args[1].Eval(env)
		if err != nil {
			return nil, err
		}
		key, ok := lookupKey(k)
		if !ok {
			return iotsql.Undefined(), nil
		}
		if row, ok := table.Get(key); ok {
			return row, nil
		}
		return iotsql.Undefined(), nil
	}, nil
}

// lookupKey is the table key for a SQL value: a string as it is, an
// integer (or a whole decimal) as its decimal text.
func lookupKey(v any) (string, bool) {
	switch k := v.(type) {
	case string:
		return k, true
	case int64:
		return strconv.FormatInt(k, 10), true
	case float64:
		if k == math.Trunc(k) && math.Abs(k) < 1<<53 {
			return strconv.FormatInt(int64(k), 10), true
		}
		return strconv.FormatFloat(k, 'g', -1, 64), true
	}
	return "", false
}
