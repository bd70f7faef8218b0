package legacy

import "strconv"

// payload appends the members of one canonical message to a JSON object.
// Messages are built by hand rather than with encoding/json so that members
// keep a stable order (type, device_no, ts, source, then the fields as sent)
// and numbers keep their literal form.
type payload struct {
	buf []byte
}

// newPayload starts a message with the four members every message has.
func newPayload(size int, typ, deviceNo string, ts int64, source string) *payload {
	p := &payload{buf: make([]byte, 0, size)}
	p.buf = append(p.buf, `{"type":`...)
	p.buf = appendString(p.buf, typ)
	p.buf = append(p.buf, `,"device_no":`...)
	p.buf = appendString(p.buf, deviceNo)
	p.buf = append(p.buf, `,"ts":`...)
	p.buf = strconv.AppendInt(p.buf, ts, 10)
	p.buf = append(p.buf, `,"source":`...)
	p.buf = appendString(p.buf, source)
	return p
}

func (p *payload) name(name string) {
	p.buf = append(p.buf, ',', '"')
	p.buf = append(p.buf, name...) // our own names: plain ASCII, nothing to escape
	p.buf = append(p.buf, '"', ':')
}

// str appends a string member.
func (p *payload) str(name, v string) {
	p.name(name)
	p.buf = appendString(p.buf, v)
}

// int appends an integer member.
func (p *payload) int(name string, v int64) {
	p.name(name)
	p.buf = strconv.AppendInt(p.buf, v, 10)
}

// bool appends a boolean member.
func (p *payload) bool(name string, v bool) {
	p.name(name)
	p.buf = strconv.AppendBool(p.buf, v)
}

// literal appends a member whose value is already valid JSON text without
// white space (a number literal as sent, a formatted decimal).
func (p *payload) literal(name string, v []byte) {
	p.name(name)
	p.buf = append(p.buf, v...)
}

// passThrough appends a member exactly as sent: quoted name and raw value.
func (p *payload) passThrough(m member) {
	p.buf = append(p.buf, ',')
	p.buf = append(p.buf, m.rawName...)
	p.buf = append(p.buf, ':')
	p.buf = appendCompact(p.buf, m.value)
}

// raw appends raw JSON text with no member name (inside an open array).
func (p *payload) raw(s string) { p.buf = append(p.buf, s...) }

func (p *payload) finish() []byte { return append(p.buf, '}') }

// appendCompact appends the valid JSON value v without insignificant white
// space.
func appendCompact(dst, v []byte) []byte {
	if kindOf(v) != kindObject && kindOf(v) != kindArray {
		return append(dst, v...)
	}
	inString, escaped := false, false
	for _, c := range v {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. s must be valid UTF-8 (decoders
// check this before), so only quotes, backslashes and control characters
// need escaping.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
