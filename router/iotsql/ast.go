package iotsql

import (
	"regexp"

	"github.com/fleetgate/fleetgate/router/timefmt"
)

// The parser turns source into a tree of expr nodes; Eval walks that tree. Nodes are
// immutable after parsing, so one tree serves concurrent evaluations. Everything a
// node can work out from literals alone (time patterns, time zones, cast targets) is
// resolved by the parser and stored in the node.

// expr is an expression node. eval returns the value (see value.go for the value
// model) or an *EvalError when the message cannot be evaluated.
type expr interface {
	eval(env *Env) (any, error)
}

// litExpr is a literal or a constant-folded value.
type litExpr struct {
	v any
}

// pathStep is one step of a static path: a member name or a constant index.
type pathStep struct {
	name    string
	index   int
	isIndex bool
}

// pathExpr reads a path from the payload root: a, a.b.c, arr[0], a.b[1].c;
// inside a nested SELECT, from its current element.
type pathExpr struct {
	steps []pathStep // steps[0] is always a name
	scope int        // 0: the payload; n: the element of the n-th nested SELECT
}

// memberExpr reads .name from the value of x (x is not a payload path, e.g. a call).
type memberExpr struct {
	x    expr
	name string
}

// indexExpr reads x[index] where index is computed at run time.
type indexExpr struct {
	x, index expr
}

// elemExpr is the current element of a rule's foreach (its alias, e.g. "s");
// Undefined outside foreach.
type elemExpr struct {
	name string
}

// starExpr is "*" used as a function argument: the whole payload.
type starExpr struct{}

// negExpr is unary minus.
type negExpr struct {
	x expr
}

// notExpr is NOT x.
type notExpr struct {
	x expr
}

// logicExpr is x AND y or x OR y.
type logicExpr struct {
	or   bool
	l, r expr
}

// cmpExpr is a comparison: = <> < <= > >=.
type cmpExpr struct {
	op   tokKind
	l, r expr
}

// arithExpr is + - * / %.
type arithExpr struct {
	op   tokKind
	l, r expr
}

// callExpr calls a function. Fields after args hold what the parser
// precompiled from literal arguments.
type callExpr struct {
	fn   *funcDef
	args []expr

	joda  *timefmt.Joda // parse_time: pattern, when given as a literal
	jdk   *timefmt.JDK  // time_to_epoch: pattern, when given as a literal
	zone  *timefmt.Zone // parse_time: time zone, when given as a literal
	atNow bool          // parse_time: the instant is timestamp()

	re      *regexp.Regexp // regexp_*: pattern, when given as a literal
	reCache *regexpCache   // regexp_*: patterns computed at run time

	// A registered Function's evaluator and the arguments it is given.
	ev    Evaluator
	xargs []Arg
}

// castType is the target of cast(x AS type).
type castType uint8

const (
	castString castType = iota
	castInt
	castDecimal
	castBool
)

// castExpr is cast(x AS type).
type castExpr struct {
	x  expr
	to castType
}

// whenClause is one WHEN ... THEN ... of a CASE.
type whenClause struct {
	when, then expr
}

// caseExpr is CASE [subject] WHEN ... THEN ... [ELSE ...] END. Without a subject
// each WHEN is a condition; with one, WHEN values are compared to it with "=".
type caseExpr struct {
	subject expr
	whens   []whenClause
	elseX   expr
}

// arrayExpr is an array literal [a, b, ...].
type arrayExpr struct {
	elems []expr
}

// objectExpr is an object literal {'k': v, ...}.
type objectExpr struct {
	keys []string
	vals []expr
}

// selectItem is one item of a SELECT list: "*" (star) or an expression with the
// output key name it gets (its alias or the default name).
type selectItem struct {
	star bool
	name string
	key  string // name as a JSON string followed by ':'
	x    expr
}

// subqueryExpr is a nested (SELECT ... FROM x [WHERE c]) over the array x
// (AWS's "nested object queries"): an Array of one output per element for
// which c holds, each an object of the items (or the VALUE).
type subqueryExpr struct {
	from  expr
	depth int // the scope its items and WHERE read (see pathExpr)
	items []selectItem
	star  bool
	value expr // SELECT VALUE
	where expr
}
