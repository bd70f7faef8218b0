// Package schema validates JSON records against JSON Schemas (drafts
// 2020-12, 2019-09, 7, 6 and 4, with github.com/santhosh-tekuri/jsonschema)
// taken from a directory or fetched from a Confluent-compatible Schema
// Registry. Schemas are fetched and compiled when the rules load, into an
// immutable Set: validating a record never reads a file or the network.
package schema

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Schema is one compiled schema. It is safe for concurrent use.
type Schema struct {
	// Name is the file name without .json, or the registry subject.
	Name string
	// ID is the registry's schema id (0 for a schema from a directory).
	ID int
	// Version is the registry subject's version (0 for a directory).
	Version int
	// Source says where it came from: the file, or the registry subject.
	Source string

	compiled *jsonschema.Schema
}

// ValidationError is a record that does not match its schema. When several
// keywords fail, it is the one at the first JSON pointer (in string order),
// so that the same record always gets the same error.
type ValidationError struct {
	// Schema is the schema's name.
	Schema string
	// Pointer is the JSON pointer (RFC 6901) of the failing value in the
	// record: "" for the whole record, "/pos/lat" for a member.
	Pointer string
	// Keyword is the schema keyword that failed: type, required,
	// minimum, ..., or "json" for a record that is not JSON.
	Keyword string
	// Message says why, in English.
	Message string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("schema %s: at %q: %s: %s", e.Schema, e.Pointer, e.Keyword, e.Message)
}

var english = message.NewPrinter(language.English)

// Validate checks a JSON record; a mismatch is a *ValidationError.
func (s *Schema) Validate(record []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(record))
	if err != nil {
		return &ValidationError{Schema: s.Name, Keyword: "json", Message: err.Error()}
	}
	return s.ValidateValue(v)
}

// ValidateValue checks a decoded record (numbers as json.Number or any Go
// number, objects as map[string]any).
func (s *Schema) ValidateValue(v any) error {
	err := s.compiled.Validate(v)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return &ValidationError{Schema: s.Name, Keyword: "json", Message: err.Error()}
	}
	var first *ValidationError
	for _, leaf := range leaves(ve, nil) {
		e := &ValidationError{
			Schema:  s.Name,
			Pointer: pointer(leaf.InstanceLocation),
			Keyword: keyword(leaf.ErrorKind),
			Message: leaf.ErrorKind.LocalizedString(english),
		}
		if first == nil || e.before(first) {
			first = e
		}
	}
	return first
}

// before orders failures so that the one reported does not depend on the
// library's map order: by pointer, then keyword, then message.
func (e *ValidationError) before(o *ValidationError) bool {
	if e.Pointer != o.Pointer {
		return e.Pointer < o.Pointer
	}
	if e.Keyword != o.Keyword {
		return e.Keyword < o.Keyword
	}
	return e.Message < o.Message
}

// leaves appends the errors of the tree that have no causes.
func leaves(e *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return append(out, e)
	}
	for _, c := range e.Causes {
		out = leaves(c, out)
	}
	return out
}

func keyword(k jsonschema.ErrorKind) string {
	if p := k.KeywordPath(); len(p) > 0 {
		return p[0]
	}
	if _, ok := k.(*kind.FalseSchema); ok {
		return "false"
	}
	return "schema"
}

// pointer writes a JSON pointer, escaping ~ and / (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

// Set is the compiled schemas of one load, by name. It is immutable and
// safe for concurrent use; a nil *Set has no schemas.
type Set struct {
	byName map[string]*Schema
}

// Get returns the schema called name.
func (s *Set) Get(name string) (*Schema, bool) {
	if s == nil {
		return nil, false
	}
	sch, ok := s.byName[name]
	return sch, ok
}

// Names returns the schema names, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.byName))
}

// Len returns how many schemas the set has.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byName)
}

// RegistryID returns the registry's schema id, 0 for a schema from a
// directory (router.Schema).
func (s *Schema) RegistryID() int { return s.ID }

// JSONPointer returns Pointer (router.SchemaViolation).
func (e *ValidationError) JSONPointer() string { return e.Pointer }

// SchemaKeyword returns Keyword (router.SchemaViolation).
func (e *ValidationError) SchemaKeyword() string { return e.Keyword }
