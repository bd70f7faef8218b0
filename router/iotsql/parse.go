package iotsql

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Grammar (keywords are case-insensitive):
//
//	query   = SELECT [VALUE] item {"," item} FROM string [WHERE expr]
//	item    = "*" | expr [AS name]
//	expr    = and {OR and}
//	and     = not {AND not}
//	not     = NOT not | cmp
//	cmp     = add {("=" | "<>" | "!=" | "<" | "<=" | ">" | ">=") add}
//	add     = mul {("+" | "-" | "||") mul}
//	mul     = unary {("*" | "/" | "%") unary}
//	unary   = ("-" | "+") unary | postfix
//	postfix = primary {"." name | "[" expr "]"}
//	primary = number | string | TRUE | FALSE | NULL | name | name "(" [args] ")"
//	        | cast "(" expr AS type ")" | "(" expr ")" | "[" [exprs] "]"
//	        | "(" SELECT [VALUE] item {"," item} FROM expr [WHERE expr] ")"
//	        | "{" [key ":" expr {"," key ":" expr}] "}" | CASE ... END
//	args    = arg {"," arg};  arg = "*" | expr
//	foreach = expr AS name     (a rule's foreach: key; see ParseForeach)
//
// A name is letters, digits and "_" not starting with a digit, or any text in
// backquotes; reserved words need backquotes to be used as field names.

// reserved words cannot be used as bare field names.
var reserved = map[string]bool{
	"select": true, "from": true, "where": true, "as": true, "and": true, "or": true,
	"not": true, "true": true, "false": true, "null": true, "case": true, "when": true,
	"then": true, "else": true, "end": true,
}

// maxDepth bounds expression nesting so hostile input cannot exhaust the stack.
const maxDepth = 200

// parser is a recursive-descent parser with one token of look-ahead. Errors unwind
// with panic(bail) and are recovered at the entry points, as text/template does.
type parser struct {
	lx    lexer
	tok   token
	depth int
	// elem is the foreach alias: a bare name equal to it (not backquoted,
	// not called) is the current array element, not a payload field.
	elem string
	// scope is the depth of nested SELECTs being parsed; names at depth n
	// read the current element of the n-th.
	scope int
	// funcs are the functions calls may name; deps what they may take.
	funcs *Registry
	deps  *Deps
}

type bail struct{ err *SyntaxError }

// newParser returns a parser positioned before the first token; call advance after
// deferring recover.
func newParser(src string, offset int) *parser {
	return &parser{lx: lexer{src: src, pos: offset}}
}

func (p *parser) fail(pos int, format string, args ...any) {
	panic(bail{newSyntaxError(p.lx.src, pos, fmt.Sprintf(format, args...))})
}

func (p *parser) advance() {
	t, err := p.lx.next()
	if err != nil {
		panic(bail{err.(*SyntaxError)})
	}
	p.tok = t
}

// peek returns the token after the current one without consuming anything.
func (p *parser) peek() token {
	save := p.lx
	t, err := p.lx.next()
	p.lx = save
	if err != nil {
		return token{kind: tEOF, pos: p.tok.end}
	}
	return t
}

func (p *parser) found() string { return p.tok.describe(p.lx.src) }

func (p *parser) isKeyword(kw string) bool {
	return p.tok.kind == tIdent && strings.EqualFold(p.tok.text, kw)
}

func (p *parser) expect(k tokKind) token {
	t := p.tok
	if t.kind != k {
		p.fail(t.pos, "expected %s, found %s", tokNames[k], p.found())
	}
	p.advance()
	return t
}

func (p *parser) expectKeyword(kw string) {
	if !p.isKeyword(kw) {
		p.fail(p.tok.pos, "expected %s, found %s", kw, p.found())
	}
	p.advance()
}

// ParseQuery compiles a SELECT statement of the AWS IoT SQL dialect, version
// 2016-03-23: the grammar above, the built-in functions (NewRegistry; one file
// per family: time.go, strings.go, math.go...), and the semantics of eval.go
// and value.go. All parsing and validation happens here: unknown functions, wrong argument counts, invalid parse_time and
// time_to_epoch patterns, unknown time zones and invalid FROM topic filters are
// reported as a *SyntaxError with the position of the culprit.
//
// ParseQuery knows the built-in functions only; a Compiler knows more.
func ParseQuery(sql string) (q *Query, err error) {
	return parseQuery(sql, "")
}

// parseQuery is ParseQuery for a rule with a foreach alias elem ("" for none).
func parseQuery(sql, elem string) (*Query, error) {
	return NewCompiler(nil, Deps{}).parseQuery(sql, elem)
}

func (c *Compiler) parseQuery(sql, elem string) (q *Query, err error) {
	p := c.parser(sql, 0)
	p.elem = elem
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bail)
			if !ok {
				panic(r)
			}
			q, err = nil, b.err
		}
	}()
	p.advance()
	q = &Query{sql: sql}
	p.expectKeyword("SELECT")
	if p.isKeyword("VALUE") && valueIsModifier(p.peek()) {
		p.advance()
		q.value = p.parseExpr()
		p.parseFromWhere(q)
		return q, nil
	}
	q.items, q.star = p.parseItems()
	p.parseFromWhere(q)
	q.starOnly = q.star && len(q.items) == 1
	return q, nil
}

// parseItems parses a SELECT list; star reports whether it has "*".
func (p *parser) parseItems() (items []selectItem, star bool) {
	for n := 1; ; n++ {
		if p.tok.kind == tStar {
			if star {
				p.fail(p.tok.pos, "'*' may appear only once in SELECT")
			}
			p.advance()
			star = true
			items = append(items, selectItem{star: true})
		} else {
			x := p.parseExpr()
			var name string
			if p.isKeyword("AS") {
				p.advance()
				switch {
				case p.tok.kind == tQIdent, p.tok.kind == tIdent && !reserved[strings.ToLower(p.tok.text)]:
					name = p.tok.text
				case p.tok.kind == tString && p.tok.text != "":
					name = p.tok.text
				default:
					p.fail(p.tok.pos, "expected a name after AS, found %s", p.found())
				}
				p.advance()
			} else {
				name = defaultName(x, n)
			}
			items = append(items, selectItem{name: name, key: string(appendJSONString(nil, name)) + ":", x: x})
		}
		if p.tok.kind != tComma {
			return items, star
		}
		p.advance()
	}
}

// parseSubquery parses a nested "(SELECT [VALUE] items FROM x [WHERE c])";
// the current token is SELECT. Names inside it (but not in its FROM) are
// members of the element of x being evaluated.
func (p *parser) parseSubquery() expr {
	p.enter()
	defer p.leave()
	outer := p.scope
	sq := &subqueryExpr{depth: outer + 1}
	p.advance() // SELECT
	p.scope = sq.depth
	if p.isKeyword("VALUE") && valueIsModifier(p.peek()) {
		p.advance()
		sq.value = p.parseExpr()
	} else {
		sq.items, sq.star = p.parseItems()
	}
	p.scope = outer
	p.expectKeyword("FROM")
	if p.tok.kind == tString {
		p.fail(p.tok.pos, "a nested SELECT reads an array of the message (FROM name), not a topic")
	}
	sq.from = p.parseExpr()
	if p.isKeyword("WHERE") {
		p.advance()
		p.scope = sq.depth
		sq.where = p.parseExpr()
		p.scope = outer
	}
	p.expect(tRParen)
	return sq
}

// valueIsModifier tells "SELECT VALUE x" from a field named value ("SELECT value,",
// "SELECT value FROM", "SELECT value.x", "SELECT value - 1") by the token after it.
func valueIsModifier(next token) bool {
	switch next.kind {
	case tComma, tEOF, tDot, tEq, tNe, tLt, tLe, tGt, tGe, tPlus, tMinus, tStar, tSlash, tPercent, tConcat:
		return false
	case tIdent:
		switch strings.ToLower(next.text) {
		case "from", "as", "and", "or":
			return false
		}
	}
	return true
}

func (p *parser) parseFromWhere(q *Query) {
	p.expectKeyword("FROM")
	if p.tok.kind != tString {
		p.fail(p.tok.pos, "expected a quoted topic filter after FROM, found %s", p.found())
	}
	if err := ValidFilter(p.tok.text); err != nil {
		p.fail(p.tok.pos, "invalid topic filter %q: %v", p.tok.text, err)
	}
	q.filter = p.tok.text
	p.advance()
	if p.isKeyword("WHERE") {
		p.advance()
		q.where = p.parseExpr()
	}
	if p.tok.kind != tEOF {
		p.fail(p.tok.pos, "expected end of statement, found %s", p.found())
	}
}

// defaultName is the output key of an item without AS: the last member name of a
// path ("a.b" gives "b"), the function name of a call ("topic(2)" gives "topic"),
// otherwise "_n" where n is the item's 1-based position in the SELECT list.
func defaultName(x expr, n int) string {
	switch x := x.(type) {
	case *pathExpr:
		if last := x.steps[len(x.steps)-1]; !last.isIndex {
			return last.name
		}
	case *memberExpr:
		return x.name
	case *callExpr:
		return x.fn.name
	case *castExpr:
		return "cast"
	case *elemExpr:
		return x.name
	}
	return "_" + strconv.Itoa(n)
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail(p.tok.pos, "expression nested too deeply")
	}
}

func (p *parser) leave() { p.depth-- }

func (p *parser) parseExpr() expr {
	p.enter()
	defer p.leave()
	l := p.parseAnd()
	for p.isKeyword("OR") {
		p.advance()
		l = &logicExpr{or: true, l: l, r: p.parseAnd()}
	}
	return l
}

func (p *parser) parseAnd() expr {
	l := p.parseNot()
	for p.isKeyword("AND") {
		p.advance()
		l = &logicExpr{l: l, r: p.parseNot()}
	}
	return l
}

func (p *parser) parseNot() expr {
	if p.isKeyword("NOT") {
		p.enter()
		defer p.leave()
		p.advance()
		return &notExpr{x: p.parseNot()}
	}
	return p.parseCmp()
}

func (p *parser) parseCmp() expr {
	l := p.parseAdd()
	for {
		switch op := p.tok.kind; op {
		case tEq, tNe, tLt, tLe, tGt, tGe:
			p.advance()
			l = &cmpExpr{op: op, l: l, r: p.parseAdd()}
		default:
			return l
		}
	}
}

func (p *parser) parseAdd() expr {
	l := p.parseMul()
	for {
		switch op := p.tok.kind; op {
		case tPlus, tMinus:
			p.advance()
			l = &arithExpr{op: op, l: l, r: p.parseMul()}
		case tConcat:
			p.advance()
			l = &callExpr{fn: funcConcat, args: []expr{l, p.parseMul()}}
		default:
			return l
		}
	}
}

func (p *parser) parseMul() expr {
	l := p.parseUnary()
	for {
		switch op := p.tok.kind; op {
		case tStar, tSlash, tPercent:
			p.advance()
			l = &arithExpr{op: op, l: l, r: p.parseUnary()}
		default:
			return l
		}
	}
}

func (p *parser) parseUnary() expr {
	switch p.tok.kind {
	case tMinus:
		p.enter()
		defer p.leave()
		p.advance()
		x := p.parseUnary()
		if lit, ok := x.(*litExpr); ok {
			if v, ok := negate(lit.v); ok {
				return &litExpr{v: v}
			}
		}
		return &negExpr{x: x}
	case tPlus:
		p.enter()
		defer p.leave()
		p.advance()
		return p.parseUnary()
	}
	return p.parsePostfix()
}

func (p *parser) parsePostfix() expr {
	x := p.parsePrimary()
	for {
		switch p.tok.kind {
		case tDot:
			p.advance()
			if p.tok.kind != tQIdent && (p.tok.kind != tIdent || reserved[strings.ToLower(p.tok.text)]) {
				p.fail(p.tok.pos, "expected a member name after '.', found %s", p.found())
			}
			name := p.tok.text
			p.advance()
			if pe, ok := x.(*pathExpr); ok {
				pe.steps = append(pe.steps, pathStep{name: name})
			} else {
				x = &memberExpr{x: x, name: name}
			}
		case tLBrack:
			p.advance()
			idx := p.parseExpr()
			p.expect(tRBrack)
			pe, isPath := x.(*pathExpr)
			lit, isLit := idx.(*litExpr)
			if i, isInt := literalInt(lit, isLit); isPath && isInt {
				pe.steps = append(pe.steps, pathStep{index: i, isIndex: true})
			} else {
				x = &indexExpr{x: x, index: idx}
			}
		default:
			return x
		}
	}
}

func literalInt(lit *litExpr, ok bool) (int, bool) {
	if !ok {
		return 0, false
	}
	i, ok := lit.v.(int64)
	if !ok || i < -1<<31 || i > 1<<31-1 {
		return 0, false
	}
	return int(i), true
}

func (p *parser) parsePrimary() expr {
	t := p.tok
	switch t.kind {
	case tInt:
		p.advance()
		return &litExpr{v: t.i}
	case tDecimal:
		p.advance()
		return &litExpr{v: t.f}
	case tString:
		p.advance()
		return &litExpr{v: t.text}
	case tLParen:
		p.advance()
		if p.isKeyword("SELECT") {
			return p.parseSubquery()
		}
		x := p.parseExpr()
		p.expect(tRParen)
		return x
	case tLBrack:
		p.enter()
		defer p.leave()
		p.advance()
		a := &arrayExpr{}
		if p.tok.kind != tRBrack {
			for {
				a.elems = append(a.elems, p.parseExpr())
				if p.tok.kind != tComma {
					break
				}
				p.advance()
			}
		}
		p.expect(tRBrack)
		return a
	case tLBrace:
		p.enter()
		defer p.leave()
		p.advance()
		o := &objectExpr{}
		if p.tok.kind != tRBrace {
			for {
				switch p.tok.kind {
				case tString, tIdent, tQIdent:
					o.keys = append(o.keys, p.tok.text)
				default:
					p.fail(p.tok.pos, "expected an object key, found %s", p.found())
				}
				p.advance()
				p.expect(tColon)
				o.vals = append(o.vals, p.parseExpr())
				if p.tok.kind != tComma {
					break
				}
				p.advance()
			}
		}
		p.expect(tRBrace)
		return o
	case tQIdent:
		p.advance()
		return &pathExpr{steps: []pathStep{{name: t.text}}, scope: p.scope}
	case tIdent:
		lower := strings.ToLower(t.text)
		switch lower {
		case "true":
			p.advance()
			return &litExpr{v: true}
		case "false":
			p.advance()
			return &litExpr{v: false}
		case "null":
			p.advance()
			return &litExpr{v: nil}
		case "case":
			return p.parseCase()
		}
		if reserved[lower] {
			p.fail(t.pos, "expected an expression, found keyword %s", p.found())
		}
		p.advance()
		if p.tok.kind == tLParen {
			return p.parseCall(t, lower)
		}
		if p.elem != "" && t.text == p.elem {
			return &elemExpr{name: t.text}
		}
		return &pathExpr{steps: []pathStep{{name: t.text}}, scope: p.scope}
	}
	p.fail(t.pos, "expected an expression, found %s", p.found())
	return nil
}

func (p *parser) parseCase() expr {
	p.enter()
	defer p.leave()
	casePos := p.tok.pos
	p.advance()
	c := &caseExpr{}
	if !p.isKeyword("WHEN") {
		c.subject = p.parseExpr()
	}
	for p.isKeyword("WHEN") {
		p.advance()
		w := p.parseExpr()
		p.expectKeyword("THEN")
		c.whens = append(c.whens, whenClause{when: w, then: p.parseExpr()})
	}
	if len(c.whens) == 0 {
		p.fail(p.tok.pos, "expected WHEN, found %s", p.found())
	}
	if p.isKeyword("ELSE") {
		p.advance()
		c.elseX = p.parseExpr()
	}
	if !p.isKeyword("END") {
		p.fail(p.tok.pos, "expected END to close CASE at column %d, found %s", newSyntaxError(p.lx.src, casePos, "").Col, p.found())
	}
	p.advance()
	return c
}

// parseCall parses the argument list of a call to the function named by nameTok;
// the current token is "(".
func (p *parser) parseCall(nameTok token, lower string) expr {
	p.enter()
	defer p.leave()
	if lower == "cast" {
		return p.parseCast()
	}
	fn := p.funcs.lookup(lower)
	if fn == nil {
		p.fail(nameTok.pos, "unknown function %s", quoteShort(nameTok.text))
	}
	p.advance() // (
	var args []expr
	var argPos []int
	if p.tok.kind != tRParen {
		for {
			argPos = append(argPos, p.tok.pos)
			if p.tok.kind == tStar {
				if n := p.peek(); n.kind == tComma || n.kind == tRParen {
					p.advance()
					args = append(args, starExpr{})
					goto next
				}
			}
			args = append(args, p.parseExpr())
		next:
			if p.tok.kind != tComma {
				break
			}
			p.advance()
		}
	}
	p.expect(tRParen)
	if len(args) < fn.minArgs || fn.maxArgs >= 0 && len(args) > fn.maxArgs {
		p.fail(nameTok.pos, "%s() takes %s, got %d", fn.name, fn.arity(), len(args))
	}
	c := &callExpr{fn: fn, args: args}
	at := func(i int, msg string) {
		pos := nameTok.pos
		if i >= 0 && i < len(argPos) {
			pos = argPos[i]
		}
		p.fail(pos, "%s", msg)
	}
	if fn.check != nil {
		if i, msg := fn.check(c); msg != "" {
			at(i, msg)
		}
	}
	if fn.compile != nil {
		c.xargs = make([]Arg, len(args))
		for i, a := range args {
			c.xargs[i] = Arg{x: a}
		}
		ev, err := fn.compile(*p.deps, c.xargs)
		if err != nil {
			i := -1
			var ae *ArgError
			if errors.As(err, &ae) {
				i = ae.Index
			}
			at(i, fn.name+": "+err.Error())
		}
		c.ev = ev
	}
	return c
}

func (p *parser) parseCast() expr {
	p.advance() // (
	x := p.parseExpr()
	p.expectKeyword("AS")
	if p.tok.kind != tIdent {
		p.fail(p.tok.pos, "expected a type name after AS, found %s", p.found())
	}
	var to castType
	switch strings.ToLower(p.tok.text) {
	case "string", "nvarchar", "text", "ntext", "varchar":
		to = castString
	case "int", "integer":
		to = castInt
	case "decimal", "double":
		to = castDecimal
	case "bool", "boolean":
		to = castBool
	default:
		p.fail(p.tok.pos, "cast: unknown type %s (want String, Int, Decimal or Bool)", p.found())
	}
	p.advance()
	p.expect(tRParen)
	return &castExpr{x: x, to: to}
}

// Foreach is a compiled foreach clause, "samples AS s": an expression that
// yields an array and the name its elements take in the rule. It is
// immutable and safe for concurrent use.
type Foreach struct {
	src   string
	x     expr
	alias string
}

// ParseForeach compiles a rule's foreach clause: an expression (evaluated
// against the payload like a SELECT item), the keyword AS and a name. Errors
// are *SyntaxError with the position in src.
func ParseForeach(src string) (f *Foreach, err error) {
	return NewCompiler(nil, Deps{}).parseForeach(src)
}

func (c *Compiler) parseForeach(src string) (f *Foreach, err error) {
	p := c.parser(src, 0)
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bail)
			if !ok {
				panic(r)
			}
			f, err = nil, b.err
		}
	}()
	p.advance()
	x := p.parseExpr()
	if !p.isKeyword("AS") {
		p.fail(p.tok.pos, "expected AS and a name for the element (e.g. samples AS s), found %s", p.found())
	}
	p.advance()
	if p.tok.kind != tIdent || reserved[strings.ToLower(p.tok.text)] {
		p.fail(p.tok.pos, "expected a name for the element after AS, found %s", p.found())
	}
	alias := p.tok.text
	p.advance()
	if p.tok.kind != tEOF {
		p.fail(p.tok.pos, "expected end of foreach, found %s", p.found())
	}
	return &Foreach{src: src, x: x, alias: alias}, nil
}

// Alias returns the name the elements take, e.g. "s".
func (f *Foreach) Alias() string { return f.alias }

// String returns the clause's source text.
func (f *Foreach) String() string { return f.src }

// Elements evaluates the array for one message. An array gives its
// elements; anything else (Undefined, null, an object, a number...) gives
// none, so the rule selects nothing for that message. The error is an
// *EvalError, e.g. when the payload is not JSON.
func (f *Foreach) Elements(env *Env) ([]any, error) {
	v, err := f.x.eval(env)
	if err != nil {
		return nil, err
	}
	a, _ := v.([]any)
	return a, nil
}
