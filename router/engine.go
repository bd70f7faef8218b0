package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// Publisher re-publishes a message to the embedded MQTT broker (the
// republish action). The broker package provides one.
type Publisher interface {
	Publish(topic string, payload []byte, qos byte) error
}

// Observer is told what becomes of messages (the metrics package implements
// it). Labels are bounded: sources are "mqtt", "sts", "csa"; rules are the
// configured names; reasons are the short words of the error headers. Its
// methods must be safe for concurrent use and cheap.
type Observer interface {
	// Message: a message entered the engine.
	Message(source string)
	// Unmatched: no rule selected the message; it is acknowledged.
	Unmatched(source string)
	// ErrorRecord: an error action stored the original payload.
	ErrorRecord(rule, reason string)
	// Dropped: a permanent failure that no error action could store; the
	// message is acknowledged and logged.
	Dropped(rule, reason string)
	// Failed: the message was not stored (transient failure) and must not
	// be acknowledged.
	Failed(source string)
}

type nopObserver struct{}

func (nopObserver) Message(string)             {}
func (nopObserver) Unmatched(string)           {}
func (nopObserver) ErrorRecord(string, string) {}
func (nopObserver) Dropped(string, string)     {}
func (nopObserver) Failed(string)              {}

// Engine runs every message through the current rule table and hands the
// records to the sink. It is safe for concurrent use; the table can be
// swapped at any time and a message finishes under the table it started with.
type Engine struct {
	rules atomic.Pointer[Rules]
	sink  Sink
	pub   Publisher
	log   *zap.Logger
	// maxPayload is the most of an original payload an error record
	// carries; 0 means all of it.
	maxPayload int
	obs        Observer
	trace      func(Trace)
}

// Options tune an Engine.
type Options struct {
	// Publisher serves republish actions; nil when there is no MQTT broker.
	Publisher Publisher
	// MaxRecordBytes is the sink's record size limit (kafka.max_message_bytes).
	// An error record whose original payload would not fit carries the
	// payload's first MaxRecordBytes-ErrorRecordHeadroom bytes and a
	// "truncated" header with the original length. 0: no limit.
	MaxRecordBytes int
	// Observer counts outcomes; nil: none.
	Observer Observer
	// Trace, when set, is told every output as it completes (fleetgate rules
	// test prints them). It is called from any goroutine, possibly before
	// Process returns, and must be safe for concurrent use. nil: none.
	Trace func(Trace)
}

// Trace is one output of the engine for a message: a record a kafka action
// stored, a message a republish action published, or what became of a
// failure (the error action's record, or nothing when there was none).
type Trace struct {
	// Rule is the rule's name; Action the action that made the output,
	// "actions[N]" or "error_action".
	Rule, Action string
	// Record is the Kafka record stored; nil for a republish, and for a
	// failure that no error action stored.
	Record *Record
	// MQTTTopic, QoS and Payload describe a republished message.
	MQTTTopic string
	QoS       byte
	Payload   []byte
	// For the error action: Failed is what failed ("sql", "foreach" or
	// "actions[N]"), Reason the short reason of the error header and Err
	// the failure.
	Failed, Reason string
	Err            error
}

// ErrorRecordHeadroom is the room left for headers when an error record's
// payload is truncated.
const ErrorRecordHeadroom = 2048

// NewEngine returns an engine over rules writing to sink.
func NewEngine(rules *Rules, sink Sink, opts Options, log *zap.Logger) *Engine {
	e := &Engine{sink: sink, pub: opts.Publisher, log: log, obs: opts.Observer, trace: opts.Trace}
	if e.obs == nil {
		e.obs = nopObserver{}
	}
	if opts.MaxRecordBytes > ErrorRecordHeadroom {
		e.maxPayload = opts.MaxRecordBytes - ErrorRecordHeadroom
	}
	e.rules.Store(rules)
	return e
}

// Swap installs a new rule table. Messages already being processed finish
// under the old one.
func (e *Engine) Swap(r *Rules) { e.rules.Store(r) }

// Rules returns the current rule table.
func (e *Engine) Rules() *Rules { return e.rules.Load() }

// Process runs msg through the rules. done is called exactly once, possibly
// before Process returns: with nil when every record the message produced
// is stored (or, for a record that can never be stored, its error action's
// record is), or with the reason the message was not stored, in which case
// it must not be acknowledged. Records are handed to the sink before
// Process returns, so messages processed one after the other keep their
// order per topic and key; a foreach rule hands over its elements' records
// in array order.
func (e *Engine) Process(ctx context.Context, msg *Message, done func(error)) {
	e.obs.Message(msg.Source)
	d := &delivery{e: e, ctx: ctx, msg: msg, env: NewEnv(msg), done: done}
	d.outstanding.Store(1) // held by the dispatch below until it has handed over every record
	selected := false
	for _, r := range e.rules.Load().rules {
		if !MatchTopic(r.query.Filter(), msg.Topic) {
			continue
		}
		if r.each == nil {
			selected = d.apply(r, -1) || selected
			continue
		}
		elems, err := r.each.Elements(d.env)
		if err != nil {
			selected = true
			d.permanent(r, "foreach", ReasonEvalError, err)
			continue
		}
		for i, el := range elems {
			d.env.SetElement(i, el)
			selected = d.apply(r, i) || selected
		}
		d.env.ClearElement()
	}
	if !selected {
		e.obs.Unmatched(msg.Source)
		e.log.Warn("message matched no rule",
			zap.String("source", msg.Source), zap.String("client_id", msg.ClientID), zap.String("mqtt_topic", msg.Topic))
	}
	d.finish(nil)
}

// apply evaluates rule r's SELECT (for foreach element elem, or -1) and
// starts its actions. It reports whether the rule selected the message.
func (d *delivery) apply(r *rule, elem int) bool {
	value, ok, err := r.query.Eval(d.env)
	if err != nil {
		d.permanent(r, "sql", ReasonEvalError, inElement(elem, err))
		return true
	}
	if !ok {
		return false
	}
	for i := range r.actions {
		d.run(r, &r.actions[i], elem, value)
	}
	return true
}

// inElement says which foreach element err happened for.
func inElement(elem int, err error) error {
	if elem < 0 {
		return err
	}
	return fmt.Errorf("foreach element %d: %w", elem, err)
}

// failure is an action that can never succeed for this message.
type failure struct {
	rule   *rule
	failed string // "sql", "foreach" or the action's name
	reason string
	err    error
}

// delivery tracks one message's records until all are complete.
type delivery struct {
	e   *Engine
	ctx context.Context
	msg *Message
	// env is used by the dispatch and, once every record of the dispatch is
	// complete, by whoever runs the error actions: never by two at once.
	env         *Env
	done        func(error)
	outstanding atomic.Int32

	mu         sync.Mutex
	err        error // first transient failure
	failures   []failure
	errorPhase bool
}

func (d *delivery) permanent(r *rule, failed, reason string, err error) {
	d.mu.Lock()
	d.failures = append(d.failures, failure{rule: r, failed: failed, reason: reason, err: err})
	d.mu.Unlock()
}

// finish completes one outstanding part with err (nil, or a transient failure).
func (d *delivery) finish(err error) {
	if err != nil {
		d.mu.Lock()
		if d.err == nil {
			d.err = err
		}
		d.mu.Unlock()
	}
	if d.outstanding.Add(-1) != 0 {
		return
	}
	d.mu.Lock()
	runErrors := d.err == nil && len(d.failures) > 0 && !d.errorPhase
	d.errorPhase = d.errorPhase || runErrors
	err = d.err
	d.mu.Unlock()
	if runErrors {
		// Not on the caller's goroutine: it may be the sink's completion
		// goroutine, which must never wait on the sink.
		go d.runErrorActions()
		return
	}
	if err != nil {
		d.e.obs.Failed(d.msg.Source)
	}
	d.done(err)
}

// run starts one action for the SELECT output value (of foreach element
// elem, or -1).
func (d *delivery) run(r *rule, a *action, elem int, value []byte) {
	switch {
	case a.kafka != nil:
		rec, reason, err := a.kafka.record(d.env, value)
		if err != nil {
			d.permanent(r, a.name, reason, inElement(elem, err))
			return
		}
		d.produce(rec, func(err error) {
			if reason, ok := permanentReason(err); ok {
				d.permanent(r, a.name, reason, inElement(elem, err))
				err = nil
			} else if err == nil && d.e.trace != nil {
				d.e.trace(Trace{Rule: r.name, Action: a.name, Record: rec})
			}
			d.finish(err)
		})
	case a.republish != nil:
		topic, err := d.republish(a.republish, value)
		if err != nil {
			d.permanent(r, a.name, ReasonRepublishFailed, inElement(elem, err))
		} else if d.e.trace != nil {
			d.e.trace(Trace{Rule: r.name, Action: a.name, MQTTTopic: topic, QoS: a.republish.qos, Payload: value})
		}
	}
}

func (d *delivery) produce(rec *Record, done func(error)) {
	d.outstanding.Add(1)
	if err := d.e.sink.Produce(d.ctx, rec, done); err != nil {
		d.finish(fmt.Errorf("hand record to kafka: %w", err))
	}
}

// republish publishes value and returns the MQTT topic it went to.
func (d *delivery) republish(a *republishAction, value []byte) (string, error) {
	if d.e.pub == nil {
		return "", errors.New("republish is not available: no MQTT broker")
	}
	topic, err := a.topic.Eval(d.env)
	if err != nil {
		return "", fmt.Errorf("republish topic template: %w", err)
	}
	if err := ValidTopicName(topic); err != nil {
		return "", fmt.Errorf("republish topic template: %w", err)
	}
	return topic, d.e.pub.Publish(topic, value, a.qos)
}

// ValidTopicName reports why topic cannot be published to over MQTT.
func ValidTopicName(topic string) error {
	if topic == "" {
		return errors.New("MQTT topic is empty")
	}
	for i := 0; i < len(topic); i++ {
		if topic[i] == '+' || topic[i] == '#' || topic[i] == 0 {
			return fmt.Errorf("MQTT topic %q has a wildcard or NUL at %d", topic, i)
		}
	}
	return nil
}

// runErrorActions writes the original payload to each failed rule's error
// action, then completes the message. A rule whose action failed the same
// way several times (a foreach over many elements) stores the payload once.
func (d *delivery) runErrorActions() {
	d.outstanding.Store(1)
	d.mu.Lock()
	failures := dedupe(d.failures)
	d.failures = nil
	d.mu.Unlock()
	for _, f := range failures {
		log := d.e.log.With(zap.String("rule", f.rule.name), zap.String("failed", f.failed), zap.String("reason", f.reason), zap.Error(f.err),
			zap.String("source", d.msg.Source), zap.String("client_id", d.msg.ClientID), zap.String("mqtt_topic", d.msg.Topic))
		if f.rule.errorAction == nil {
			d.e.obs.Dropped(f.rule.name, f.reason)
			d.traceError(f, nil)
			log.Warn("message failed a rule that has no error_action; it is acknowledged and not stored")
			continue
		}
		rec, err := d.errorRecord(f)
		if err != nil {
			d.e.obs.Dropped(f.rule.name, f.reason)
			d.traceError(f, nil)
			log.Error("error action failed; the message is acknowledged and not stored", zap.NamedError("error_action_error", err))
			continue
		}
		d.produce(rec, func(err error) {
			if _, ok := permanentReason(err); ok {
				// The error topic is checked at start, so this is not the
				// message's fault (e.g. the topic was deleted): not
				// acknowledging keeps the message with its sender rather
				// than losing it.
				d.traceError(f, nil)
				log.Error("error action could not store the message; it is not acknowledged, its sender will retry", zap.NamedError("error_action_error", err))
				err = fmt.Errorf("error action: %w", err)
			} else if err == nil {
				d.e.obs.ErrorRecord(f.rule.name, f.reason)
				d.traceError(f, rec)
			}
			d.finish(err)
		})
	}
	d.finish(nil)
}

func (d *delivery) traceError(f failure, rec *Record) {
	if d.e.trace != nil {
		d.e.trace(Trace{Rule: f.rule.name, Action: "error_action", Record: rec, Failed: f.failed, Reason: f.reason, Err: f.err})
	}
}

// dedupe keeps the first failure of each rule, failed step and reason.
func dedupe(fs []failure) []failure {
	out := fs[:0:0]
	for _, f := range fs {
		dup := false
		for _, o := range out {
			if o.rule == f.rule && o.failed == f.failed && o.reason == f.reason {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, f)
		}
	}
	return out
}

// errorRecord builds the error action's record: the original payload with
// headers that say why: error ("reason: message"), rule, action (what
// failed: "sql", "foreach" or "actions[N]"), source, client_id, mqtt_topic,
// then the error action's own headers; "truncated" first when the payload
// was cut.
func (d *delivery) errorRecord(f failure) (*Record, error) {
	k := f.rule.errorAction.kafka
	topic, err := k.topic.Eval(d.env)
	if err != nil {
		return nil, fmt.Errorf("error_action topic template: %w", err)
	}
	rec := &Record{Topic: topic, Partition: k.fixedPart, Value: d.msg.Payload}
	if max := d.e.maxPayload; max > 0 && len(rec.Value) > max {
		rec.Value = rec.Value[:max]
		rec.Headers = append(rec.Headers, Header{Key: "truncated", Value: []byte(strconv.Itoa(len(d.msg.Payload)))})
	}
	if k.key != nil {
		// A key that cannot be evaluated (payload not JSON) leaves the
		// record without a key rather than losing it.
		if key, err := k.key.Eval(d.env); err == nil && key != "" {
			rec.Key = []byte(key)
		}
	}
	rec.Headers = append(rec.Headers,
		Header{Key: "error", Value: []byte(f.reason + ": " + f.err.Error())},
		Header{Key: "rule", Value: []byte(f.rule.name)},
		Header{Key: "action", Value: []byte(f.failed)},
		Header{Key: "source", Value: []byte(d.msg.Source)},
		Header{Key: "client_id", Value: []byte(d.msg.ClientID)},
		Header{Key: "mqtt_topic", Value: []byte(d.msg.Topic)},
	)
	for _, h := range k.headers {
		if v, err := h.value.Eval(d.env); err == nil {
			rec.Headers = append(rec.Headers, Header{Key: h.key, Value: []byte(v)})
		}
	}
	return rec, nil
}

// record evaluates the action's templates against the original message.
// On failure it returns a short reason and the error.
func (k *kafkaAction) record(env *Env, value []byte) (*Record, string, error) {
	topic, err := k.topic.Eval(env)
	if err != nil {
		return nil, ReasonTemplateError, fmt.Errorf("topic template: %w", err)
	}
	rec := &Record{Topic: topic, Partition: k.fixedPart, Value: value}
	if k.key != nil {
		key, err := k.key.Eval(env)
		if err != nil {
			return nil, ReasonTemplateError, fmt.Errorf("key template: %w", err)
		}
		if key != "" {
			rec.Key = []byte(key)
		}
	}
	if k.partition != nil {
		s, err := k.partition.Eval(env)
		if err != nil {
			return nil, ReasonTemplateError, fmt.Errorf("partition template: %w", err)
		}
		// Undefined (an empty string) leaves the choice to the partitioner.
		if s != "" {
			n, err := strconv.ParseInt(s, 10, 32)
			if err != nil || n < 0 {
				return nil, ReasonInvalidPartition, fmt.Errorf("partition template gave %q, not a partition number", s)
			}
			rec.Partition = int32(n)
		}
	}
	for _, h := range k.headers {
		v, err := h.value.Eval(env)
		if err != nil {
			return nil, ReasonTemplateError, fmt.Errorf("header %q template: %w", h.key, err)
		}
		rec.Headers = append(rec.Headers, Header{Key: h.key, Value: []byte(v)})
	}
	return rec, "", nil
}

// permanentReason tells whether err is a permanent sink error and its reason.
func permanentReason(err error) (string, bool) {
	var pe PermanentError
	if err == nil || !errors.As(err, &pe) || !pe.Permanent() {
		return "", false
	}
	var r interface{ ErrorReason() string }
	if errors.As(err, &r) {
		return r.ErrorReason(), true
	}
	return ReasonPermanentError, true
}
