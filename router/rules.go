package router

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// RuleConfig is one rule as operators write it in YAML (SPEC section 3).
type RuleConfig struct {
	Name string `mapstructure:"name" yaml:"name"`
	// Foreach, when set ("samples AS s"), runs the rule once per element of
	// an array of the message, in order; the element is visible under its
	// alias in the SQL and in the templates, index() is its position.
	Foreach     string         `mapstructure:"foreach" yaml:"foreach"`
	SQL         string         `mapstructure:"sql" yaml:"sql"`
	Actions     []ActionConfig `mapstructure:"actions" yaml:"actions"`
	ErrorAction *ActionConfig  `mapstructure:"error_action" yaml:"error_action"`
}

// ActionConfig holds exactly one action.
type ActionConfig struct {
	Kafka     *KafkaActionConfig     `mapstructure:"kafka" yaml:"kafka"`
	Republish *RepublishActionConfig `mapstructure:"republish" yaml:"republish"`
}

// KafkaActionConfig writes the SELECT output to a Kafka topic. Every field is
// a substitution template evaluated against the original message.
type KafkaActionConfig struct {
	Topic string `mapstructure:"topic" yaml:"topic"`
	Key   string `mapstructure:"key" yaml:"key"`
	// Partition is empty (the partitioner decides from the key) or a template
	// that yields a partition number.
	Partition string            `mapstructure:"partition" yaml:"partition"`
	Headers   map[string]string `mapstructure:"headers" yaml:"headers"`
}

// RepublishActionConfig re-publishes the SELECT output to the embedded MQTT
// broker.
type RepublishActionConfig struct {
	Topic string `mapstructure:"topic" yaml:"topic"`
	QoS   byte   `mapstructure:"qos" yaml:"qos"`
}

// DefaultRules returns the device-reports rule of SPEC section 3.
func DefaultRules() []RuleConfig {
	return []RuleConfig{{
		Name: "device-reports",
		SQL:  `SELECT *, parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) AS timestamp FROM 'report'`,
		Actions: []ActionConfig{{Kafka: &KafkaActionConfig{
			Topic: "message-${type}",
			Key:   "${device_no}",
		}}},
		ErrorAction: &ActionConfig{Kafka: &KafkaActionConfig{
			Topic: "message-dlq",
			Key:   "${clientid()}",
		}},
	}}
}

// Rules is a compiled, immutable rule table; safe for concurrent use.
type Rules struct {
	rules []*rule
}

type rule struct {
	name        string
	each        *Foreach // nil: once per message
	query       *Query
	actions     []action
	errorAction *action
}

type action struct {
	name      string // "actions[0]", "error_action": for traces and error headers
	kafka     *kafkaAction
	republish *republishAction
}

type kafkaAction struct {
	topic     *Template
	key       *Template // nil: no key
	partition *Template // nil: partitioner decides
	fixedPart int32     // used when partition is a literal
	headers   []headerTemplate
}

type headerTemplate struct {
	key   string
	value *Template
}

type republishAction struct {
	topic *Template
	qos   byte
}

// RuleError is a problem with one rule's configuration. Field is the path
// inside the rule, e.g. "sql" or "actions[0].kafka.topic".
type RuleError struct {
	Index int
	Name  string
	Field string
	Err   error
}

// Error implements error: `rules[0] (device-reports) sql: line 1, column 8: ...`.
func (e *RuleError) Error() string {
	name := ""
	if e.Name != "" {
		name = " (" + e.Name + ")"
	}
	return fmt.Sprintf("rules[%d]%s %s: %v", e.Index, name, e.Field, e.Err)
}

// Unwrap returns the underlying error (a *SyntaxError for SQL and templates).
func (e *RuleError) Unwrap() error { return e.Err }

// Compile validates and compiles rule configurations into a table. It
// reports every problem it finds, each as a *RuleError.
func Compile(cfgs []RuleConfig) (*Rules, error) {
	var errs []error
	names := map[string]int{}
	out := &Rules{}
	for i, c := range cfgs {
		fail := func(field string, err error) {
			errs = append(errs, &RuleError{Index: i, Name: c.Name, Field: field, Err: err})
		}
		r := &rule{name: c.Name}
		if c.Name == "" {
			fail("name", errors.New("every rule needs a name"))
		} else if j, dup := names[c.Name]; dup {
			fail("name", fmt.Errorf("the name is already used by rules[%d]", j))
		}
		names[c.Name] = i
		var alias string
		if strings.TrimSpace(c.Foreach) != "" {
			f, err := ParseForeach(c.Foreach)
			if err != nil {
				fail("foreach", err)
			} else {
				r.each, alias = f, f.Alias()
			}
		}
		q, err := parseQuery(c.SQL, alias)
		if err != nil {
			fail("sql", err)
		}
		r.query = q
		if len(c.Actions) == 0 {
			fail("actions", errors.New("a rule needs at least one action"))
		}
		for j, ac := range c.Actions {
			a, err := compileAction(ac, alias)
			if err != nil {
				var fe *fieldError
				if errors.As(err, &fe) {
					fail(fmt.Sprintf("actions[%d].%s", j, fe.field), fe.err)
				} else {
					fail(fmt.Sprintf("actions[%d]", j), err)
				}
				continue
			}
			a.name = "actions[" + strconv.Itoa(j) + "]"
			r.actions = append(r.actions, a)
		}
		if c.ErrorAction != nil {
			a, err := compileAction(*c.ErrorAction, alias)
			if err != nil {
				var fe *fieldError
				if errors.As(err, &fe) {
					fail("error_action."+fe.field, fe.err)
				} else {
					fail("error_action", err)
				}
			} else if a.kafka == nil {
				fail("error_action", errors.New("the error action must be a kafka action"))
			} else {
				a.name = "error_action"
				r.errorAction = &a
			}
		}
		out.rules = append(out.rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Len returns the number of rules.
func (r *Rules) Len() int { return len(r.rules) }

// Names returns the rules' names in order.
func (r *Rules) Names() []string {
	out := make([]string, len(r.rules))
	for i, ru := range r.rules {
		out[i] = ru.name
	}
	return out
}

// LiteralTopics returns every Kafka topic the rules name without a template,
// sorted, for the start-up topic check.
func (r *Rules) LiteralTopics() []string {
	seen := map[string]bool{}
	add := func(a *action) {
		if a != nil && a.kafka != nil && a.kafka.topic.IsLiteral() {
			seen[a.kafka.topic.Literal()] = true
		}
	}
	for _, ru := range r.rules {
		for i := range ru.actions {
			add(&ru.actions[i])
		}
		add(ru.errorAction)
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }

// compileAction compiles one action; elem is the rule's foreach alias.
func compileAction(c ActionConfig, elem string) (action, error) {
	switch {
	case c.Kafka != nil && c.Republish != nil:
		return action{}, errors.New("an action is either kafka or republish, not both")
	case c.Kafka != nil:
		k, err := compileKafka(*c.Kafka, elem)
		return action{kafka: k}, err
	case c.Republish != nil:
		p, err := compileRepublish(*c.Republish, elem)
		return action{republish: p}, err
	}
	return action{}, errors.New("the action is empty; give kafka: or republish:")
}

func compileKafka(c KafkaActionConfig, elem string) (*kafkaAction, error) {
	k := &kafkaAction{fixedPart: -1}
	var err error
	if strings.TrimSpace(c.Topic) == "" {
		return nil, &fieldError{"kafka.topic", errors.New("a kafka action needs a topic")}
	}
	if k.topic, err = parseTemplate(c.Topic, elem); err != nil {
		return nil, &fieldError{"kafka.topic", err}
	}
	if c.Key != "" {
		if k.key, err = parseTemplate(c.Key, elem); err != nil {
			return nil, &fieldError{"kafka.key", err}
		}
	}
	if c.Partition != "" {
		if k.partition, err = parseTemplate(c.Partition, elem); err != nil {
			return nil, &fieldError{"kafka.partition", err}
		}
		if k.partition.IsLiteral() {
			n, err := strconv.ParseInt(k.partition.Literal(), 10, 32)
			if err != nil || n < 0 {
				return nil, &fieldError{"kafka.partition", fmt.Errorf("%q is not a partition number", c.Partition)}
			}
			k.fixedPart = int32(n)
			k.partition = nil
		}
	}
	if len(c.Headers) > 100 {
		return nil, &fieldError{"kafka.headers", fmt.Errorf("%d headers; at most 100", len(c.Headers))}
	}
	keys := make([]string, 0, len(c.Headers))
	for hk := range c.Headers {
		keys = append(keys, hk)
	}
	sort.Strings(keys)
	for _, hk := range keys {
		t, err := parseTemplate(c.Headers[hk], elem)
		if err != nil {
			return nil, &fieldError{"kafka.headers." + hk, err}
		}
		k.headers = append(k.headers, headerTemplate{key: hk, value: t})
	}
	return k, nil
}

func compileRepublish(c RepublishActionConfig, elem string) (*republishAction, error) {
	if strings.TrimSpace(c.Topic) == "" {
		return nil, &fieldError{"republish.topic", errors.New("a republish action needs a topic")}
	}
	if c.QoS > 1 {
		return nil, &fieldError{"republish.qos", fmt.Errorf("qos %d; republish supports 0 and 1", c.QoS)}
	}
	t, err := parseTemplate(c.Topic, elem)
	if err != nil {
		return nil, &fieldError{"republish.topic", err}
	}
	return &republishAction{topic: t, qos: c.QoS}, nil
}
