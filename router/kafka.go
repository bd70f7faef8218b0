package router

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

// KafkaActionConfig writes the SELECT output to a Kafka topic. Every field is
// a substitution template evaluated against the original message.
type KafkaActionConfig struct {
	Topic string `mapstructure:"topic" yaml:"topic"`
	Key   string `mapstructure:"key" yaml:"key"`
	// Partition is empty (the partitioner decides from the key) or a template
	// that yields a partition number.
	Partition string            `mapstructure:"partition" yaml:"partition"`
	Headers   map[string]string `mapstructure:"headers" yaml:"headers"`
	// Schema names the JSON Schema the record value must match (a template,
	// e.g. "${type}"); see schema.go. Empty: no validation, unless Format is
	// confluent, which validates against the subject "<topic>-value".
	Schema string `mapstructure:"schema" yaml:"schema"`
	// Format is json (the default: the value as SELECT made it) or
	// confluent (the Confluent wire format: magic byte, schema id, JSON).
	Format string `mapstructure:"format" yaml:"format"`
}

// kafkaAction is a compiled kafka action; it also serves as a rule's error
// action.
type kafkaAction struct {
	topic     *iotsql.Template
	key       *iotsql.Template // nil: no key
	partition *iotsql.Template // nil: partitioner decides
	fixedPart int32            // used when partition is a literal
	headers   []headerTemplate
	schema    *recordSchema // nil: no validation
}

type headerTemplate struct {
	key   string
	value *iotsql.Template
}

func (c *KafkaActionConfig) compile(env actionEnv) (Action, error) {
	k := &kafkaAction{fixedPart: -1}
	var err error
	if strings.TrimSpace(c.Topic) == "" {
		return nil, &fieldError{"topic", errors.New("a kafka action needs a topic")}
	}
	if k.topic, err = env.template(c.Topic); err != nil {
		return nil, &fieldError{"topic", err}
	}
	if c.Key != "" {
		if k.key, err = env.template(c.Key); err != nil {
			return nil, &fieldError{"key", err}
		}
	}
	if c.Partition != "" {
		if k.partition, err = env.template(c.Partition); err != nil {
			return nil, &fieldError{"partition", err}
		}
		if k.partition.IsLiteral() {
			n, err := strconv.ParseInt(k.partition.Literal(), 10, 32)
			if err != nil || n < 0 {
				return nil, &fieldError{"partition", fmt.Errorf("%q is not a partition number", c.Partition)}
			}
			k.fixedPart = int32(n)
			k.partition = nil
		}
	}
	if len(c.Headers) > 100 {
		return nil, &fieldError{"headers", fmt.Errorf("%d headers; at most 100", len(c.Headers))}
	}
	keys := make([]string, 0, len(c.Headers))
	for hk := range c.Headers {
		keys = append(keys, hk)
	}
	sort.Strings(keys)
	for _, hk := range keys {
		t, err := env.template(c.Headers[hk])
		if err != nil {
			return nil, &fieldError{"headers." + hk, err}
		}
		k.headers = append(k.headers, headerTemplate{key: hk, value: t})
	}
	if k.schema, err = compileSchema(c, env); err != nil {
		return nil, err
	}
	return k, nil
}

// Start stores value in the topic the templates give.
func (k *kafkaAction) Start(out Output, value []byte) {
	rec := out.NewRecord()
	reason, err := k.record(rec, out.Env(), value)
	if err != nil {
		out.Fail(reason, err)
		return
	}
	if k.schema != nil {
		if reason, err := k.schema.apply(out.Env(), rec); err != nil {
			out.Fail(reason, err)
			return
		}
	}
	out.Produce(rec)
}

// literalTopic returns the topic when it is no template.
func (k *kafkaAction) literalTopic() (string, bool) {
	return k.topic.Literal(), k.topic.IsLiteral()
}

// record fills rec, an empty record, with value and what the action's
// templates give for the original message. On failure it returns a short
// reason and the error.
func (k *kafkaAction) record(rec *Record, env *iotsql.Env, value []byte) (string, error) {
	topic, err := k.topic.Eval(env)
	if err != nil {
		return ReasonTemplateError, fmt.Errorf("topic template: %w", err)
	}
	*rec = Record{Topic: topic, Partition: k.fixedPart, Value: value}
	if k.key != nil {
		key, err := k.key.AppendEval(nil, env)
		if err != nil {
			return ReasonTemplateError, fmt.Errorf("key template: %w", err)
		}
		if len(key) > 0 {
			rec.Key = key
		}
	}
	if k.partition != nil {
		s, err := k.partition.Eval(env)
		if err != nil {
			return ReasonTemplateError, fmt.Errorf("partition template: %w", err)
		}
		// Undefined (an empty string) leaves the choice to the partitioner.
		if s != "" {
			n, err := strconv.ParseInt(s, 10, 32)
			if err != nil || n < 0 {
				return ReasonInvalidPartition, fmt.Errorf("partition template gave %q, not a partition number", s)
			}
			rec.Partition = int32(n)
		}
	}
	for _, h := range k.headers {
		v, err := h.value.AppendEval([]byte{}, env) // an empty value is empty, not null
		if err != nil {
			return ReasonTemplateError, fmt.Errorf("header %q template: %w", h.key, err)
		}
		rec.Headers = append(rec.Headers, Header{Key: h.key, Value: v})
	}
	return "", nil
}

// errorRecord builds the error action's record for failure f of msg: the
// original payload, cut to maxPayload bytes (0: all of it), with the
// headers that say why first (see errorHeaders), then the action's own.
func (k *kafkaAction) errorRecord(env *iotsql.Env, msg *Message, f failure, maxPayload int) (*Record, error) {
	topic, err := k.topic.Eval(env)
	if err != nil {
		return nil, fmt.Errorf("error_action topic template: %w", err)
	}
	rec := &Record{Topic: topic, Partition: k.fixedPart, Value: msg.Payload}
	if maxPayload > 0 && len(rec.Value) > maxPayload {
		rec.Value = rec.Value[:maxPayload]
		rec.Headers = append(rec.Headers, Header{Key: "truncated", Value: []byte(strconv.Itoa(len(msg.Payload)))})
	}
	if k.key != nil {
		// A key that cannot be evaluated (payload not JSON) leaves the
		// record without a key rather than losing it.
		if key, err := k.key.Eval(env); err == nil && key != "" {
			rec.Key = []byte(key)
		}
	}
	rec.Headers = append(rec.Headers, errorHeaders(msg, f)...)
	for _, h := range k.headers {
		if v, err := h.value.Eval(env); err == nil {
			rec.Headers = append(rec.Headers, Header{Key: h.key, Value: clip(v)})
		}
	}
	return rec, nil
}
