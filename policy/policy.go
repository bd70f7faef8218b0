// Package policy is fleetgate's MQTT authorization: ordered rules, in the
// manner of AWS IoT Core policies, saying which principals may publish to
// and subscribe to which topics (mqtt.acl_file). A Policy is compiled once
// from YAML and is immutable; a reload compiles a new one and the broker
// swaps it in. The package imports none of fleetgate's.
package policy

import (
	"strings"
)

// Action is what a client asks to do with a topic.
type Action uint8

// The actions a rule can name.
const (
	Publish Action = 1 << iota
	Subscribe
)

func (a Action) String() string {
	switch a {
	case Publish:
		return "publish"
	case Subscribe:
		return "subscribe"
	}
	return "publish+subscribe"
}

// Request is one question to a Policy.
type Request struct {
	// Principal is the connection's authenticated identity ("" for an
	// anonymous client).
	Principal string
	// ClientID is the MQTT client identifier (${clientid}).
	ClientID string
	// Username is the users-file username that authenticated the
	// connection (${username}); "" when the certificate did.
	Username string
	// CertCN is the verified client certificate's common name
	// (${cert.cn}); "" without one.
	CertCN string
	// Action is Publish (Topic is a topic name: PUBLISH, will, retained
	// message) or Subscribe (Topic is a topic filter; delivery of a
	// message to a subscriber asks Subscribe with the message's topic).
	Action Action
	// Topic is the topic name or filter. A shared subscription
	// ($share/GROUP/FILTER) is decided on its FILTER.
	Topic string
}

// Decision is a Policy's answer.
type Decision struct {
	Allow bool
	// Rule names the rule that decided: its name, or "rules[i]" when it
	// has none; DefaultRule when no rule matched.
	Rule string
	// Index is the deciding rule's position in rules:, -1 for the default.
	Index int
}

// DefaultRule is Decision.Rule when no rule matched.
const DefaultRule = "(default)"

// InvalidTopicRule is Decision.Rule of a request whose topic no client may
// use: empty, holding NUL, or (to publish) a wildcard. It is denied
// whatever the rules.
const InvalidTopicRule = "(invalid topic)"

// Policy is a compiled set of rules. It is immutable and safe for
// concurrent use.
type Policy struct {
	rules        []rule
	groups       map[string][]glob
	defaultAllow bool
	defaultName  string
}

// AllowAll returns the policy that allows everything: the development
// default, when authentication is off and no policy is configured.
func AllowAll() *Policy {
	return &Policy{defaultAllow: true, defaultName: "(allow all: no policy, anonymous access)"}
}

// Len returns the number of rules.
func (p *Policy) Len() int { return len(p.rules) }

// Decide answers r: the first rule whose principal, action and one of
// whose topic filters match decides; without one, the default (deny for a
// compiled policy). An allow rule matches a subscription only when every
// topic the requested filter can match is within the rule's filter; a deny
// rule matches when the two share any topic. So "deny alerts/secret"
// before "allow alerts/#" refuses a subscription to alerts/#. A request
// with an invalid topic (InvalidTopicRule) is denied before any rule.
func (p *Policy) Decide(r Request) Decision {
	if len(p.rules) == 0 {
		return p.fallback()
	}
	topic := r.Topic
	if r.Action == Subscribe {
		topic = unshare(topic)
	}
	if topic == "" || strings.ContainsRune(topic, 0) || (r.Action == Publish && strings.ContainsAny(topic, "+#")) {
		return Decision{Rule: InvalidTopicRule, Index: -1}
	}
	req := strings.Split(topic, "/")
	for i := range p.rules {
		ru := &p.rules[i]
		if ru.actions&r.Action == 0 || !p.principalMatches(ru, r.Principal) {
			continue
		}
		for _, f := range ru.topics {
			levels, ok := f.resolve(r, !ru.allow)
			if !ok {
				continue
			}
			var hit bool
			if ru.allow {
				hit = within(req, levels)
			} else {
				hit = overlaps(req, levels)
			}
			if hit {
				return Decision{Allow: ru.allow, Rule: ru.name, Index: i}
			}
		}
	}
	return p.fallback()
}

// fallback is the decision when no rule matches.
func (p *Policy) fallback() Decision {
	name := p.defaultName
	if name == "" {
		name = DefaultRule
	}
	return Decision{Allow: p.defaultAllow, Rule: name, Index: -1}
}

func (p *Policy) principalMatches(ru *rule, principal string) bool {
	if ru.group == "" {
		return ru.principal.match(principal)
	}
	for _, g := range p.groups[ru.group] {
		if g.match(principal) {
			return true
		}
	}
	return false
}

// unshare returns the filter of a shared subscription ($share/GROUP/FILTER).
func unshare(f string) string {
	rest, ok := strings.CutPrefix(f, "$share/")
	if !ok {
		return f
	}
	if _, filter, ok := strings.Cut(rest, "/"); ok {
		return filter
	}
	return f
}

// rule is one compiled rule.
type rule struct {
	name      string
	principal glob   // when group is ""
	group     string // members in Policy.groups
	actions   Action
	topics    []filter
	allow     bool
}

// glob matches a principal: exact, or with * standing for any run of
// characters (including none).
type glob string

func (g glob) match(s string) bool {
	parts := strings.Split(string(g), "*")
	if len(parts) == 1 {
		return s == string(g)
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// AllowsAll tells whether p allows every request (AllowAll).
func (p *Policy) AllowsAll() bool { return p.defaultAllow && len(p.rules) == 0 }
