package legacy

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The STS decoder needs what encoding/json's maps hide: the members of an
// object in document order, repeated names, and each value's bytes as sent
// (numbers keep their literal form). The functions here split values of a body
// that json.Valid has already accepted, so they only have to find boundaries,
// never to report syntax errors.

// member is one name/value pair of a JSON object.
type member struct {
	name    []byte // unescaped, for lookups and duplicate detection
	rawName []byte // the quoted name as sent, for pass-through fields
	value   []byte // the raw value, without surrounding white space
}

// valueKind classifies a raw JSON value by its first byte.
type valueKind byte

const (
	kindString valueKind = iota
	kindNumber
	kindBool
	kindNull
	kindObject
	kindArray
)

func kindOf(v []byte) valueKind {
	switch v[0] {
	case '"':
		return kindString
	case '{':
		return kindObject
	case '[':
		return kindArray
	case 't', 'f':
		return kindBool
	case 'n':
		return kindNull
	}
	return kindNumber
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just after the string that starts at data[i].
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(data)
}

// valueEnd returns the index just after the value that starts at data[i].
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = stringEnd(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	}
	j := i
	for j < len(data) {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
		j++
	}
	return j
}

// unquoteName returns the unescaped bytes of a raw JSON string, sharing raw's
// memory when there is nothing to unescape (object names are only compared,
// never kept).
func unquoteName(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1]
	}
	return []byte(unquote(raw))
}

// unquote returns the string value of a raw JSON string.
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		// Unreachable for validated input; keep the raw text rather than panic.
		return string(raw[1 : len(raw)-1])
	}
	return s
}

// splitObject returns the members of the valid JSON object v, in order.
func splitObject(v []byte) []member {
	ms := make([]member, 0, 8)
	i := skipSpace(v, 1) // after '{'
	for i < len(v) && v[i] != '}' {
		if v[i] == ',' {
			i = skipSpace(v, i+1)
		}
		end := stringEnd(v, i)
		rawName := v[i:end]
		i = skipSpace(v, end)
		i = skipSpace(v, i+1) // after ':'
		vend := valueEnd(v, i)
		ms = append(ms, member{name: unquoteName(rawName), rawName: rawName, value: v[i:vend]})
		i = skipSpace(v, vend)
	}
	return ms
}

// splitArray returns the elements of the valid JSON array v, in order.
func splitArray(v []byte) [][]byte {
	elems := make([][]byte, 0, 8)
	i := skipSpace(v, 1) // after '['
	for i < len(v) && v[i] != ']' {
		if v[i] == ',' {
			i = skipSpace(v, i+1)
		}
		end := valueEnd(v, i)
		elems = append(elems, v[i:end])
		i = skipSpace(v, end)
	}
	return elems
}

// nestFrame is one open object or array while repeatedName walks a value.
type nestFrame struct {
	object bool
	index  int      // arrays: index of the current element
	key    []byte   // objects: name of the current member
	seen   [][]byte // objects: names so far (a map past 16)
	seenM  map[string]struct{}
}

// repeatedName walks the valid JSON value v once, in linear time whatever its
// depth, and returns the path, relative to v (".a[2].b"), of the first member
// name repeated within one object, or "" when there is none.
func repeatedName(v []byte) string {
	var stack []nestFrame
	for i := 0; i < len(v); {
		switch c := v[i]; c {
		case '{', '[':
			stack = append(stack, nestFrame{object: c == '{'})
			i++
		case '}', ']':
			stack = stack[:len(stack)-1]
			i++
		case ',':
			if top := &stack[len(stack)-1]; !top.object {
				top.index++
			}
			i++
		case '"':
			end := stringEnd(v, i)
			if top := len(stack) - 1; top >= 0 && stack[top].object && isKey(v, end) {
				f := &stack[top]
				f.key = unquoteName(v[i:end])
				if f.add(f.key) {
					return nestPath(stack)
				}
			}
			i = end
		case ' ', '\t', '\r', '\n', ':':
			i++
		default:
			i = valueEnd(v, i)
		}
	}
	return ""
}

// isKey reports whether the string ending at end is followed by ':'.
func isKey(v []byte, end int) bool {
	j := skipSpace(v, end)
	return j < len(v) && v[j] == ':'
}

// add records name and reports whether the object already had it.
func (f *nestFrame) add(name []byte) bool {
	if f.seenM != nil {
		if _, dup := f.seenM[string(name)]; dup {
			return true
		}
		f.seenM[string(name)] = struct{}{}
		return false
	}
	for _, s := range f.seen {
		if bytes.Equal(s, name) {
			return true
		}
	}
	if len(f.seen) < 16 {
		f.seen = append(f.seen, name)
		return false
	}
	f.seenM = make(map[string]struct{}, 32)
	for _, s := range f.seen {
		f.seenM[string(s)] = struct{}{}
	}
	f.seenM[string(name)] = struct{}{}
	f.seen = nil
	return false
}

// nestPath renders the path of the innermost open member.
func nestPath(stack []nestFrame) string {
	var b []byte
	for _, f := range stack {
		if f.object {
			b = append(b, childPath(string(f.key))...)
		} else {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(f.index), 10)
			b = append(b, ']')
		}
	}
	return string(b)
}
