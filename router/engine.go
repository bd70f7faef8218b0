package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

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
	// identity and maxForeach are router.* (identity.go, config.go).
	identity   *identity
	maxForeach int
	// envs holds the evaluation contexts of messages that are done, for
	// reuse: a message's Env is returned when its done is called.
	envs sync.Pool
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
	// Config is router.* (config.go); it must be valid. Zero: DefaultConfig.
	Config Config
	// EnforceIdentity lists the sources whose Message.Principal, when set,
	// is the sender's verified device id: a message of one of them whose
	// device field (router.identity.field) names another device is refused
	// (identity.go). The gateway passes "mqtt" when
	// mqtt.auth.enforce_device_identity is on. Default none.
	EnforceIdentity []string
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
	if opts.Config == (Config{}) {
		opts.Config = DefaultConfig()
	}
	e.identity = newIdentity(opts.Config.Identity, opts.EnforceIdentity)
	e.maxForeach = opts.Config.MaxForeachElements
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
	env, _ := e.envs.Get().(*iotsql.Env)
	if env == nil {
		env = new(iotsql.Env)
	}
	env.Reset(msg)
	d := &delivery{e: e, ctx: ctx, msg: msg, env: env, done: done}
	d.outstanding.Store(1) // held by the dispatch below until it has handed over every record
	if d.refuseInvalidIdentity() {
		d.finish(nil)
		return
	}
	selected := false
	for _, r := range e.rules.Load().rules {
		if !iotsql.MatchTopic(r.query.Filter(), msg.Topic) {
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
		if len(elems) > e.maxForeach {
			selected = true
			d.permanent(r, "foreach", ReasonForeachTooLarge, fmt.Errorf("%d elements; at most %d (router.max_foreach_elements)", len(elems), e.maxForeach))
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
	for i, a := range r.actions {
		a.Start(Output{d: d, rule: r, idx: i, elem: elem}, value)
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

// delivery tracks one message's records until all are complete.
type delivery struct {
	e   *Engine
	ctx context.Context
	msg *Message
	// env is used by the dispatch and, once every record of the dispatch is
	// complete, by whoever runs the error actions: never by two at once.
	env         *iotsql.Env
	done        func(error)
	outstanding atomic.Int32

	mu         sync.Mutex
	err        error // first transient failure
	failures   []failure
	errorPhase bool
	// refusal, set before the dispatch ends, is the message's outcome
	// once its error records are stored (identity.go).
	refusal *Refusal

	// rec is the message's first record (Output.NewRecord), recUsed
	// whether it is taken; the dispatch alone uses them. A record is never
	// reused: the sink and the trace may keep it.
	rec     Record
	recUsed bool
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
	} else if d.refusal != nil {
		err = d.refusal
	}
	// Nothing evaluates for the message any more: the dispatch and the
	// error phase are over, and records share no memory with the Env.
	env := d.env
	d.env = nil
	env.Reset(nil) // not to keep the message alive while pooled
	d.e.envs.Put(env)
	d.done(err)
}

func (d *delivery) produce(rec *Record, done func(error)) {
	d.outstanding.Add(1)
	if err := d.e.sink.Produce(d.ctx, rec, done); err != nil {
		d.finish(fmt.Errorf("hand record to kafka: %w", err))
	}
}

// permanentReason tells whether err is a permanent sink error and its reason.
func permanentReason(err error) (string, bool) {
	if err == nil {
		return "", false // before pe, which escapes to the heap (errors.As)
	}
	var pe PermanentError
	if !errors.As(err, &pe) || !pe.Permanent() {
		return "", false
	}
	var r interface{ ErrorReason() string }
	if errors.As(err, &r) {
		return r.ErrorReason(), true
	}
	return ReasonPermanentError, true
}
