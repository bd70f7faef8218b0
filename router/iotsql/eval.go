package iotsql

import (
	"bytes"
	"math"
	"time"
)

// Env is the evaluation context of one message. It decodes the payload lazily, at
// most once, and only as far as needed: SELECT * copies the payload's top-level
// members without decoding them, and a field reference decodes only that member.
// It fixes "now" for the message, so timestamp() gives the same value in the SELECT
// statement and in every template evaluated with the same Env.
//
// An Env is not safe for concurrent use. Values it returns may share memory with
// the message payload, which must not be modified while the Env is in use.
type Env struct {
	envState

	// itemJSON holds the JSON of the values of the SELECT items while
	// Query.Eval writes its output; it keeps its memory for the next Eval.
	itemJSON []byte

	// Inline storage, so that common payloads and queries need no more
	// allocations; what a message uses of it is written before it is read,
	// so Reset leaves it as it is. The pointer-free arrays come last so that
	// the GC scans only the fields above.
	memBuf  [32]member
	entBuf  [32]outEntry
	spanBuf [8]itemSpan
	jsonBuf [64]byte
}

// envState is what an Env holds for one message: all of it starts anew
// with each message (Reset).
type envState struct {
	msg *Message
	now time.Time

	state   payloadState
	jsonErr error
	members []member // top-level members of an object payload, in payload order
	decoded []any    // decoded values of members, allocated on first use
	root    any      // decoded payload (non-object JSON, or object once Decoded ran)
	rootOK  bool

	// scopes are the current elements of the nested SELECTs being
	// evaluated, outermost first.
	scopes []any

	// traceID is traceid()'s UUID for a message without one, made on first use.
	traceID string

	// The current element under a rule's foreach (see SetElement).
	elem    any
	elemIdx int
	inElem  bool
}

type payloadState uint8

const (
	payloadUnscanned payloadState = iota
	payloadObject
	payloadOther // valid JSON that is not an object
	payloadInvalid
)

// member is one top-level member of an object payload, as offsets into the payload.
// It holds no pointers, which keeps the per-message Env cheap to allocate.
type member struct {
	k0, k1 int32 // the key as written, quotes included
	v0, v1 int32 // the value as written
	esc    bool  // the key has escapes
}

// notDecoded marks a member whose value has not been decoded yet.
type notDecoded struct{}

// rawKey returns member i's key as written in the payload, quotes included.
func (e *Env) rawKey(i int) []byte {
	m := &e.members[i]
	return e.msg.Payload[m.k0:m.k1]
}

// rawValue returns member i's value as written in the payload.
func (e *Env) rawValue(i int) []byte {
	m := &e.members[i]
	return e.msg.Payload[m.v0:m.v1]
}

// keyIs reports whether the member's (unescaped) key is name. Lookups call
// it for every member: the test of the length, which rejects most, is
// inlined.
func (m *member) keyIs(payload []byte, name string) bool {
	return (m.esc || int(m.k1-m.k0) == len(name)+2) && m.keyMatches(payload, name)
}

// keyMatches is keyIs past the length.
func (m *member) keyMatches(payload []byte, name string) bool {
	k := payload[m.k0:m.k1]
	if !m.esc {
		return string(k[1:len(k)-1]) == name
	}
	return unquote(k, true) == name
}

// key returns member i's unescaped key.
func (e *Env) key(i int) string {
	m := &e.members[i]
	return unquote(e.msg.Payload[m.k0:m.k1], m.esc)
}

// NewEnv returns the evaluation context of msg. Its "now" (timestamp()) is
// msg.Received, or the current time when that is zero.
func NewEnv(msg *Message) *Env {
	e := new(Env)
	e.Reset(msg)
	return e
}

// maxKeptItemJSON is the most buffer for SELECT item values that Reset keeps.
const maxKeptItemJSON = 4 << 10

// Reset makes e the evaluation context of msg, as NewEnv(msg) does, for an
// Env that is reused (an engine pools them) once nothing evaluates with it
// any more. It keeps the buffer Query.Eval writes into, up to a few KiB.
// What e returned for the earlier message stays valid: no value or output
// shares the Env's own memory. Reset(nil) only lets go of the earlier
// message (for an Env put aside); e is then unusable until the next Reset.
func (e *Env) Reset(msg *Message) {
	js := e.itemJSON
	if cap(js) > maxKeptItemJSON {
		js = nil
	}
	e.envState, e.itemJSON = envState{msg: msg}, js[:0]
	if msg != nil {
		if e.now = msg.Received; e.now.IsZero() {
			e.now = time.Now()
		}
	}
}

// SetElement makes v, at 0-based position i of a foreach array, the element
// that the rule's alias and index() refer to, until ClearElement.
func (e *Env) SetElement(i int, v any) {
	e.elem, e.elemIdx, e.inElem = v, i, true
}

// ClearElement ends a foreach: the alias and index() are Undefined again.
func (e *Env) ClearElement() {
	e.elem, e.elemIdx, e.inElem = nil, 0, false
}

// Decoded returns the decoded JSON payload (see value.go for the Go types used:
// objects are map[string]any, integers int64, decimals float64). It returns an
// *EvalError when the payload is not valid JSON. The result must not be modified.
func (e *Env) Decoded() (any, error) {
	e.scan()
	switch e.state {
	case payloadInvalid:
		return nil, e.notJSON()
	case payloadObject:
		if !e.rootOK {
			m := make(map[string]any, len(e.members))
			for i := range e.members {
				m[e.key(i)] = e.memberValue(i)
			}
			e.root, e.rootOK = m, true
		}
	}
	return e.root, nil
}

func (e *Env) notJSON() error {
	return &EvalError{Msg: "payload is not valid JSON", Err: e.jsonErr}
}

// scan validates the payload once and indexes the members of an object payload.
func (e *Env) scan() {
	if e.state != payloadUnscanned {
		return
	}
	b := e.msg.Payload
	if len(b) > math.MaxInt32 {
		e.state, e.jsonErr = payloadInvalid, &jsonError{0, "payload too large"}
		return
	}
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		v, err := decodeJSON(b)
		if err != nil {
			e.state, e.jsonErr = payloadInvalid, err
			return
		}
		e.state, e.root, e.rootOK = payloadOther, v, true
		return
	}
	members := e.memBuf[:0]
	fail := func(off int, msg string) {
		e.state, e.jsonErr = payloadInvalid, &jsonError{off, msg}
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				fail(i, "expected object key")
				return
			}
			end, esc, err := scanString(b, i)
			if err != nil {
				e.state, e.jsonErr = payloadInvalid, err
				return
			}
			k0 := i
			i = skipWS(b, end)
			if i >= len(b) || b[i] != ':' {
				fail(i, "expected ':'")
				return
			}
			vs := skipWS(b, i+1)
			ve, err := scanValue(b, vs, 1)
			if err != nil {
				e.state, e.jsonErr = payloadInvalid, err
				return
			}
			members = append(members, member{k0: int32(k0), k1: int32(end), v0: int32(vs), v1: int32(ve), esc: esc})
			i = skipWS(b, ve)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			fail(i, "expected ',' or '}'")
			return
		}
	}
	if i = skipWS(b, i); i != len(b) {
		fail(i, "data after the JSON value")
		return
	}
	e.state, e.members = payloadObject, members
}

func (e *Env) memberValue(i int) any {
	if e.decoded == nil {
		e.decoded = make([]any, len(e.members))
		for j := range e.decoded {
			e.decoded[j] = notDecoded{}
		}
	}
	if _, todo := e.decoded[i].(notDecoded); todo {
		m := &e.members[i]
		e.decoded[i], _ = decodeAt(e.msg.Payload[:m.v1], int(m.v0))
	}
	return e.decoded[i]
}

// field returns the payload's top-level member name: Undefined when absent or when
// the payload is JSON but not an object, an error when the payload is not JSON.
func (e *Env) field(name string) (any, error) {
	i, err := e.lookup(name)
	if i < 0 {
		return undef, err
	}
	return e.memberValue(i), nil
}

// lookup returns the index of the payload's top-level member name, -1 when
// there is none or the payload is JSON but not an object, and an error when
// the payload is not JSON. The last of duplicate keys wins, as in
// encoding/json.
func (e *Env) lookup(name string) (int, error) {
	e.scan()
	switch e.state {
	case payloadInvalid:
		return -1, e.notJSON()
	case payloadOther:
		return -1, nil
	}
	for i := len(e.members) - 1; i >= 0; i-- {
		if e.members[i].keyIs(e.msg.Payload, name) {
			return i, nil
		}
	}
	return -1, nil
}

// FieldJSON returns the value of the payload's top-level member name as JSON,
// exactly as "SELECT VALUE `name`" gives it, and the number of top-level
// members named name (duplicates; the value is the last one's). Both are
// zero when there is no such member, the payload is not an object or not
// JSON. When the value as written is already in that form (see canonicalJSON)
// it is returned without decoding and shares the payload's memory; it must
// not be modified.
func (e *Env) FieldJSON(name string) (value []byte, count int) {
	e.scan()
	if e.state != payloadObject {
		return nil, 0
	}
	i := -1
	for j := range e.members {
		if e.members[j].keyIs(e.msg.Payload, name) {
			i = j // the last one wins, as in lookup
			count++
		}
	}
	if i < 0 {
		return nil, 0
	}
	if raw := e.rawValue(i); canonicalJSON(raw) {
		return raw, count
	}
	return appendJSON(nil, e.memberValue(i)), count
}

// appendMemberJSON appends the JSON of member i's value, as appendJSON of
// its decoded value would, copying the text as written when that is the
// same (no decoding, no boxing).
func (e *Env) appendMemberJSON(b []byte, i int) []byte {
	if raw := e.rawValue(i); canonicalJSON(raw) {
		return append(b, raw...)
	}
	return appendJSON(b, e.memberValue(i))
}

// appendMemberText appends member i's value as a template inserts it (see
// appendTemplateValue), copying the text as written when that is the same:
// a string without escapes (its content), or a non-string canonicalJSON
// value.
func (e *Env) appendMemberText(b []byte, i int) []byte {
	raw := e.rawValue(i)
	if raw[0] == '"' {
		if bytes.IndexByte(raw, '\\') < 0 {
			return append(b, raw[1:len(raw)-1]...)
		}
	} else if canonicalJSON(raw) {
		return append(b, raw...)
	}
	return appendTemplateValue(b, e.memberValue(i))
}

// topField returns the member name x reads when x is a top-level path of
// one step (`a`, not `a.b` nor an element's member), which the Env can
// answer from the payload's text.
func topField(x expr) (string, bool) {
	p, ok := x.(*pathExpr)
	if !ok || p.scope != 0 || len(p.steps) != 1 {
		return "", false
	}
	return p.steps[0].name, true
}

// EvalError reports a message that cannot be evaluated: a payload that is not JSON
// while the statement or template reads its fields, or an argument that makes a
// function fail where IoT Core fails the rule (an invalid parse_time pattern or
// time zone computed at run time, a time_to_epoch string that does not match its
// pattern). Invalid argument types do not cause errors: the function is Undefined.
type EvalError struct {
	// Msg says what was wrong.
	Msg string
	// Err is the underlying cause, if any.
	Err error
}

// Error returns Msg, followed by the cause when there is one.
func (e *EvalError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *EvalError) Unwrap() error { return e.Err }

// Query is a compiled SELECT statement. It is immutable and safe for concurrent use;
// each evaluation needs its own Env.
type Query struct {
	sql      string
	filter   string
	items    []selectItem
	star     bool
	starOnly bool
	value    expr // SELECT VALUE expr
	where    expr
}

// Filter returns the MQTT topic filter of the FROM clause, e.g. "report",
// "fleet/+/report" or "#".
func (q *Query) Filter() string { return q.filter }

// String returns the statement's source text.
func (q *Query) String() string { return q.sql }

// outEntry is one member of the SELECT output: payload member m (copied as written),
// unless item it (>= 0) replaced its value; m < 0 for members that come from items.
type outEntry struct {
	m, it int32
	dead  bool
}

// itemSpan is where the JSON of a SELECT item's value is in Env.itemJSON.
type itemSpan struct{ b0, b1 int }

// Eval evaluates the statement for one message.
//
// matched is false when WHERE is false or Undefined; value is then nil. Otherwise
// value is the SELECT output: a JSON object whose members are the items in order
// ("*" contributes the payload's members, copied byte for byte); an item that is
// Undefined is left out, and an item whose name is already present replaces that
// member's value in place. "SELECT *" alone returns the payload unchanged, JSON or
// not (value then shares msg.Payload's memory), as IoT Core passes binary payloads
// through. "SELECT VALUE x" returns x as JSON (empty when x is Undefined).
//
// err is an *EvalError when the message cannot be evaluated: the payload is not
// JSON while fields are read or "*" is combined with other items, "*" with other
// items meets a JSON payload that is not an object, or a function fails.
func (q *Query) Eval(env *Env) (value []byte, matched bool, err error) {
	if q.where != nil {
		v, err := q.where.eval(env)
		if err != nil {
			return nil, false, err
		}
		if b, ok := toBool(v); !ok || !b {
			return nil, false, nil
		}
	}
	if q.value != nil {
		out, _, err := appendValueJSON([]byte{}, env, q.value)
		if err != nil {
			return nil, false, err
		}
		return out, true, nil
	}
	if q.starOnly {
		return env.msg.Payload, true, nil
	}
	// The buffer is the Env's, taken for the time of this Eval.
	js := env.itemJSON
	if js == nil {
		js = env.jsonBuf[:0]
	}
	env.itemJSON = nil
	out, js, err := q.object(env, js[:0])
	env.itemJSON = js[:0]
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// object evaluates the items into an object. The items' values are written
// as JSON into js, in item order, then copied into the output, which is
// made at its exact size and shares no memory with js. It returns js, for
// reuse.
func (q *Query) object(env *Env, js []byte) (out, _ []byte, err error) {
	spans := env.spanBuf[:0]
	if len(q.items) > len(env.spanBuf) {
		spans = make([]itemSpan, len(q.items))
	} else {
		spans = spans[:len(q.items)]
	}
	ents := env.entBuf[:0]
	for idx, it := range q.items {
		if it.star {
			env.scan()
			switch env.state {
			case payloadInvalid:
				return nil, js, env.notJSON()
			case payloadOther:
				return nil, js, &EvalError{Msg: "SELECT * with other items needs a JSON object payload"}
			}
			// Payload members override items listed before "*".
			for k := range ents {
				for mi := range env.members {
					if env.members[mi].keyIs(env.msg.Payload, q.items[ents[k].it].name) {
						ents[k].dead = true
					}
				}
			}
			for mi := range env.members {
				ents = append(ents, outEntry{m: int32(mi), it: -1})
			}
			continue
		}
		b0 := len(js)
		var defined bool
		if js, defined, err = appendValueJSON(js, env, it.x); err != nil {
			return nil, js, err
		}
		if !defined {
			continue
		}
		spans[idx] = itemSpan{b0, len(js)}
		found := false
		for k := range ents {
			e := &ents[k]
			if e.dead {
				continue
			}
			var same bool
			if e.m >= 0 {
				same = env.members[e.m].keyIs(env.msg.Payload, it.name)
			} else {
				same = q.items[e.it].name == it.name
			}
			if !same {
				continue
			}
			if found {
				e.dead = true // a duplicate key of the payload
			} else {
				e.it, found = int32(idx), true
			}
		}
		if !found {
			ents = append(ents, outEntry{m: -1, it: int32(idx)})
		}
	}

	size := 1 // '{' and '}', less the comma the first member does not have
	for _, e := range ents {
		if e.dead {
			continue
		}
		size++ // the comma
		if e.m >= 0 {
			m := &env.members[e.m]
			size += int(m.k1-m.k0) + 1 // the key and ':'
		} else {
			size += len(q.items[e.it].key) // ':' included
		}
		if e.it >= 0 {
			size += spans[e.it].b1 - spans[e.it].b0
		} else {
			m := &env.members[e.m]
			size += int(m.v1 - m.v0)
		}
	}
	out = make([]byte, 0, max(size, 2))
	out = append(out, '{')
	first := true
	for k := 0; k < len(ents); k++ {
		e := ents[k]
		if e.dead {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		if e.it < 0 {
			// Payload members that follow one another in a payload without
			// white space are already written as the output writes them:
			// one copy for the run.
			m0, m := &env.members[e.m], &env.members[e.m]
			for k+1 < len(ents) && m.v0 == m.k1+1 {
				next := ents[k+1]
				if next.dead || next.it >= 0 || next.m != ents[k].m+1 || env.members[next.m].k0 != m.v1+1 {
					break
				}
				k++
				m = &env.members[next.m]
			}
			if m.v0 == m.k1+1 {
				out = append(out, env.msg.Payload[m0.k0:m.v1]...)
				continue
			}
			out = append(out, env.msg.Payload[m0.k0:m.k1]...) // the run, then the last member's key
			out = append(out, ':')
			out = append(out, env.rawValue(int(ents[k].m))...)
			continue
		}
		if e.m >= 0 {
			out = append(out, env.rawKey(int(e.m))...)
			out = append(out, ':')
		} else {
			out = append(out, q.items[e.it].key...)
		}
		out = append(out, js[spans[e.it].b0:spans[e.it].b1]...)
	}
	out = append(out, '}')
	return out, js, nil
}

// appendValueJSON appends the JSON of x's value to b and reports whether
// the value is defined (Undefined appends nothing). A member of the payload
// is copied from the payload's text where that is its JSON, and a function
// that writes its JSON itself (funcDef.appendJSON) does so: neither makes a
// value.
func appendValueJSON(b []byte, env *Env, x expr) ([]byte, bool, error) {
	if name, ok := topField(x); ok {
		i, err := env.lookup(name)
		if i < 0 {
			return b, false, err
		}
		return env.appendMemberJSON(b, i), true, nil
	}
	if c, ok := x.(*callExpr); ok && c.fn.appendJSON != nil {
		return c.fn.appendJSON(env, c, b)
	}
	v, err := x.eval(env)
	if err != nil || isUndef(v) {
		return b, false, err
	}
	return appendJSON(b, v), true, nil
}

// ---- node evaluation ----

func (x *litExpr) eval(*Env) (any, error) { return x.v, nil }

func (x *pathExpr) eval(env *Env) (any, error) {
	var v any
	if x.scope > 0 {
		v = memberValue(env.scopes[x.scope-1], x.steps[0].name)
	} else {
		var err error
		if v, err = env.field(x.steps[0].name); err != nil {
			return nil, err
		}
	}
	for _, s := range x.steps[1:] {
		if s.isIndex {
			v = indexValue(v, s.index)
		} else {
			v = memberValue(v, s.name)
		}
	}
	return v, nil
}

func memberValue(v any, name string) any {
	if m, ok := v.(map[string]any); ok {
		if e, ok := m[name]; ok {
			return e
		}
	}
	return undef
}

func indexValue(v any, i int) any {
	if a, ok := v.([]any); ok && i >= 0 && i < len(a) {
		return a[i]
	}
	return undef
}

func (x *memberExpr) eval(env *Env) (any, error) {
	v, err := x.x.eval(env)
	if err != nil {
		return nil, err
	}
	return memberValue(v, x.name), nil
}

func (x *indexExpr) eval(env *Env) (any, error) {
	v, err := x.x.eval(env)
	if err != nil {
		return nil, err
	}
	idx, err := x.index.eval(env)
	if err != nil {
		return nil, err
	}
	if s, ok := idx.(string); ok {
		return memberValue(v, s), nil
	}
	i, ok := toInt(idx)
	if !ok || i < 0 || i > math.MaxInt32 {
		return undef, nil
	}
	return indexValue(v, int(i)), nil
}

func (starExpr) eval(env *Env) (any, error) { return env.Decoded() }

func (*elemExpr) eval(env *Env) (any, error) {
	if !env.inElem {
		return undef, nil
	}
	return env.elem, nil
}

func (x *negExpr) eval(env *Env) (any, error) {
	v, err := x.x.eval(env)
	if err != nil {
		return nil, err
	}
	r, _ := negate(v)
	return r, nil
}

func (x *notExpr) eval(env *Env) (any, error) {
	v, err := x.x.eval(env)
	if err != nil {
		return nil, err
	}
	if b, ok := toBool(v); ok {
		return !b, nil
	}
	return undef, nil
}

// AND and OR follow the IoT Core tables: both operands must be Booleans (or the
// strings "true"/"false"), otherwise the result is Undefined, so "false AND x" is
// Undefined, not false, when x is Undefined. Both sides are always evaluated.
func (x *logicExpr) eval(env *Env) (any, error) {
	l, err := x.l.eval(env)
	if err != nil {
		return nil, err
	}
	r, err := x.r.eval(env)
	if err != nil {
		return nil, err
	}
	lb, lok := toBool(l)
	rb, rok := toBool(r)
	if !lok || !rok {
		return undef, nil
	}
	if x.or {
		return lb || rb, nil
	}
	return lb && rb, nil
}

func (x *cmpExpr) eval(env *Env) (any, error) {
	l, err := x.l.eval(env)
	if err != nil {
		return nil, err
	}
	r, err := x.r.eval(env)
	if err != nil {
		return nil, err
	}
	switch x.op {
	case tEq:
		return equal(l, r), nil
	case tNe:
		if eq, ok := equal(l, r).(bool); ok {
			return !eq, nil
		}
		return undef, nil
	}
	c, ok := compare(l, r)
	if !ok {
		return undef, nil
	}
	switch x.op {
	case tLt:
		return c < 0, nil
	case tLe:
		return c <= 0, nil
	case tGt:
		return c > 0, nil
	}
	return c >= 0, nil
}

// Arithmetic follows the IoT Core operator tables:
//   - Int op Int is an Int for + - * / %: division truncates toward zero, as in
//     Java, so 7 / 2 = 3. An Int result that overflows int64 is computed as a
//     Decimal instead (IoT Core's Int has 34 digits).
//   - Int op Decimal and Decimal op Decimal are Decimals.
//   - "+" with a String on either side concatenates the string forms of both sides;
//     the other operators convert numeric Strings to Decimals.
//   - Division or remainder by zero, and any other operand types, give Undefined.
func (x *arithExpr) eval(env *Env) (any, error) {
	l, err := x.l.eval(env)
	if err != nil {
		return nil, err
	}
	r, err := x.r.eval(env)
	if err != nil {
		return nil, err
	}
	return arith(x.op, l, r), nil
}

func arith(op tokKind, l, r any) any {
	if op == tPlus {
		ls, lIsStr := l.(string)
		rs, rIsStr := r.(string)
		if lIsStr || rIsStr {
			var ok bool
			if !lIsStr {
				if ls, ok = toStr(l); !ok {
					return undef
				}
			}
			if !rIsStr {
				if rs, ok = toStr(r); !ok {
					return undef
				}
			}
			return ls + rs
		}
	}
	ln, ok := toNum(l)
	if !ok {
		return undef
	}
	rn, ok := toNum(r)
	if !ok {
		return undef
	}
	if ln.isInt && rn.isInt {
		a, b := ln.i, rn.i
		switch op {
		case tPlus:
			if s := a + b; (s > a) == (b > 0) {
				return s
			}
		case tMinus:
			if d := a - b; (d < a) == (b > 0) {
				return d
			}
		case tStar:
			if a == 0 || b == 0 {
				return int64(0)
			}
			if p := a * b; p/b == a && !(a == -1 && b == math.MinInt64) && !(b == -1 && a == math.MinInt64) {
				return p
			}
		case tSlash:
			if b == 0 {
				return undef
			}
			if !(a == math.MinInt64 && b == -1) {
				return a / b
			}
		case tPercent:
			if b == 0 {
				return undef
			}
			if b == -1 {
				return int64(0)
			}
			return a % b
		}
		// overflow: fall through to Decimal arithmetic
	}
	a, b := ln.float(), rn.float()
	var f float64
	switch op {
	case tPlus:
		f = a + b
	case tMinus:
		f = a - b
	case tStar:
		f = a * b
	case tSlash:
		if b == 0 {
			return undef
		}
		f = a / b
	case tPercent:
		if b == 0 {
			return undef
		}
		f = math.Mod(a, b)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return undef
	}
	return f
}

func (x *callExpr) eval(env *Env) (any, error) { return x.fn.call(env, x) }

// cast follows IoT Core's cast tables, with Decimal to Int truncating toward zero
// (Java's conversion) and whole-number Decimals staying Decimals.
func (x *castExpr) eval(env *Env) (any, error) {
	v, err := x.x.eval(env)
	if err != nil {
		return nil, err
	}
	return castValue(v, x.to), nil
}

func castValue(v any, to castType) any {
	switch to {
	case castString:
		if s, ok := toStr(v); ok {
			return s
		}
	case castInt:
		if b, ok := v.(bool); ok {
			if b {
				return int64(1)
			}
			return int64(0)
		}
		if n, ok := toNum(v); ok {
			if n.isInt {
				return n.i
			}
			if i, ok := floatToInt(math.Trunc(n.f)); ok {
				return i
			}
		}
	case castDecimal:
		if b, ok := v.(bool); ok {
			if b {
				return 1.0
			}
			return 0.0
		}
		if n, ok := toNum(v); ok {
			return n.float()
		}
	case castBool:
		switch v := v.(type) {
		case bool:
			return v
		case string:
			if b, ok := toBool(v); ok {
				return b
			}
		case int64, float64:
			n, _ := toNum(v)
			return n.float() != 0
		}
	}
	return undef
}

func (x *caseExpr) eval(env *Env) (any, error) {
	var subject any
	if x.subject != nil {
		var err error
		if subject, err = x.subject.eval(env); err != nil {
			return nil, err
		}
	}
	for _, w := range x.whens {
		v, err := w.when.eval(env)
		if err != nil {
			return nil, err
		}
		var hit bool
		if x.subject != nil {
			hit, _ = equal(subject, v).(bool)
		} else {
			b, ok := toBool(v)
			hit = ok && b
		}
		if hit {
			return w.then.eval(env)
		}
	}
	if x.elseX != nil {
		return x.elseX.eval(env)
	}
	return undef, nil
}

func (x *arrayExpr) eval(env *Env) (any, error) {
	a := make([]any, len(x.elems))
	for i, e := range x.elems {
		v, err := e.eval(env)
		if err != nil {
			return nil, err
		}
		a[i] = v
	}
	return a, nil
}

func (x *objectExpr) eval(env *Env) (any, error) {
	m := make(map[string]any, len(x.keys))
	for i, e := range x.vals {
		v, err := e.eval(env)
		if err != nil {
			return nil, err
		}
		if !isUndef(v) {
			m[x.keys[i]] = v
		}
	}
	return m, nil
}

// A nested SELECT evaluates its items and WHERE once per element of its
// FROM array, in order. An object in FROM is evaluated as the one element
// and gives that element's output, not an Array [fleetgate]; anything else
// is Undefined. An element that is not an object has no members, so its
// items are Undefined (a "*" item keeps the element as it is).
func (x *subqueryExpr) eval(env *Env) (any, error) {
	src, err := x.from.eval(env)
	if err != nil {
		return nil, err
	}
	var elems []any
	single := false
	switch src := src.(type) {
	case []any:
		elems = src
	case map[string]any:
		elems, single = []any{src}, true
	default:
		return undef, nil
	}
	for len(env.scopes) < x.depth {
		env.scopes = append(env.scopes, nil)
	}
	defer func() { env.scopes = env.scopes[:x.depth-1] }()
	out := make([]any, 0, len(elems))
	for _, el := range elems {
		env.scopes[x.depth-1] = el
		if x.where != nil {
			w, err := x.where.eval(env)
			if err != nil {
				return nil, err
			}
			if b, ok := toBool(w); !ok || !b {
				continue
			}
		}
		v, err := x.output(env, el)
		if err != nil {
			return nil, err
		}
		if !isUndef(v) {
			out = append(out, v)
		}
	}
	if single {
		if len(out) == 0 {
			return undef, nil
		}
		return out[0], nil
	}
	return out, nil
}

// output is the nested SELECT's output for element el.
func (x *subqueryExpr) output(env *Env, el any) (any, error) {
	if x.value != nil {
		return x.value.eval(env)
	}
	if x.star && len(x.items) == 1 {
		return el, nil
	}
	m := make(map[string]any, len(x.items))
	for _, it := range x.items {
		if it.star {
			if obj, ok := el.(map[string]any); ok {
				for k, v := range obj {
					m[k] = v
				}
			}
			continue
		}
		v, err := it.x.eval(env)
		if err != nil {
			return nil, err
		}
		if !isUndef(v) {
			m[it.name] = v
		}
	}
	return m, nil
}
