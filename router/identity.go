package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/ident"
	"github.com/fleetgate/fleetgate/router/iotsql"
)

// Refusal is the outcome a message's done callback gets when the engine
// refused the message for the device it claims to speak for
// (identity_mismatch): its original payload went to the error action of
// every rule whose topic filter matches (the records are stored, or the
// failure was logged and counted where a rule has no error action), and no
// rule produced anything else. It is final, not transient: a transport
// acknowledges the message (the sender must not re-send it) and tells the
// sender it was refused where its protocol can (MQTT 5: reason code 0x87,
// not authorized).
type Refusal struct {
	// Reason is the short reason of the error header.
	Reason string
	// Principal is the sender's verified identity, Claimed the device the
	// message named.
	Principal, Claimed string
}

// Error implements error.
func (r *Refusal) Error() string {
	return fmt.Sprintf("%s: the message speaks for device %q but the sender is %q", r.Reason, r.Claimed, r.Principal)
}

// Refused returns the *Refusal in a done callback's err, if there is one.
func Refused(err error) (*Refusal, bool) {
	if err == nil {
		return nil, false // the common case, without the allocation errors.As's target makes
	}
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}

// identity checks the device field of every message (identity.go's part of
// the engine). Immutable: safe for concurrent use.
type identity struct {
	field  string
	maxLen int
	// pattern, when set, must match the whole id.
	pattern *regexp.Regexp
	// enforce holds the sources whose Message.Principal, when set, is the
	// sender's verified device id.
	enforce map[string]bool
}

// newIdentity compiles c, which must be valid (Config.Validate).
func newIdentity(c IdentityConfig, enforce []string) *identity {
	id := &identity{field: c.Field, maxLen: c.MaxLength, enforce: map[string]bool{}}
	if c.Pattern != "" {
		id.pattern = regexp.MustCompile(`^(?:` + c.Pattern + `)$`)
	}
	for _, s := range enforce {
		id.enforce[s] = true
	}
	return id
}

// identityFailure is what the check found wrong with a message.
type identityFailure struct {
	reason  string
	err     error
	claimed string
	// principal is who the sender is, for the headers.
	principal string
}

// check returns what is wrong with msg's device field, or nil when nothing
// is: the field is absent (a rule may key such a message by principal()),
// or the payload is not a JSON object (the rules report that). It reads the
// field through env, which has indexed the payload's top-level members
// once for the check and the rules: raw is the field's value as SELECT VALUE
// gives it, n how many top-level members have the field's name.
func (id *identity) check(env *iotsql.Env, msg *Message) *identityFailure {
	raw, n := env.FieldJSON(id.field)
	if len(raw) == 0 {
		return nil
	}
	invalid := func(format string, args ...any) *identityFailure {
		return &identityFailure{reason: ReasonInvalidDeviceID, err: fmt.Errorf("device field %q "+format, append([]any{id.field}, args...)...), claimed: string(raw)}
	}
	if n > 1 {
		// Consumers disagree on which of duplicate keys wins: storing it
		// would let a message claim one device here and another there.
		return invalid("appears %d times", n)
	}
	if raw[0] != '"' {
		return invalid("is not a string")
	}
	if len(raw) > 6*id.maxLen+2 { // longer than any escaped form of a valid id
		return invalid("is longer than %d bytes", id.maxLen)
	}
	// The common case has nothing to unescape and needs no decoder, nor a
	// copy until something is wrong.
	dev := raw[1 : len(raw)-1]
	if bytes.IndexByte(raw, '\\') >= 0 {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return invalid("is not a valid JSON string")
		}
		dev = []byte(s)
	}
	if problem := id.invalid(dev); problem != "" {
		f := invalid("%s", problem)
		f.claimed = string(dev)
		return f
	}
	if who := sender(msg); id.enforce[msg.Source] && who != "" && string(dev) != who {
		return &identityFailure{reason: ReasonIdentityMismatch, claimed: string(dev), principal: who,
			err: fmt.Errorf("device field %q is %q but the sender is %q", id.field, dev, who)}
	}
	return nil
}

// sender is the verified identity of an enforced message: its principal or,
// when the transport set none, its client id. An enforcing broker accepts a
// connection only when its client id equals its identity (username, or the
// certificate's name with mutual TLS and no username), so the client id
// stands for the principal there.
func sender(msg *Message) string {
	if msg.Principal != "" {
		return msg.Principal
	}
	return msg.ClientID
}

// invalid says what is wrong with a device id, "" when nothing: the rule
// of package ident (which the legacy decoders apply too) with
// router.identity.max_length, then router.identity.pattern.
func (id *identity) invalid(s []byte) string {
	if problem := ident.Problem(s, id.maxLen); problem != "" {
		return problem
	}
	if id.pattern != nil && !id.pattern.Match(s) {
		return "does not match router.identity.pattern"
	}
	return ""
}

// refuseInvalidIdentity runs the identity check. When the message fails it,
// every rule whose topic filter matches gets the failure (its error action
// stores the original payload, with principal and claimed_id headers) and
// no rule is applied; it then reports true. An identity_mismatch also makes
// the message's outcome a *Refusal.
func (d *delivery) refuseInvalidIdentity() bool {
	f := d.e.identity.check(d.env, d.msg)
	if f == nil {
		return false
	}
	if f.principal == "" {
		f.principal = d.msg.Principal
	}
	headers := []Header{
		{Key: "principal", Value: clip(f.principal)},
		{Key: "claimed_id", Value: clip(f.claimed)},
	}
	matched := false
	for _, r := range d.e.rules.Load().rules {
		if iotsql.MatchTopic(r.query.Filter(), d.msg.Topic) {
			matched = true
			d.mu.Lock()
			d.failures = append(d.failures, failure{rule: r, failed: "identity", reason: f.reason, err: f.err, headers: headers})
			d.mu.Unlock()
		}
	}
	if f.reason == ReasonIdentityMismatch {
		d.refusal = &Refusal{Reason: f.reason, Principal: f.principal, Claimed: f.claimed}
	}
	if !matched {
		d.e.obs.Unmatched(d.msg.Source)
	}
	// Sampled like every log line.
	d.e.log.Info("message refused: device field",
		zap.String("reason", f.reason), zap.Error(f.err), zap.String("source", d.msg.Source),
		zap.String("client_id", d.msg.ClientID), zap.String("principal", f.principal),
		zap.String("source_ip", d.msg.SourceIP), zap.String("mqtt_topic", d.msg.Topic), zap.Bool("matched_rule", matched))
	return true
}
