package iotsql

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token of the rule language.
type tokKind uint8

const (
	tEOF     tokKind = iota
	tIdent           // name: field, function or keyword (keywords are matched case-insensitively)
	tQIdent          // `backquoted` name: always a field or alias, never a keyword
	tString          // 'text' or "text"; text holds the decoded value
	tInt             // integer literal; i holds the value
	tDecimal         // decimal literal; f holds the value
	tStar            // *
	tComma           // ,
	tDot             // .
	tColon           // :
	tLParen          // (
	tRParen          // )
	tLBrack          // [
	tRBrack          // ]
	tLBrace          // {
	tRBrace          // }
	tEq              // =
	tNe              // <> or !=
	tLt              // <
	tLe              // <=
	tGt              // >
	tGe              // >=
	tPlus            // +
	tMinus           // -
	tSlash           // /
	tPercent         // %
	tConcat          // ||
)

var tokNames = [...]string{
	tEOF: "end of input", tIdent: "name", tQIdent: "name", tString: "string", tInt: "number",
	tDecimal: "number", tStar: "'*'", tComma: "','", tDot: "'.'", tColon: "':'", tLParen: "'('",
	tRParen: "')'", tLBrack: "'['", tRBrack: "']'", tLBrace: "'{'", tRBrace: "'}'", tEq: "'='",
	tNe: "'<>'", tLt: "'<'", tLe: "'<='", tGt: "'>'", tGe: "'>='", tPlus: "'+'", tMinus: "'-'",
	tSlash: "'/'", tPercent: "'%'", tConcat: "'||'",
}

// token is one lexical token. pos and end are byte offsets into the source.
type token struct {
	kind tokKind
	pos  int
	end  int
	text string // name as written, or decoded string literal
	i    int64
	f    float64
}

// lexer splits rule-language source into tokens. It starts at an arbitrary offset so
// that templates can lex the expression inside "${...}" in place.
type lexer struct {
	src string
	pos int
}

// next returns the token at the current position and advances past it.
func (l *lexer) next() (token, error) {
	// Skip white space.
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' {
			l.pos++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(l.src[l.pos:])
			if unicode.IsSpace(r) {
				l.pos += n
				continue
			}
		}
		break
	}
	start := l.pos
	if start >= len(l.src) {
		return token{kind: tEOF, pos: start, end: start}, nil
	}
	c := l.src[start]
	one := func(k tokKind) (token, error) {
		l.pos++
		return token{kind: k, pos: start, end: l.pos}, nil
	}
	two := func(k tokKind) (token, error) {
		l.pos += 2
		return token{kind: k, pos: start, end: l.pos}, nil
	}
	peek := byte(0)
	if start+1 < len(l.src) {
		peek = l.src[start+1]
	}
	switch c {
	case '*':
		return one(tStar)
	case ',':
		return one(tComma)
	case '.':
		return one(tDot)
	case ':':
		return one(tColon)
	case '(':
		return one(tLParen)
	case ')':
		return one(tRParen)
	case '[':
		return one(tLBrack)
	case ']':
		return one(tRBrack)
	case '{':
		return one(tLBrace)
	case '}':
		return one(tRBrace)
	case '=':
		if peek == '=' { // tolerate "==" as "="
			return two(tEq)
		}
		return one(tEq)
	case '<':
		switch peek {
		case '>':
			return two(tNe)
		case '=':
			return two(tLe)
		}
		return one(tLt)
	case '>':
		if peek == '=' {
			return two(tGe)
		}
		return one(tGt)
	case '!':
		if peek == '=' {
			return two(tNe)
		}
	case '|':
		if peek == '|' {
			return two(tConcat)
		}
	case '+':
		return one(tPlus)
	case '-':
		return one(tMinus)
	case '/':
		return one(tSlash)
	case '%':
		return one(tPercent)
	case '\'', '"':
		return l.lexString(c)
	case '`':
		end := strings.IndexByte(l.src[start+1:], '`')
		if end < 0 {
			return token{}, newSyntaxError(l.src, start, "unterminated `name`")
		}
		name := l.src[start+1 : start+1+end]
		if name == "" {
			return token{}, newSyntaxError(l.src, start, "empty `name`")
		}
		l.pos = start + end + 2
		return token{kind: tQIdent, pos: start, end: l.pos, text: name}, nil
	}
	if c >= '0' && c <= '9' {
		return l.lexNumber()
	}
	if r, n := utf8.DecodeRuneInString(l.src[start:]); isIdentStart(r) {
		l.pos += n
		for l.pos < len(l.src) {
			r, n := utf8.DecodeRuneInString(l.src[l.pos:])
			if !isIdentPart(r) {
				break
			}
			l.pos += n
		}
		return token{kind: tIdent, pos: start, end: l.pos, text: l.src[start:l.pos]}, nil
	}
	r, _ := utf8.DecodeRuneInString(l.src[start:])
	return token{}, newSyntaxError(l.src, start, fmt.Sprintf("unexpected character %q", r))
}

func isIdentStart(r rune) bool {
	return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= utf8.RuneSelf && unicode.IsLetter(r)
}

func isIdentPart(r rune) bool {
	return isIdentStart(r) || r >= '0' && r <= '9' || r >= utf8.RuneSelf && unicode.IsDigit(r)
}

// lexNumber reads digits ['.' digits] [('e'|'E') ['+'|'-'] digits]. A '.' not
// followed by a digit ends the number, so "a[0].b" lexes as expected.
func (l *lexer) lexNumber() (token, error) {
	start := l.pos
	src := l.src
	i := start
	for i < len(src) && src[i] >= '0' && src[i] <= '9' {
		i++
	}
	isInt := true
	if i+1 < len(src) && src[i] == '.' && src[i+1] >= '0' && src[i+1] <= '9' {
		isInt = false
		i++
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < len(src) && src[j] >= '0' && src[j] <= '9' {
			isInt = false
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			i = j
		}
	}
	if i < len(src) {
		if r, _ := utf8.DecodeRuneInString(src[i:]); isIdentStart(r) {
			return token{}, newSyntaxError(src, start, fmt.Sprintf("malformed number %q", src[start:i+1]))
		}
	}
	text := src[start:i]
	l.pos = i
	if isInt {
		if v, err := strconv.ParseInt(text, 10, 64); err == nil {
			return token{kind: tInt, pos: start, end: i, text: text, i: v}, nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return token{}, newSyntaxError(src, start, fmt.Sprintf("number %s is out of range", text))
	}
	return token{kind: tDecimal, pos: start, end: i, text: text, f: f}, nil
}

// lexString reads a string literal delimited by quote (' or "). Backslash escapes
// follow JSON: \\ \' \" \/ \b \f \n \r \t \uXXXX.
func (l *lexer) lexString(quote byte) (token, error) {
	start := l.pos
	src := l.src
	i := start + 1
	var b []byte // only allocated when the literal has escapes
	segStart := i
	for {
		if i >= len(src) {
			return token{}, newSyntaxError(src, start, "unterminated string")
		}
		c := src[i]
		if c == quote {
			var s string
			if b == nil {
				s = src[segStart:i]
			} else {
				b = append(b, src[segStart:i]...)
				s = string(b)
			}
			l.pos = i + 1
			return token{kind: tString, pos: start, end: l.pos, text: s}, nil
		}
		if c != '\\' {
			i++
			continue
		}
		b = append(b, src[segStart:i]...)
		if i+1 >= len(src) {
			return token{}, newSyntaxError(src, start, "unterminated string")
		}
		switch e := src[i+1]; e {
		case '\\', '\'', '"', '/':
			b = append(b, e)
			i += 2
		case 'b':
			b = append(b, '\b')
			i += 2
		case 'f':
			b = append(b, '\f')
			i += 2
		case 'n':
			b = append(b, '\n')
			i += 2
		case 'r':
			b = append(b, '\r')
			i += 2
		case 't':
			b = append(b, '\t')
			i += 2
		case 'u':
			if i+6 > len(src) {
				return token{}, newSyntaxError(src, i, `bad \u escape`)
			}
			v, err := strconv.ParseUint(src[i+2:i+6], 16, 16)
			if err != nil {
				return token{}, newSyntaxError(src, i, `bad \u escape`)
			}
			b = utf8.AppendRune(b, rune(v))
			i += 6
		default:
			return token{}, newSyntaxError(src, i, fmt.Sprintf(`unknown escape \%c`, e))
		}
		segStart = i
	}
}

// describe renders a token for error messages: "'FORM'", "string 'x'", "end of input".
func (t token) describe(src string) string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return "string " + quoteShort(src[t.pos:t.end])
	case tIdent, tQIdent, tInt, tDecimal:
		return quoteShort(src[t.pos:t.end])
	}
	return tokNames[t.kind]
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return "'" + s + "'"
}

// SyntaxError reports a rule-language source that cannot be parsed: a SELECT
// statement or a substitution template. Pos is the byte offset of the error in the
// source; Line and Col are 1-based (Col counts characters).
type SyntaxError struct {
	Pos, Line, Col int
	Msg            string
}

// Error returns "line L, column C: message".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

func newSyntaxError(src string, pos int, msg string) *SyntaxError {
	if pos > len(src) {
		pos = len(src)
	}
	line, col := 1, 1
	for _, r := range src[:pos] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return &SyntaxError{Pos: pos, Line: line, Col: col, Msg: msg}
}
