package policy

import "testing"

// TestDenyRuleFailsClosed: a deny rule whose variable has no safe value
// (empty, or holding /, + or #) must not be skipped, or a later allow rule
// grants what it was written to refuse; it denies everything from that
// level down instead.
func TestDenyRuleFailsClosed(t *testing.T) {
	p := mustParse(t, `
rules:
  - {principal: "*", action: subscribe, topics: ["fleet/${clientid}/private/#", "v/${cert.cn}/x"], effect: deny}
  - {principal: "*", action: subscribe, topics: ["fleet/#", "v/#"], effect: allow}
`)
	for _, c := range []struct {
		clientID, cn, topic string
		allow               bool
	}{
		{"devA", "cn", "fleet/devA/gps", true},
		{"devA", "cn", "fleet/devA/private/key", false},
		{"a/b", "cn", "fleet/a/b/private/key", false}, // was allowed: the deny rule was skipped
		{"+", "cn", "fleet/x/private/key", false},
		{"devA", "", "v//x", false}, // no certificate: ${cert.cn} is empty
		{"devA", "", "v/any/x", false},
		{"devA", "cn", "v/other/x", true},
		{"devA", "cn", "other", false},
	} {
		d := p.Decide(Request{Principal: "p", ClientID: c.clientID, CertCN: c.cn, Action: Subscribe, Topic: c.topic})
		if d.Allow != c.allow {
			t.Errorf("client %q cn %q subscribe %q: allow=%v by %s, want %v", c.clientID, c.cn, c.topic, d.Allow, d.Rule, c.allow)
		}
	}
}

// TestPublishTopicIsATopicName: a PUBLISH topic is a name, not a filter:
// one holding + or #, NUL, or empty is denied whatever the rules (mochi
// drops such a PUBLISH first; "fleetgate acl test" must say deny too).
func TestPublishTopicIsATopicName(t *testing.T) {
	p := Default()
	for _, topic := range []string{"fleet/devA/+", "fleet/devA/#", "fleet/devA/a+b", "fleet/devA/x\x00", "", "report\x00"} {
		if d := p.Decide(Request{Principal: "devA", ClientID: "devA", Action: Publish, Topic: topic}); d.Allow {
			t.Errorf("publish %q allowed by %s", topic, d.Rule)
		}
	}
	if d := p.Decide(Request{Principal: "devA", ClientID: "devA", Action: Publish, Topic: "fleet/devA/x"}); !d.Allow {
		t.Errorf("publish fleet/devA/x denied by %s", d.Rule)
	}
}
