package lookup

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// utf8BOM starts files that spreadsheet tools save as "UTF-8"; it is not
// part of the first row.
var utf8BOM = []byte("\xef\xbb\xbf")

// span is a row's place in a load's arena.
type span struct {
	key      string
	off, end int
}

// parseJSONL reads one JSON object per line (blank lines are skipped) and
// keys each by its member key. All rows share one buffer (the arena), so
// a load makes one allocation per key, not per row. A later row replaces
// an earlier one with the same key. Errors name the line.
func parseJSONL(data []byte, key string) (map[string][]byte, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	arena := bytes.NewBuffer(make([]byte, 0, len(data)))
	spans := make([]span, 0, bytes.Count(data, []byte{'\n'})+1)
	for line := 1; len(data) > 0; line++ {
		var text []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			text, data = data[:i], data[i+1:]
		} else {
			text, data = data, nil
		}
		text = bytes.TrimSpace(text)
		if len(text) == 0 {
			continue
		}
		if text[0] != '{' {
			return nil, fmt.Errorf("line %d: not a JSON object", line)
		}
		off := arena.Len()
		if err := json.Compact(arena, text); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		row := arena.Bytes()[off:]
		k, err := keyOf(row, key)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		spans = append(spans, span{k, off, arena.Len()})
	}
	return index(arena.Bytes(), spans), nil
}

// index builds the key map once the arena no longer grows.
func index(arena []byte, spans []span) map[string][]byte {
	rows := make(map[string][]byte, len(spans))
	for _, s := range spans {
		rows[s.key] = arena[s.off:s.end:s.end]
	}
	return rows
}

// parseCSV reads a header row, then one row per record, each row becoming
// a JSON object of strings named by the header. Errors name the line.
func parseCSV(data []byte, key string) (map[string][]byte, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, utf8BOM)))
	r.ReuseRecord = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("no header row")
	}
	if err != nil {
		return nil, err
	}
	keyCol := -1
	names := make([][]byte, len(header))
	seen := make(map[string]bool, len(header))
	for i, h := range header {
		if !utf8.ValidString(h) {
			// It would be written as U+FFFD: the row would have no such member.
			return nil, fmt.Errorf("line 1: the name of column %d is not UTF-8", i+1)
		}
		if seen[h] {
			return nil, fmt.Errorf("line 1: column %q is named twice", h)
		}
		seen[h] = true
		if h == key {
			keyCol = i
		}
		names[i] = append(appendJSONString(nil, h), ':')
	}
	if keyCol < 0 {
		return nil, fmt.Errorf("line 1: the header has no column %q", key)
	}
	arena := make([]byte, 0, len(data)+len(data)/2)
	var spans []span
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err // csv errors name the line
		}
		line, _ := r.FieldPos(0)
		if rec[keyCol] == "" {
			return nil, fmt.Errorf("line %d: the key column %q is empty", line, key)
		}
		off := len(arena)
		arena = append(arena, '{')
		for i, cell := range rec {
			if i > 0 {
				arena = append(arena, ',')
			}
			arena = append(arena, names[i]...)
			arena = appendJSONString(arena, cell)
		}
		arena = append(arena, '}')
		// A clone: the reader's fields share one string per record, which
		// the key would otherwise keep alive for the table's life.
		spans = append(spans, span{strings.Clone(rec[keyCol]), off, len(arena)})
	}
	if cap(arena)-len(arena) > len(arena)/8 {
		// The guess at the size was off (short cells under long column
		// names): keep only the rows, not the grown buffer's spare room.
		arena = append(make([]byte, 0, len(arena)), arena...)
	}
	return index(arena, spans), nil
}

// keyOf returns the lookup key of a compact JSON object: the member's
// string value, or a number as numberKey writes it.
func keyOf(obj []byte, name string) (string, error) {
	v, ok := member(obj, name)
	if !ok {
		return "", fmt.Errorf("no member %q", name)
	}
	switch c := v[0]; {
	case c == '"':
		if bytes.IndexByte(v, '\\') < 0 {
			if len(v) == 2 {
				return "", fmt.Errorf("member %q is empty", name)
			}
			return string(v[1 : len(v)-1]), nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("member %q: %w", name, err)
		}
		return s, nil
	case c == '-' || c >= '0' && c <= '9':
		return numberKey(string(v)), nil
	default:
		return "", fmt.Errorf("member %q must be a string or a number, not %s", name, v)
	}
}

// numberKey is the key of a JSON number, the text lookup() looks a
// number up by (router.lookupKey): an integer as its decimal text, a whole
// number written as a decimal (42.0, 4.2e1) as that integer, any other as
// Go's shortest 'g' form. An integer too large for int64 stays as written.
func numberKey(num string) string {
	if i, err := strconv.ParseInt(num, 10, 64); err == nil {
		return strconv.FormatInt(i, 10)
	}
	if !strings.ContainsAny(num, ".eE") {
		return num
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return num
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// member returns the raw value of obj's top-level member name; of a name
// given twice, the last, as decoding the row keeps. obj is a valid, compact
// JSON object.
func member(obj []byte, name string) (v []byte, found bool) {
	i := 1 // after '{'
	for i < len(obj) && obj[i] == '"' {
		ne := skipValue(obj, i)
		n := obj[i:ne]
		vs := ne + 1 // after ':'
		ve := skipValue(obj, vs)
		if nameIs(n, name) {
			v, found = obj[vs:ve], true
		}
		i = ve + 1 // after ','
	}
	return v, found
}

// nameIs reports whether the quoted JSON string q is name.
func nameIs(q []byte, name string) bool {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1:len(q)-1]) == name
	}
	var s string
	return json.Unmarshal(q, &s) == nil && s == name
}

// skipValue returns the offset just after the valid, compact JSON value
// starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return i
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipValue(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']':
				return i
			}
		}
		return i
	}
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
