package policy

import (
	"strings"
	"testing"
)

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

// FuzzDecide: for any client id and topic, the default policy never
// panics, never allows a wildcard, NUL or empty PUBLISH topic, and allows a
// subscription only within the device's own cmd/ and alerts/ topics.
func FuzzDecide(f *testing.F) {
	for _, s := range [][2]string{{"D1", "cmd/D1/#"}, {"+", "cmd/+/#"}, {"a/b", "cmd/a/b"}, {"D1", "$share/g/cmd/D1/x"}, {"", "#"}, {"D1", "cmd//#"}} {
		f.Add(s[0], s[1])
	}
	p := Default()
	f.Fuzz(func(t *testing.T, id, topic string) {
		r := Request{Principal: id, ClientID: id, Action: Publish, Topic: topic}
		if d := p.Decide(r); d.Allow && (topic == "" || strings.ContainsAny(topic, "+#\x00")) {
			t.Fatalf("publish %q allowed for %q by %s", topic, id, d.Rule)
		}
		r.Action = Subscribe
		if d := p.Decide(r); d.Allow {
			f := unshare(topic)
			own := f == "alerts/"+id || f == "cmd/"+id || strings.HasPrefix(f, "cmd/"+id+"/")
			if !own || strings.ContainsAny(id, "/+#\x00") || id == "" {
				t.Fatalf("subscribe %q allowed for %q by %s", topic, id, d.Rule)
			}
		}
	})
}
