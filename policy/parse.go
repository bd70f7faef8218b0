package policy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is the YAML shape of a policy file (mqtt.acl_file):
//
//	groups:                  # optional: name -> member principals
//	  operators: [ops-console, "ops-*"]
//	rules:                   # in order; the first that matches decides
//	  - name: devices-uplink # optional, shown by "fleetgate acl test"
//	    principal: "*"       # exact or glob (*), or instead:
//	    group: operators     # a group of groups:
//	    action: publish      # publish, subscribe, or all
//	    topics: [report, "fleet/${clientid}/#"]
//	    effect: allow        # allow or deny
//
// Without a matching rule the answer is deny.
type File struct {
	Groups map[string][]string `yaml:"groups"`
	Rules  []RuleConfig        `yaml:"rules"`
}

// RuleConfig is one rule of a File.
type RuleConfig struct {
	Name      string   `yaml:"name"`
	Principal string   `yaml:"principal"`
	Group     string   `yaml:"group"`
	Action    string   `yaml:"action"`
	Topics    []string `yaml:"topics"`
	Effect    string   `yaml:"effect"`
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the built-in default policy's file (the one
// deploy/acl.yaml ships): devices publish report and fleet/${clientid}/#
// and subscribe to cmd/${clientid}/# and alerts/${clientid}; the operators
// group (empty until filled in) may subscribe to everything.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Default returns the compiled built-in default policy.
func Default() *Policy {
	p, err := Parse(defaultYAML)
	if err != nil {
		panic("policy: the built-in default does not compile: " + err.Error())
	}
	return p
}

// Parse compiles a policy file's content. Unknown keys are errors; every
// problem is reported, each naming its rule.
func Parse(b []byte) (*Policy, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Compile(f)
}

// Compile compiles a decoded policy file.
func Compile(f File) (*Policy, error) {
	var errs []error
	p := &Policy{groups: map[string][]glob{}}
	for name, members := range f.Groups {
		if name == "" {
			errs = append(errs, errors.New("groups: a group has an empty name"))
		}
		for _, m := range members {
			if m == "" {
				errs = append(errs, fmt.Errorf("groups.%s: an empty member", name))
			}
			p.groups[name] = append(p.groups[name], glob(m))
		}
		if _, ok := p.groups[name]; !ok {
			p.groups[name] = nil // a group with no members yet
		}
	}
	for i, rc := range f.Rules {
		r, err := compileRule(i, rc, f.Groups)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.rules = append(p.rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

func compileRule(i int, rc RuleConfig, groups map[string][]string) (rule, error) {
	where := fmt.Sprintf("rules[%d]", i)
	if rc.Name != "" {
		where += " (" + rc.Name + ")"
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(where+": "+format, args...)) }
	r := rule{name: rc.Name, principal: glob(rc.Principal), group: rc.Group}
	if r.name == "" {
		r.name = fmt.Sprintf("rules[%d]", i)
	}
	switch {
	case rc.Principal != "" && rc.Group != "":
		bad("set principal or group, not both")
	case rc.Principal == "" && rc.Group == "":
		bad(`principal or group is required (principal: "*" for every principal)`)
	case rc.Group != "":
		if _, ok := groups[rc.Group]; !ok {
			bad("group %q is not defined in groups:", rc.Group)
		}
	}
	switch strings.ToLower(rc.Action) {
	case "publish":
		r.actions = Publish
	case "subscribe":
		r.actions = Subscribe
	case "all":
		r.actions = Publish | Subscribe
	default:
		bad("action %q is not publish, subscribe or all", rc.Action)
	}
	switch strings.ToLower(rc.Effect) {
	case "allow":
		r.allow = true
	case "deny":
	default:
		bad("effect %q is not allow or deny", rc.Effect)
	}
	if len(rc.Topics) == 0 {
		bad("topics: at least one topic filter is required")
	}
	for _, t := range rc.Topics {
		f, err := parseFilter(t)
		if err != nil {
			bad("%v", err)
			continue
		}
		r.topics = append(r.topics, f)
	}
	return r, errors.Join(errs...)
}
