package router

import (
	"errors"
	"fmt"

	"github.com/fleetgate/fleetgate/router/iotsql"
	"github.com/fleetgate/fleetgate/schema"
)

// A kafka action with schema: (or format: confluent) validates each record
// value against a JSON Schema before it is produced. The schemas are loaded
// with the rules (package schema) and handed to the Compiler; the message
// path only looks them up by name.

// SchemaSet resolves the schemas kafka actions name. It must be immutable
// (a reload compiles the rules with a new one) and safe for concurrent use.
type SchemaSet interface {
	// Schema returns the schema called name: a file of schemas.dir without
	// .json, or a registry subject.
	Schema(name string) (Schema, bool)
}

// Schema is one compiled schema.
type Schema interface {
	// Validate checks a record value; a record that does not match gets
	// an error implementing SchemaViolation.
	Validate(record []byte) error
	// RegistryID is the Schema Registry's id of the schema, 0 when it
	// comes from no registry.
	RegistryID() int
}

// SchemaViolation is a record that does not match its schema; the error
// record's headers name where and why.
type SchemaViolation interface {
	error
	// JSONPointer is where in the record: "" for the whole of it.
	JSONPointer() string
	// SchemaKeyword is the keyword that failed (type, required, ...).
	SchemaKeyword() string
}

// Formats of a kafka action's record value.
const (
	formatJSON      = "json"
	formatConfluent = "confluent"
)

// recordSchema is the validation step of a kafka action.
type recordSchema struct {
	set       SchemaSet
	name      *iotsql.Template // nil: "<topic>-value" (the registry's TopicNameStrategy)
	confluent bool
}

// compileSchema compiles schema: and format: of a kafka action; nil when
// the action validates nothing.
func compileSchema(c *KafkaActionConfig, env actionEnv) (*recordSchema, error) {
	switch c.Format {
	case "", formatJSON, formatConfluent:
	default:
		return nil, &fieldError{"format", fmt.Errorf("%q is not json or confluent", c.Format)}
	}
	if c.Schema == "" && c.Format != formatConfluent {
		return nil, nil
	}
	field := "schema"
	if c.Schema == "" {
		field = "format"
	}
	if env.schemas == nil {
		return nil, &fieldError{field, errors.New("no schemas are configured (schemas.dir or schemas.registry)")}
	}
	rs := &recordSchema{set: env.schemas, confluent: c.Format == formatConfluent}
	if c.Schema != "" {
		t, err := env.template(c.Schema)
		if err != nil {
			return nil, &fieldError{"schema", err}
		}
		rs.name = t
		if t.IsLiteral() {
			if _, err := rs.resolve(t.Literal()); err != nil {
				return nil, &fieldError{"schema", err}
			}
		}
	}
	return rs, nil
}

// resolve finds the schema called name.
func (rs *recordSchema) resolve(name string) (Schema, error) {
	s, ok := rs.set.Schema(name)
	if !ok {
		return nil, fmt.Errorf("schema %q is not loaded (neither a file of schemas.dir nor a registry subject)", name)
	}
	if rs.confluent && s.RegistryID() == 0 {
		return nil, fmt.Errorf("schema %q has no registry id; format: confluent needs a schema from schemas.registry", name)
	}
	return s, nil
}

// apply validates rec's value and, for format: confluent, frames it. On
// failure it returns the reason and the error.
func (rs *recordSchema) apply(env *iotsql.Env, rec *Record) (string, error) {
	var name string
	if rs.name != nil {
		var err error
		if name, err = rs.name.Eval(env); err != nil {
			return ReasonTemplateError, fmt.Errorf("schema template: %w", err)
		}
	} else {
		name = rec.Topic + "-value"
	}
	s, err := rs.resolve(name)
	if err != nil {
		return ReasonSchemaUnknown, err
	}
	if err := s.Validate(rec.Value); err != nil {
		return ReasonSchemaInvalid, err
	}
	rec.Schema = name
	if rs.confluent {
		rec.Value = confluentFrame(s.RegistryID(), rec.Value)
	}
	return "", nil
}

// confluentFrame is value in the Confluent wire format (schema.Frame: magic
// byte 0, the schema id as 4 bytes big-endian, then the JSON).
func confluentFrame(id int, value []byte) []byte {
	return schema.Frame(make([]byte, 0, schema.FrameLen+len(value)), id, value)
}

// schemaHeaders are the error record's headers for a schema violation:
// schema_pointer (the JSON pointer) and schema_keyword.
func schemaHeaders(err error) []Header {
	var v SchemaViolation
	if !errors.As(err, &v) {
		return nil
	}
	return []Header{
		{Key: "schema_pointer", Value: []byte(v.JSONPointer())},
		{Key: "schema_keyword", Value: []byte(v.SchemaKeyword())},
	}
}

// validates reports whether a is a kafka action that validates records.
func validates(a Action) bool {
	k, ok := a.(*kafkaAction)
	return ok && k.schema != nil
}

// SchemaFunc adapts a lookup function such as (*schema.Set).Get to a
// SchemaSet.
type SchemaFunc[S Schema] func(name string) (S, bool)

// Schema implements SchemaSet.
func (f SchemaFunc[S]) Schema(name string) (Schema, bool) {
	s, ok := f(name)
	if !ok {
		return nil, false
	}
	return s, true
}
