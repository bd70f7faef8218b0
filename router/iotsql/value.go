package iotsql

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Values of the rule language are plain Go values in an `any`:
//
//	IoT type    Go representation
//	Undefined   undefinedT{} (the value undef)
//	Null        nil
//	Boolean     bool
//	String      string
//	Int         int64
//	Decimal     float64, or json.Number for a payload number that fits neither
//	            int64 nor float64 (kept as its source text so it round-trips)
//	Array       []any
//	Object      map[string]any
//
// The same representation is what Env.Decoded returns. Where this differs from IoT
// Core:
//   - IoT Core's Int has 34 digits and its Decimal 34-digit precision; here Int is
//     int64 (arithmetic that overflows continues as Decimal) and Decimal is float64,
//     which keeps 15-17 significant digits. Payload members copied by SELECT * are
//     never decoded, so they keep their exact text whatever their size.
//   - SQL version 2016-03-23 treats whole-number decimals such as 10.0 as Ints, so
//     that 10.0 / 4 is 2 there; here a number written with a fraction or exponent
//     stays a Decimal (10.0 / 4 = 2.5). Output is the same: 10.0 prints as 10.
//   - String positions (substring, get, length) count Unicode code points, not
//     Java's UTF-16 units; they differ only outside the Basic Multilingual Plane.

// undefinedT is the type of the Undefined value: what a missing field or an invalid
// function call yields. It is left out of objects and renders as "" in templates.
type undefinedT struct{}

var undef any = undefinedT{}

func isUndef(v any) bool {
	_, ok := v.(undefinedT)
	return ok
}

// ---- JSON validation ----

// maxJSONDepth matches encoding/json's nesting limit.
const maxJSONDepth = 10000

type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string { return fmt.Sprintf("offset %d: %s", e.off, e.msg) }

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanValue validates the JSON value starting at b[i] (no leading white space) and
// returns the offset just after it.
func scanValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, &jsonError{i, "unexpected end of input"}
	}
	switch c := b[i]; {
	case c == '{':
		if depth >= maxJSONDepth {
			return i, &jsonError{i, "nested too deeply"}
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return i, &jsonError{i, "expected object key"}
			}
			end, _, err := scanString(b, i)
			if err != nil {
				return end, err
			}
			i = skipWS(b, end)
			if i >= len(b) || b[i] != ':' {
				return i, &jsonError{i, "expected ':'"}
			}
			i, err = scanValue(b, skipWS(b, i+1), depth+1)
			if err != nil {
				return i, err
			}
			i = skipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				return i + 1, nil
			}
			return i, &jsonError{i, "expected ',' or '}'"}
		}
	case c == '[':
		if depth >= maxJSONDepth {
			return i, &jsonError{i, "nested too deeply"}
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			i, err = scanValue(b, i, depth+1)
			if err != nil {
				return i, err
			}
			i = skipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == ']' {
				return i + 1, nil
			}
			return i, &jsonError{i, "expected ',' or ']'"}
		}
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '-' || c >= '0' && c <= '9':
		end, _, err := scanNumber(b, i)
		return end, err
	case c == 't':
		return scanLit(b, i, "true")
	case c == 'f':
		return scanLit(b, i, "false")
	case c == 'n':
		return scanLit(b, i, "null")
	}
	return i, &jsonError{i, fmt.Sprintf("unexpected character %q", b[i])}
}

func scanLit(b []byte, i int, lit string) (int, error) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	return i, &jsonError{i, "invalid literal"}
}

// scanString validates the string starting at b[i] == '"' and returns the offset
// after the closing quote and whether it contains escapes.
func scanString(b []byte, i int) (int, bool, error) {
	start := i
	i++
	escaped := false
	for i < len(b) {
		// Eight bytes at a time while none needs a look, then one at a time
		// to the one that does.
		for i+8 <= len(b) && !specialIn(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && b[i] >= 0x20 && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, false, &jsonError{start, "unterminated string"}
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return i, false, &jsonError{i, `bad \u escape`}
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return i, false, &jsonError{i, `bad \u escape`}
					}
				}
				i += 6
			default:
				return i, false, &jsonError{i, "bad escape"}
			}
		default: // < 0x20
			return i, false, &jsonError{i, "control character in string"}
		}
	}
	return i, false, &jsonError{start, "unterminated string"}
}

// specialIn reports whether any of the eight bytes in x is one scanString
// must look at: a control character, '"' or '\\'. It uses the exact tests
// for "a byte less than n" ((x - n*ones) &^ x & highs, for n <= 0x80) and
// "a zero byte" (the same with n = 1, on x XOR the byte sought).
func specialIn(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return ((x-ones*0x20)&^x|(q-ones)&^q|(bs-ones)&^bs)&highs != 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber validates a JSON number and reports whether it is an integer literal.
func scanNumber(b []byte, i int) (int, bool, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		return i, false, &jsonError{start, "invalid number"}
	}
	if b[i] == '0' {
		i++
	} else {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	isInt := true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, false, &jsonError{start, "invalid number"}
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, false, &jsonError{start, "invalid number"}
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i, isInt, nil
}

// validJSON reports whether b holds exactly one JSON value (with optional white space).
func validJSON(b []byte) error {
	i := skipWS(b, 0)
	end, err := scanValue(b, i, 0)
	if err != nil {
		return err
	}
	if end = skipWS(b, end); end != len(b) {
		return &jsonError{end, "data after the JSON value"}
	}
	return nil
}

// ---- JSON decoding (of already validated input) ----

// decodeJSON validates and decodes one JSON document.
func decodeJSON(b []byte) (any, error) {
	if err := validJSON(b); err != nil {
		return nil, err
	}
	v, _ := decodeAt(b, skipWS(b, 0))
	return v, nil
}

// decodeAt decodes the value at b[i]; b must have been validated.
func decodeAt(b []byte, i int) (any, int) { return decodeValue(b, i, nil) }

// keyCache holds the keys of the objects of one array, which mostly repeat
// from one element to the next (an array of samples), so that the elements
// share them rather than each making its own.
type keyCache struct {
	keys [4]string
	n    int
}

// key returns the unescaped key q (with its quotes), the cached string when
// there is one.
func (kc *keyCache) key(q []byte, esc bool) string {
	if kc == nil || esc {
		return unquote(q, esc)
	}
	k := q[1 : len(q)-1]
	for _, s := range kc.keys {
		if s == string(k) {
			return s
		}
	}
	s := string(k)
	kc.keys[kc.n%len(kc.keys)] = s
	kc.n++
	return s
}

// decodeValue is decodeAt for a value inside an array whose objects' keys
// are cached in kc (nil: none).
func decodeValue(b []byte, i int, kc *keyCache) (any, int) {
	switch c := b[i]; {
	case c == '{':
		m := make(map[string]any)
		i = skipWS(b, i+1)
		if b[i] == '}' {
			return m, i + 1
		}
		for {
			end, esc, _ := scanString(b, i)
			k := kc.key(b[i:end], esc)
			i = skipWS(b, end)
			var v any
			v, i = decodeValue(b, skipWS(b, i+1), nil)
			m[k] = v
			i = skipWS(b, i)
			if b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			return m, i + 1
		}
	case c == '[':
		i = skipWS(b, i+1)
		if b[i] == ']' {
			return []any{}, i + 1
		}
		// The elements go to a buffer on the stack first, so that the
		// array is made once, at its size.
		var buf [8]any
		elems := buf[:0]
		var keys keyCache
		for {
			var v any
			v, i = decodeValue(b, i, &keys)
			elems = append(elems, v)
			i = skipWS(b, i)
			if b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			return append([]any(nil), elems...), i + 1
		}
	case c == '"':
		end, esc, _ := scanString(b, i)
		return unquote(b[i:end], esc), end
	case c == 't':
		return true, i + 4
	case c == 'f':
		return false, i + 5
	case c == 'n':
		return nil, i + 4
	}
	end, isInt, _ := scanNumber(b, i)
	return decodeNumber(b[i:end], isInt), end
}

func decodeNumber(text []byte, isInt bool) any {
	if isInt {
		if v, err := strconv.ParseInt(string(text), 10, 64); err == nil {
			return v
		}
		return json.Number(text)
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return json.Number(text)
	}
	return f
}

// unquote decodes a validated JSON string literal (with its quotes).
func unquote(q []byte, escaped bool) string {
	s := q[1 : len(q)-1]
	if !escaped {
		return string(s)
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := rune(hex4(s[i+2:]))
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, rune(hex4(s[i+2:]))); r2 != utf8.RuneError {
						out = utf8.AppendRune(out, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // " \ /
			out = append(out, s[i+1])
		}
		i += 2
	}
	return string(out)
}

func hex4(b []byte) int {
	v := 0
	for _, c := range b[:4] {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= int(c - '0')
		case c >= 'a' && c <= 'f':
			v |= int(c-'a') + 10
		default:
			v |= int(c-'A') + 10
		}
	}
	return v
}

// canonicalJSON reports whether raw, a validated JSON value, is already
// what appendJSON writes for its decoded value, so that it can be copied as
// written: a string without escapes in valid UTF-8 that has no U+2028 or
// U+2029 (which appendJSON escapes), true, false, null, or an integer other
// than -0 (an integer too large for int64 is kept as its text). It answers
// false for anything else, including forms that would in fact be the same.
func canonicalJSON(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	switch c := raw[0]; {
	case c == '"':
		ascii := true
		for _, c := range raw {
			if c == '\\' {
				return false
			}
			ascii = ascii && c < utf8.RuneSelf
		}
		return ascii || utf8.Valid(raw) && !bytes.Contains(raw, []byte("\u2028")) && !bytes.Contains(raw, []byte("\u2029"))
	case c == 't' || c == 'f' || c == 'n':
		return true
	case c == '-' || c >= '0' && c <= '9':
		for _, c := range raw[1:] {
			if c < '0' || c > '9' {
				return false // a fraction or an exponent: a Decimal
			}
		}
		return string(raw) != "-0"
	}
	return false
}

// ---- JSON encoding ----

// appendJSON appends v as JSON. Undefined appends nothing at top level, is left
// out of objects and becomes null inside arrays. Object keys are sorted so that
// output is deterministic.
func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		if v {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case string:
		return appendJSONString(b, v)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case float64:
		return appendFloat(b, v)
	case json.Number:
		return append(b, v...)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if isUndef(e) {
				e = nil
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k, e := range v {
			if !isUndef(e) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSON(b, v[k])
		}
		return append(b, '}')
	}
	return b // undefined
}

// appendFloat formats f like encoding/json: shortest representation, exponent
// form only for very small or very large magnitudes. NaN and ±Inf (which the
// evaluator never produces) become null.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONStringBytes appends s as a JSON string, as appendJSONString
// does; s needs no copy when it is printable ASCII without '"' or '\\'.
func appendJSONStringBytes(b, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return appendJSONString(b, string(s))
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; HTML characters are not escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ---- conversions (the "standard conversions" of the IoT SQL reference) ----

// toStr converts v to a String: numbers in their JSON form, booleans as
// "true"/"false", arrays and objects as JSON. Null and Undefined do not convert.
func toStr(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		return string(appendFloat(nil, v)), true
	case json.Number:
		return string(v), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	case []any, map[string]any:
		return string(appendJSON(nil, v)), true
	}
	return "", false
}

// num is a number with IoT Core's Int/Decimal distinction.
type num struct {
	isInt bool
	i     int64
	f     float64
}

func (n num) float() float64 {
	if n.isInt {
		return float64(n.i)
	}
	return n.f
}

// toNum converts Int, Decimal and numeric Strings (which become Decimal) to a
// number; anything else does not convert.
func toNum(v any) (num, bool) {
	switch v := v.(type) {
	case int64:
		return num{isInt: true, i: v}, true
	case float64:
		return num{f: v}, true
	case json.Number:
		f, _ := strconv.ParseFloat(string(v), 64)
		return num{f: f}, true
	case string:
		if f, ok := parseDecimalString(v); ok {
			return num{f: f}, true
		}
	}
	return num{}, false
}

// parseDecimalString accepts what IoT Core converts to a Decimal:
// ^-?\d+(\.\d+)?((?i)E-?\d+)?$
func parseDecimalString(s string) (float64, bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > j
	}
	if !digits() {
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return 0, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && s[i] == '-' {
			i++
		}
		if !digits() {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// toInt converts a number or numeric String to an Int, rounding Decimals down
// (used for indexes and counts: topic(n), substring, get). Out-of-range values
// saturate.
func toInt(v any) (int64, bool) {
	n, ok := toNum(v)
	if !ok {
		return 0, false
	}
	if n.isInt {
		return n.i, true
	}
	return floatToInt(math.Floor(n.f))
}

// floatToInt converts an integral float to int64, saturating at the int64 range.
func floatToInt(f float64) (int64, bool) {
	switch {
	case math.IsNaN(f):
		return 0, false
	case f >= math.MaxInt64:
		return math.MaxInt64, true
	case f <= math.MinInt64:
		return math.MinInt64, true
	}
	return int64(f), true
}

// toBool converts Booleans and the strings "true"/"false" (any case), as the
// logical operators do.
func toBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		switch {
		case len(v) == 4 && (v[0]|0x20) == 't' && (v[1]|0x20) == 'r' && (v[2]|0x20) == 'u' && (v[3]|0x20) == 'e':
			return true, true
		case len(v) == 5 && (v[0]|0x20) == 'f' && (v[1]|0x20) == 'a' && (v[2]|0x20) == 'l' && (v[3]|0x20) == 's' && (v[4]|0x20) == 'e':
			return false, true
		}
	}
	return false, false
}

// equal implements "=": Undefined on either side gives Undefined; Int and Decimal
// compare by value; arrays compare item by item in order; objects by keys and
// values in any order; values of different types are not equal.
func equal(a, b any) any {
	if isUndef(a) || isUndef(b) {
		return undef
	}
	return deepEqual(a, b)
}

func deepEqual(a, b any) bool {
	switch av := a.(type) {
	case nil:
		return b == nil
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	case int64, float64, json.Number:
		an, _ := toNum(a)
		var bn num
		switch b.(type) {
		case int64, float64, json.Number:
			bn, _ = toNum(b)
		default:
			return false
		}
		if an.isInt && bn.isInt {
			return an.i == bn.i
		}
		return an.float() == bn.float()
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !deepEqual(av[i], bv[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, x := range av {
			y, ok := bv[k]
			if !ok || !deepEqual(x, y) {
				return false
			}
		}
		return true
	}
	return false
}

// compare orders two values converted to numbers (strings that look like numbers
// convert). It returns -1, 0 or 1, and false when either side does not convert.
func compare(a, b any) (int, bool) {
	an, ok := toNum(a)
	if !ok {
		return 0, false
	}
	bn, ok := toNum(b)
	if !ok {
		return 0, false
	}
	if an.isInt && bn.isInt {
		switch {
		case an.i < bn.i:
			return -1, true
		case an.i > bn.i:
			return 1, true
		}
		return 0, true
	}
	x, y := an.float(), bn.float()
	switch {
	case x < y:
		return -1, true
	case x > y:
		return 1, true
	case x == y:
		return 0, true
	}
	return 0, false // NaN
}

// negate is unary minus.
func negate(v any) (any, bool) {
	n, ok := toNum(v)
	if !ok {
		return undef, false
	}
	if n.isInt {
		if n.i == math.MinInt64 {
			return -float64(n.i), true
		}
		return -n.i, true
	}
	return -n.f, true
}
