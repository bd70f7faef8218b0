package iotsql

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Deps are what functions may need when a call is compiled. A function takes
// them at compile time, so the message path does no I/O and tests can hand in
// fakes.
type Deps struct {
	// Lookups resolves lookup tables by name (lookup('vehicles', key)); nil:
	// there are none.
	Lookups Lookups
	// Now is the wall clock, for functions that need the current time rather
	// than the message's (timestamp() is the message's); nil: time.Now.
	Now func() time.Time
}

// Clock returns d.Now, or time.Now when it is nil.
func (d Deps) Clock() func() time.Time {
	if d.Now == nil {
		return time.Now
	}
	return d.Now
}

// Lookups resolves lookup tables by name when a rule is compiled.
type Lookups interface {
	// Table returns the table called name, or false when there is none.
	Table(name string) (LookupTable, bool)
}

// LookupTable is one lookup table. Get is called on the message path: it must
// be safe for concurrent use and answer from memory (a snapshot the table
// swaps when it reloads), never block on I/O. The value is a JSON value of
// the value model (see value.go: an object is a map[string]any) and must not
// be modified by anyone once returned.
type LookupTable interface {
	Get(key string) (any, bool)
}

// Function is a SQL function a Registry can hold besides the built-in ones.
type Function struct {
	// Name is matched case-insensitively; it is also the default output name
	// of a SELECT item that calls the function.
	Name string
	// MinArgs and MaxArgs bound the number of arguments; MaxArgs < 0: any.
	MinArgs, MaxArgs int
	// Compile is called once per call site when a statement or template is
	// compiled, with the compile-time dependencies and the call's arguments
	// (whose literals it may check and precompute). It returns the
	// evaluator, or an error that is reported as a syntax error at the call
	// (at argument i for an *ArgError). It is never called on the message
	// path.
	Compile func(deps Deps, args []Arg) (Evaluator, error)
}

// Evaluator evaluates one call for one message. It evaluates the arguments
// it needs with Arg.Eval, returns Undefined() for arguments of the wrong
// type, and an *EvalError only where IoT Core fails the rule. It must be safe
// for concurrent use.
type Evaluator func(env *Env, args []Arg) (any, error)

// Arg is one argument of a call.
type Arg struct{ x expr }

// Literal returns the argument's value when it is a literal (a string,
// number, boolean or null written in the statement).
func (a Arg) Literal() (any, bool) {
	if l, ok := a.x.(*litExpr); ok {
		return l.v, true
	}
	return nil, false
}

// Eval evaluates the argument for one message.
func (a Arg) Eval(env *Env) (any, error) { return a.x.eval(env) }

// ArgError is a Function.Compile error about argument Index (0-based).
type ArgError struct {
	Index int
	Err   error
}

// Error returns the cause's message.
func (e *ArgError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *ArgError) Unwrap() error { return e.Err }

// Undefined returns the Undefined value: what a missing field or a function
// given arguments of the wrong type yields.
func Undefined() any { return undef }

// IsUndefined reports whether v is the Undefined value.
func IsUndefined(v any) bool { return isUndef(v) }

// DecodeJSON decodes one JSON document into the value model (see value.go:
// objects are map[string]any, integers int64, other numbers float64), the
// form a LookupTable's rows must have.
func DecodeJSON(b []byte) (any, error) { return decodeJSON(b) }

// Registry holds the functions a Compiler knows: the built-in ones and those
// registered. It is not safe for concurrent use while functions are being
// registered; once a Compiler uses it, it must not change.
type Registry struct {
	funcs map[string]*funcDef
}

// NewRegistry returns a registry of the built-in functions.
func NewRegistry() *Registry {
	r := &Registry{funcs: map[string]*funcDef{}}
	for _, group := range builtinGroups {
		for _, f := range group() {
			r.funcs[strings.ToLower(f.name)] = f
		}
	}
	return r
}

// Register adds f. A name that is already taken (by a built-in function
// too) or a Function without Compile is an error.
func (r *Registry) Register(f Function) error {
	lower := strings.ToLower(f.Name)
	switch {
	case f.Name == "" || f.Compile == nil:
		return errors.New("register function: a function needs a name and Compile")
	case lower == "cast" || reserved[lower]:
		return fmt.Errorf("register function %s: the name is a keyword", f.Name)
	case r.funcs[lower] != nil:
		return fmt.Errorf("register function %s: the name is taken", f.Name)
	case f.MaxArgs >= 0 && f.MaxArgs < f.MinArgs:
		return fmt.Errorf("register function %s: MaxArgs < MinArgs", f.Name)
	}
	r.funcs[lower] = &funcDef{name: f.Name, minArgs: f.MinArgs, maxArgs: f.MaxArgs, compile: f.Compile, call: callCompiled}
	return nil
}

// lookup returns the function called lower (lower-case), or nil.
func (r *Registry) lookup(lower string) *funcDef { return r.funcs[lower] }

// callCompiled runs the evaluator a Function's Compile returned.
func callCompiled(env *Env, c *callExpr) (any, error) { return c.ev(env, c.xargs) }

// Compiler compiles statements, templates and foreach clauses with one
// function registry and one set of dependencies. It is safe for concurrent
// use; what it compiles is immutable.
type Compiler struct {
	funcs *Registry
	deps  Deps
}

// NewCompiler returns a compiler over funcs (nil: the built-in functions)
// handing deps to the functions that need them.
func NewCompiler(funcs *Registry, deps Deps) *Compiler {
	if funcs == nil {
		funcs = NewRegistry()
	}
	return &Compiler{funcs: funcs, deps: deps}
}

// Query compiles a SELECT statement (see ParseQuery) of a rule whose foreach
// alias is alias ("" for none): a bare name equal to it is the current
// element.
func (c *Compiler) Query(sql, alias string) (*Query, error) { return c.parseQuery(sql, alias) }

// Template compiles a substitution template (see ParseTemplate) of a rule
// whose foreach alias is alias ("" for none).
func (c *Compiler) Template(s, alias string) (*Template, error) { return c.parseTemplate(s, alias) }

// Foreach compiles a rule's foreach clause (see ParseForeach).
func (c *Compiler) Foreach(src string) (*Foreach, error) { return c.parseForeach(src) }

// parser returns a parser of src from offset that knows c's functions.
func (c *Compiler) parser(src string, offset int) *parser {
	p := newParser(src, offset)
	p.funcs, p.deps = c.funcs, &c.deps
	return p
}
