package policy

import (
	"strings"
	"testing"
)

func mustParse(t *testing.T, y string) *Policy {
	t.Helper()
	p, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultPolicy(t *testing.T) {
	p := Default()
	dev := func(a Action, topic string) Request {
		return Request{Principal: "devA", ClientID: "devA", CertCN: "devA", Action: a, Topic: topic}
	}
	cases := []struct {
		req   Request
		allow bool
		rule  string
	}{
		{dev(Publish, "report"), true, "devices-uplink"},
		{dev(Publish, "fleet/devA/gps"), true, "devices-uplink"},
		{dev(Publish, "fleet/devA"), true, "devices-uplink"},
		{dev(Publish, "fleet/devB/gps"), false, DefaultRule},
		{dev(Publish, "alerts/devB"), false, DefaultRule},
		{dev(Publish, "alerts/devA"), false, DefaultRule},
		{dev(Publish, "cmd/devA/x"), false, DefaultRule},
		{dev(Publish, "$SYS/broker/x"), false, DefaultRule},
		{dev(Subscribe, "cmd/devA/#"), true, "devices-downlink"},
		{dev(Subscribe, "cmd/devA/+"), true, "devices-downlink"},
		{dev(Subscribe, "cmd/devA/reboot"), true, "devices-downlink"},
		{dev(Subscribe, "alerts/devA"), true, "devices-downlink"},
		{dev(Subscribe, "$share/g/cmd/devA/#"), true, "devices-downlink"},
		{dev(Subscribe, "#"), false, DefaultRule},
		{dev(Subscribe, "+/+"), false, DefaultRule},
		{dev(Subscribe, "+/devA"), false, DefaultRule},
		{dev(Subscribe, "$SYS/#"), false, DefaultRule},
		{dev(Subscribe, "alerts/#"), false, DefaultRule},
		{dev(Subscribe, "alerts/+"), false, DefaultRule},
		{dev(Subscribe, "cmd/#"), false, DefaultRule},
		{dev(Subscribe, "cmd/+/#"), false, DefaultRule},
		{dev(Subscribe, "report"), false, DefaultRule},
		{dev(Subscribe, "$share/g/#"), false, DefaultRule},
		{dev(Subscribe, "alerts/devB"), false, DefaultRule},
	}
	for _, c := range cases {
		t.Run(c.req.Action.String()+" "+c.req.Topic, func(t *testing.T) {
			d := p.Decide(c.req)
			if d.Allow != c.allow || d.Rule != c.rule {
				t.Fatalf("got allow=%v rule %q; want allow=%v rule %q", d.Allow, d.Rule, c.allow, c.rule)
			}
		})
	}
}

func TestGroupsAndOrder(t *testing.T) {
	p := mustParse(t, `
groups:
  operators: [ops-console, "noc-*"]
rules:
  - {name: no-secret, principal: "*", action: subscribe, topics: [alerts/secret], effect: deny}
  - {name: ops, group: operators, action: subscribe, topics: ["#"], effect: allow}
  - {name: sys, principal: ops-console, action: subscribe, topics: ["$SYS/#"], effect: allow}
`)
	cases := []struct {
		principal, topic string
		allow            bool
		rule             string
	}{
		{"ops-console", "alerts/#", false, "no-secret"}, // deny overlaps: first match wins
		{"ops-console", "alerts/x", true, "ops"},
		{"noc-7", "report", true, "ops"},
		{"noc-7", "$SYS/broker/clients", false, DefaultRule}, // # never reaches $SYS
		{"ops-console", "$SYS/#", true, "sys"},
		{"devA", "report", false, DefaultRule},
		{"nocturnal", "report", false, DefaultRule},
	}
	for _, c := range cases {
		d := p.Decide(Request{Principal: c.principal, Action: Subscribe, Topic: c.topic})
		if d.Allow != c.allow || d.Rule != c.rule {
			t.Errorf("%s subscribe %s: got allow=%v rule %q; want allow=%v rule %q", c.principal, c.topic, d.Allow, d.Rule, c.allow, c.rule)
		}
	}
}

// TestSubstitutionInjection: a substituted value is one literal level. A
// client id holding a wildcard or a level separator must not widen the
// filter it is substituted into.
func TestSubstitutionInjection(t *testing.T) {
	p := mustParse(t, `
rules:
  - {principal: "*", action: subscribe, topics: ["cmd/${clientid}/#", "v/${cert.cn}", "u/${username}"], effect: allow}
  - {principal: "*", action: publish, topics: ["fleet/${clientid}", "pre-${clientid}-post/x"], effect: allow}
`)
	cases := []struct {
		clientID, cn, user string
		action             Action
		topic              string
		allow              bool
	}{
		{"devA", "", "", Subscribe, "cmd/devA/#", true},
		{"#", "", "", Subscribe, "cmd/#", false},
		{"#", "", "", Subscribe, "cmd/#/#", false},
		{"+", "", "", Subscribe, "cmd/+/#", false},
		{"a/b", "", "", Subscribe, "cmd/a/b/#", false},
		{"", "", "", Subscribe, "cmd//#", false},
		{"devA", "", "", Publish, "fleet/devA", true},
		{"devA/x", "", "", Publish, "fleet/devA/x", false},
		{"devA", "", "", Publish, "pre-devA-post/x", true},
		{"a/b", "", "", Publish, "pre-a/b-post/x", false},
		{"x", "devA", "", Subscribe, "v/devA", true},
		{"x", "", "", Subscribe, "v/", false},
		{"x", "+", "", Subscribe, "v/+", false},
		{"x", "", "bob", Subscribe, "u/bob", true},
		{"x", "", "", Subscribe, "u/", false},
	}
	for _, c := range cases {
		d := p.Decide(Request{Principal: "p", ClientID: c.clientID, CertCN: c.cn, Username: c.user, Action: c.action, Topic: c.topic})
		if d.Allow != c.allow {
			t.Errorf("client %q cn %q user %q %s %q: allow=%v, want %v", c.clientID, c.cn, c.user, c.action, c.topic, d.Allow, c.allow)
		}
	}
}

func TestWithinAndOverlaps(t *testing.T) {
	cases := []struct {
		req, pol        string
		within, overlap bool
	}{
		{"a/b", "a/b", true, true},
		{"a/b", "a/+", true, true},
		{"a/+", "a/b", false, true},
		{"a/#", "a/b", false, true},
		{"a", "a/#", true, true},
		{"a/b/c", "a/#", true, true},
		{"#", "a/#", false, true},
		{"+/+", "a/b", false, true},
		{"+/+", "a/b/c", false, false},
		{"a/b", "c/d", false, false},
		{"a/b/c", "a/b", false, false},
		{"a/b", "a/b/c", false, false},
		{"$SYS/x", "#", false, false},
		{"$SYS/x", "+/x", false, false},
		{"#", "$SYS/#", false, false},
		{"$SYS/#", "$SYS/#", true, true},
		{"a/+/c", "a/+/+", true, true},
		{"a/+/c", "+/b/#", false, true},
	}
	for _, c := range cases {
		req, pol := strings.Split(c.req, "/"), strings.Split(c.pol, "/")
		if got := within(req, pol); got != c.within {
			t.Errorf("within(%s, %s) = %v", c.req, c.pol, got)
		}
		if got := overlaps(req, pol); got != c.overlap {
			t.Errorf("overlaps(%s, %s) = %v", c.req, c.pol, got)
		}
		if got := overlaps(pol, req); got != c.overlap {
			t.Errorf("overlaps(%s, %s) = %v (not symmetric)", c.pol, c.req, got)
		}
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		g, s string
		ok   bool
	}{
		{"devA", "devA", true}, {"devA", "devAB", false}, {"*", "", true}, {"*", "x", true},
		{"dev*", "dev", true}, {"dev*", "devA", true}, {"dev*", "de", false},
		{"*-ops", "noc-ops", true}, {"*-ops", "noc-opsx", false},
		{"a*b*c", "abc", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "acb", false}, {"a*a", "a", false},
	}
	for _, c := range cases {
		if got := glob(c.g).match(c.s); got != c.ok {
			t.Errorf("glob %q match %q = %v", c.g, c.s, got)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for name, y := range map[string]string{
		"unknown key":       "rules: [{principal: a, action: publish, topics: [x], effect: allow, colour: red}]",
		"no principal":      "rules: [{action: publish, topics: [x], effect: allow}]",
		"both":              "groups: {g: []}\nrules: [{principal: a, group: g, action: publish, topics: [x], effect: allow}]",
		"undefined group":   "rules: [{group: g, action: publish, topics: [x], effect: allow}]",
		"bad action":        "rules: [{principal: a, action: read, topics: [x], effect: allow}]",
		"bad effect":        "rules: [{principal: a, action: publish, topics: [x], effect: maybe}]",
		"no topics":         "rules: [{principal: a, action: publish, effect: allow}]",
		"hash not last":     "rules: [{principal: a, action: publish, topics: [a/#/b], effect: allow}]",
		"partial wildcard":  "rules: [{principal: a, action: publish, topics: [a+], effect: allow}]",
		"unknown variable":  "rules: [{principal: a, action: publish, topics: [\"a/${iot:thing}\"], effect: allow}]",
		"unclosed variable": "rules: [{principal: a, action: publish, topics: [\"a/${clientid\"], effect: allow}]",
		"not yaml":          "rules: [",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(y)); err == nil {
				t.Fatalf("accepted %q", y)
			}
		})
	}
	if p, err := Parse(nil); err != nil || p.Decide(Request{Principal: "a", Action: Publish, Topic: "x"}).Allow {
		t.Fatalf("an empty policy must compile and deny: %v", err)
	}
}

func TestAllowAll(t *testing.T) {
	d := AllowAll().Decide(Request{Action: Subscribe, Topic: "#"})
	if !d.Allow || d.Index != -1 {
		t.Fatalf("%+v", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte("rules: [{principal: \"a*\", action: all, topics: [\"x/${clientid}-${cert.cn}/+/#\"], effect: deny}]"))
	f.Add([]byte("groups: {g: [\"*\"]}\nrules: [{group: g, action: subscribe, topics: [\"$SYS/#\"], effect: allow}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		for _, topic := range []string{"#", "a/b", "$SYS/x", "+/+", "", "a//b", "$share/g/#"} {
			for _, a := range []Action{Publish, Subscribe} {
				d := p.Decide(Request{Principal: "p", ClientID: "c/+#", Action: a, Topic: topic})
				if d.Allow && d.Index < 0 {
					t.Fatalf("a compiled policy allowed %s %q by default", a, topic)
				}
			}
		}
	})
}

func BenchmarkDecide(b *testing.B) {
	p := Default()
	r := Request{Principal: "devA", ClientID: "devA", Action: Publish, Topic: "fleet/devA/gps"}
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(r)
	}
}
