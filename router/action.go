package router

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

// An action kind is one file: its configuration type (a field of
// ActionConfig, named by its YAML key), which compiles into an Action. The
// engine knows actions only through the Action interface.

// ActionConfig holds exactly one action. Each field is one kind of action,
// under its YAML key; its type implements actionSpec. A new kind of action
// is a new file with its configuration and its Action, plus its field here.
type ActionConfig struct {
	Kafka     *KafkaActionConfig     `mapstructure:"kafka" yaml:"kafka"`
	Republish *RepublishActionConfig `mapstructure:"republish" yaml:"republish"`
}

// actionSpec is implemented by the configuration of each kind of action.
type actionSpec interface {
	// compile checks the configuration and compiles it. A problem with one
	// of its keys is a *fieldError naming the key (without the kind's
	// prefix, which the caller adds).
	compile(env actionEnv) (Action, error)
}

// actionEnv is what an action's compile may use: the rule's SQL compiler
// and foreach alias, for its templates. Dependencies an action kind needs
// when it is compiled (a schema source for the kafka action) belong here,
// handed in through CompilerOptions like the SQL functions' Deps.
type actionEnv struct {
	sql     *iotsql.Compiler
	alias   string
	schemas SchemaSet // nil: none configured
}

// template compiles a substitution template of the action.
func (e actionEnv) template(s string) (*iotsql.Template, error) { return e.sql.Template(s, e.alias) }

// Action is one compiled action of a rule. It is immutable and safe for
// concurrent use.
type Action interface {
	// Start performs the action for one SELECT output value. It reports
	// what became of it through out: a record to store (out.Produce), a
	// permanent failure (out.Fail), or an output to trace. It must not
	// block on I/O other than the sink's back-pressure, and must not keep
	// value or out after it returns (records it produces may keep value).
	Start(out Output, value []byte)
}

// kindOf returns the YAML key and configuration of the one kind c holds.
func (c *ActionConfig) kindOf() (string, actionSpec, error) {
	v := reflect.ValueOf(c).Elem()
	var all, set []string
	var spec actionSpec
	for i := 0; i < v.NumField(); i++ {
		key := strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]
		all = append(all, key)
		if f := v.Field(i); !f.IsNil() {
			set = append(set, key)
			spec = f.Interface().(actionSpec)
		}
	}
	switch len(set) {
	case 0:
		return "", nil, fmt.Errorf("the action is empty; give %s:", strings.Join(all, ": or "))
	case 1:
		return set[0], spec, nil
	}
	return "", nil, fmt.Errorf("an action is either %s, not both", strings.Join(set, " or "))
}

// compileAction compiles one action; a problem with one of its keys is a
// *fieldError with the key's path ("kafka.topic").
func compileAction(c ActionConfig, env actionEnv) (Action, error) {
	key, spec, err := c.kindOf()
	if err != nil {
		return nil, err
	}
	a, err := spec.compile(env)
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, &fieldError{key + "." + fe.field, fe.err}
		}
		return nil, err
	}
	return a, nil
}

// fieldError is a problem with one key of a rule.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }

// Output is how an action reports, for one SELECT output of one message:
// it is handed to Action.Start and is valid until Start returns.
type Output struct {
	d    *delivery
	rule *rule
	idx  int // the action's index in rule.actions
	elem int // the foreach element, -1 for none
}

// name is the action's name: "actions[N]".
func (o Output) name() string { return o.rule.actionNames[o.idx] }

// Env returns the message's evaluation context, for the action's templates.
func (o Output) Env() *iotsql.Env { return o.d.env }

// Fail records that the action can never succeed for this message: the
// rule's error action gets the message with reason (a short word such as
// "template_error") and err.
func (o Output) Fail(reason string, err error) {
	o.d.permanent(o.rule, o.name(), reason, inElement(o.elem, err))
}

// NewRecord returns an empty record for the action to fill and Produce.
// The first record of a message comes with the message's bookkeeping,
// without an allocation of its own. Call it from Start only.
func (o Output) NewRecord() *Record {
	d := o.d
	if d.recUsed {
		return new(Record)
	}
	d.recUsed = true
	return &d.rec
}

// Produce hands rec to the sink. The message is acknowledged only once rec
// is stored; a permanent sink error goes to the error action, any other
// fails the message.
func (o Output) Produce(rec *Record) {
	// The closure takes o's fields, not o, to stay in a smaller size class.
	d, r, idx, elem := o.d, o.rule, o.idx, o.elem
	d.produce(rec, func(err error) {
		if reason, ok := permanentReason(err); ok {
			d.permanent(r, r.actionNames[idx], reason, inElement(elem, err))
			err = nil
		} else if err == nil && d.e.trace != nil {
			d.e.trace(Trace{Rule: r.name, Action: r.actionNames[idx], Record: rec})
		}
		d.finish(err)
	})
}

// Trace tells the engine's trace (fleetgate rules test) about an output
// that is complete; t's Rule and Action are filled in.
func (o Output) Trace(t Trace) {
	if o.d.e.trace != nil {
		t.Rule, t.Action = o.rule.name, o.name()
		o.d.e.trace(t)
	}
}

// Publisher returns the MQTT publisher, nil when there is no broker.
func (o Output) Publisher() Publisher { return o.d.e.pub }
