package config

import (
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/fleetgate/fleetgate/router"
)

// Problem is one thing wrong with a configuration, with where it is.
type Problem struct {
	// File is the file at fault ("(defaults)" when the problem is in the
	// built-in defaults or the environment).
	File string
	// Line and Column are 1-based; 0 when unknown.
	Line, Column int
	// Msg says what is wrong, naming the key: "rules[0] (reports) sql: ...".
	Msg string
}

// String formats the problem as compilers do: "file:line:column: message",
// leaving out what is unknown.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
		if p.Column > 0 {
			b.WriteString(":" + strconv.Itoa(p.Column))
		}
	}
	b.WriteString(": " + p.Msg)
	return b.String()
}

// Error is a configuration that failed to load or validate: every problem
// found, each with its file and, when known, its line.
type Error struct {
	Problems []Problem
}

// Error returns the problems, one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// yamlFile is a parsed YAML file, kept for the positions of its keys.
type yamlFile struct {
	path  string
	lines []string
	// root is the top-level mapping; nil for an empty file.
	root *yaml.Node
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// readYAML reads and parses path. A syntax error is an *Error with its line.
func readYAML(path string) (*yamlFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Problems: []Problem{{File: path, Msg: readError(err)}}}
	}
	return parseYAML(path, b)
}

// parseYAML parses b, the content of file path.
func parseYAML(path string, b []byte) (*yamlFile, error) {
	f := &yamlFile{path: path, lines: splitLines(string(b))}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		p := Problem{File: path, Msg: err.Error()}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Msg = "YAML: " + m[2]
		}
		return nil, &Error{Problems: []Problem{p}}
	}
	if len(doc.Content) == 0 {
		return f, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return f, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Problems: []Problem{{File: path, Line: root.Line,
			Msg: "the file must hold a YAML mapping of keys (such as kafka: or rules:)"}}}
	}
	f.root = root
	return f, nil
}

func readError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// get returns the value of top-level key (matched case-insensitively, as
// viper does), or nil.
func (f *yamlFile) get(key string) *yaml.Node {
	_, v := f.entry(key)
	return v
}

// entry returns the key and value nodes of top-level key, or nils.
func (f *yamlFile) entry(key string) (k, v *yaml.Node) {
	if f == nil || f.root == nil {
		return nil, nil
	}
	for i := 0; i+1 < len(f.root.Content); i += 2 {
		if strings.EqualFold(f.root.Content[i].Value, key) {
			return f.root.Content[i], f.root.Content[i+1]
		}
	}
	return nil, nil
}

// problem returns a Problem in f, at the line of the key path named at the
// start of msg ("kafka.brokers[0]: ..." or "kafka.idempotent needs ...")
// when the file has that key.
func (f *yamlFile) problem(msg string) Problem {
	p := Problem{File: f.path, Msg: msg}
	if m := leadingKey.FindString(msg); m != "" && f.root != nil {
		if n, key, _ := walk(f.root, m); key != nil || n != f.root {
			p.Line = line(n, key)
		}
	}
	return p
}

// line is the line to report for node n reached under key: the key's line
// when n is a block collection (its line is that of its first entry) or
// the path went missing below key; n's otherwise.
func line(n, key *yaml.Node) int {
	if key != nil && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && n.Style&yaml.FlowStyle == 0 {
		return key.Line
	}
	return n.Line
}

var leadingKey = regexp.MustCompile(`^[a-z_]+(\.[a-z_.]+|\[\d+\])*`)

// walk follows a key path such as "actions[0].kafka.headers.x" from n and
// returns the deepest node it reaches, the key node it was found under (nil
// for n itself or a sequence item) and whether that is the whole path. When
// the path leaves the document, an error about the missing key points at
// its parent. A key that contains dots (a header name) is matched whole
// when its parts are not keys.
func walk(n *yaml.Node, path string) (node, key *yaml.Node, whole bool) {
	segs := strings.Split(path, ".")
	cur := deref(n)
	for i := 0; i < len(segs); i++ {
		name, idxs := splitIndexes(segs[i])
		k, next := mapEntry(cur, name)
		if next == nil {
			if k, v := mapEntry(cur, strings.Join(segs[i:], ".")); v != nil {
				return deref(v), k, true
			}
			return cur, key, false
		}
		key = k
		for _, ix := range idxs {
			next = deref(next)
			if next.Kind != yaml.SequenceNode || ix >= len(next.Content) {
				return next, key, false
			}
			next, key = next.Content[ix], nil
		}
		cur = deref(next)
	}
	return cur, key, true
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	_, v := mapEntry(n, key)
	return v
}

// mapEntry returns the key and value nodes of key in mapping n, or nils.
func mapEntry(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// splitIndexes splits "actions[0]" into "actions" and [0].
func splitIndexes(seg string) (string, []int) {
	i := strings.IndexByte(seg, '[')
	if i < 0 || !strings.HasSuffix(seg, "]") {
		return seg, nil
	}
	var idxs []int
	for _, s := range strings.Split(seg[i+1:len(seg)-1], "][") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return seg, nil
		}
		idxs = append(idxs, n)
	}
	return seg[:i], idxs
}

// errorPosition finds where in the file an error inside scalar n's value
// is: the line and, when the value can be matched to the source text, the
// column. For a *router.SyntaxError (SQL, foreach, templates) it maps the
// error's offset in the value to the file; otherwise it is n's own line.
func (f *yamlFile) errorPosition(n *yaml.Node, err error) (line, col int) {
	var se *router.SyntaxError
	if n.Kind != yaml.ScalarNode || !errors.As(err, &se) {
		return n.Line, 0
	}
	if l, c, ok := f.locateInScalar(n, se.Pos); ok {
		return l, c
	}
	return n.Line, 0
}

// locateInScalar maps byte offset pos of scalar n's value to a file line and
// column by matching the value against the source lines it came from. It
// handles single-line scalars, literal blocks (|) and values folded from
// several lines (>, or plain scalars over several lines) as long as the
// source holds the value's text verbatim (no escapes, single spaces at
// folds); otherwise it reports false.
func (f *yamlFile) locateInScalar(n *yaml.Node, pos int) (line, col int, ok bool) {
	value := n.Value
	idx := n.Line - 1 // 0-based index into f.lines
	if pos > len(value) || idx < 0 || idx >= len(f.lines) {
		return 0, 0, false
	}
	// An error at the end ("found end of input") is shown after the last
	// character, not on the line after a block's final line break.
	pos = min(pos, len(strings.TrimRight(value, "\n")))
	literal := n.Style&yaml.LiteralStyle != 0
	block := literal || n.Style&yaml.FoldedStyle != 0
	start := -1 // byte offset of the value's text in the current line; -1: find it
	blockIndent := -1
	if block {
		idx++ // the text starts on the line after the indicator
	} else {
		start = byteIndexOfColumn(f.lines[idx], n.Column)
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
			start++ // the opening quote
		}
	}
	off := 0
	for ; idx < len(f.lines); idx++ {
		text := f.lines[idx]
		indent := len(text) - len(strings.TrimLeft(text, " \t"))
		switch {
		case start >= 0:
		case block:
			if blockIndent < 0 && indent < len(text) {
				blockIndent = indent
			}
			start = min(max(blockIndent, 0), len(text))
		default:
			start = indent
		}
		seg := text[start:]
		// want is what remains of the value; a literal block's line holds
		// it up to the next line break.
		want := value[off:]
		if i := strings.IndexByte(want, '\n'); literal && i >= 0 {
			want = want[:i]
		}
		if len(seg) > len(want) {
			seg = seg[:len(want)] // a closing quote, a comment, trailing blanks
		}
		if pos <= off+len(seg) {
			if value[off:pos] != seg[:pos-off] {
				return 0, 0, false
			}
			return idx + 1, utf8.RuneCountInString(text[:start+pos-off]) + 1, true
		}
		if value[off:off+len(seg)] != seg {
			return 0, 0, false
		}
		off += len(seg)
		if off >= len(value) || value[off] != '\n' && value[off] != ' ' {
			return 0, 0, false
		}
		off++ // the line break or the fold
		start = -1
	}
	return 0, 0, false
}

// splitLines splits s at line breaks as YAML counts them: "\r\n", "\r" or
// "\n".
func splitLines(s string) []string {
	return strings.Split(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n"), "\n")
}

// byteIndexOfColumn returns the byte offset of 1-based rune column col.
func byteIndexOfColumn(s string, col int) int {
	i := 0
	for c := 1; c < col && i < len(s); c++ {
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	return i
}

// joinedErrors flattens errors.Join trees into their leaves.
func joinedErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, joinedErrors(e)...)
		}
		return out
	}
	return []error{err}
}
