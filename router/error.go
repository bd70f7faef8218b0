package router

import (
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

// The error phase: once every record of a message is complete, each rule
// that failed the message permanently has its error action store the
// original payload with headers that say why.

// errorWriter is an Action that can serve as a rule's error_action (the
// kafka action).
type errorWriter interface {
	Action
	// errorRecord builds the record that stores failure f of msg, whose
	// payload it cuts to maxPayload bytes (0: no limit).
	errorRecord(env *iotsql.Env, msg *Message, f failure, maxPayload int) (*Record, error)
}

// failure is an action that can never succeed for this message.
type failure struct {
	rule   *rule
	failed string // "sql", "foreach", "identity" or the action's name
	reason string
	err    error
	// headers go on the error record after the standard ones (principal
	// and claimed_id for an identity failure).
	headers []Header
}

// errorHeaders are the headers that say why a message is in the error
// topic: error ("reason: message"), rule, action (what failed: "sql",
// "foreach", "identity" or "actions[N]"), source, client_id, mqtt_topic,
// then the failure's own, and for a schema violation schema_pointer and
// schema_keyword. Values the sender chose are clipped to
// MaxErrorHeaderBytes (errheaders.go).
func errorHeaders(msg *Message, f failure) []Header {
	return append([]Header{
		{Key: "error", Value: clip(f.reason + ": " + f.err.Error())},
		{Key: "rule", Value: []byte(f.rule.name)},
		{Key: "action", Value: []byte(f.failed)},
		{Key: "source", Value: []byte(msg.Source)},
		{Key: "client_id", Value: clip(msg.ClientID)},
		{Key: "mqtt_topic", Value: clip(msg.Topic)},
	}, slices.Concat(f.headers, schemaHeaders(f.err))...)
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
		rec, err := f.rule.errorAction.errorRecord(d.env, d.msg, f, d.e.maxPayload)
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
