package policy

import (
	"fmt"
	"strings"
)

// filter is one compiled topic filter of a rule: its levels, each a run of
// literal text and ${variables}, or a whole-level wildcard.
type filter struct {
	levels []level
	// static is the filter's levels when it has no variables (resolve
	// then allocates nothing); nil otherwise.
	static []string
}

// level is one level of a filter: "+" or "#" (wild), or parts.
type level struct {
	wild  string
	parts []part
}

// part is literal text, or a variable when v is not varNone.
type part struct {
	lit string
	v   variable
}

// variable is a ${...} substitution.
type variable uint8

const (
	varNone variable = iota
	varClientID
	varUsername
	varCertCN
	varPrincipal
)

// variables are the substitutions a topic filter may use.
var variables = map[string]variable{
	"clientid":  varClientID,
	"username":  varUsername,
	"cert.cn":   varCertCN,
	"principal": varPrincipal,
}

func (v variable) value(r Request) string {
	switch v {
	case varClientID:
		return r.ClientID
	case varUsername:
		return r.Username
	case varCertCN:
		return r.CertCN
	case varPrincipal:
		return r.Principal
	}
	return ""
}

// parseFilter compiles a rule's topic filter. Wildcards must fill a whole
// level and # must be last, as in MQTT; ${name} may appear anywhere in a
// level.
func parseFilter(s string) (filter, error) {
	if s == "" {
		return filter{}, fmt.Errorf("empty topic filter")
	}
	if strings.ContainsRune(s, 0) {
		return filter{}, fmt.Errorf("topic filter %q holds a NUL character", s)
	}
	raw := strings.Split(s, "/")
	f := filter{levels: make([]level, 0, len(raw))}
	for i, l := range raw {
		switch {
		case l == "+":
			f.levels = append(f.levels, level{wild: "+"})
			continue
		case l == "#":
			if i != len(raw)-1 {
				return filter{}, fmt.Errorf("topic filter %q: # must be the last level", s)
			}
			f.levels = append(f.levels, level{wild: "#"})
			continue
		case strings.ContainsAny(l, "+#"):
			return filter{}, fmt.Errorf("topic filter %q: + and # must fill a whole level", s)
		}
		parts, err := parseLevel(l)
		if err != nil {
			return filter{}, fmt.Errorf("topic filter %q: %w", s, err)
		}
		f.levels = append(f.levels, level{parts: parts})
	}
	if !strings.Contains(s, "${") {
		f.static = raw
	}
	return f, nil
}

func parseLevel(l string) ([]part, error) {
	var parts []part
	for l != "" {
		i := strings.Index(l, "${")
		if i < 0 {
			parts = append(parts, part{lit: l})
			break
		}
		if i > 0 {
			parts = append(parts, part{lit: l[:i]})
		}
		end := strings.IndexByte(l[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed ${")
		}
		name := l[i+2 : i+end]
		v, ok := variables[name]
		if !ok {
			return nil, fmt.Errorf("unknown variable ${%s}; want ${clientid}, ${username}, ${cert.cn} or ${principal}", name)
		}
		parts = append(parts, part{v: v})
		l = l[i+end+1:]
	}
	if len(parts) == 0 {
		parts = []part{{lit: ""}}
	}
	return parts, nil
}

// resolve substitutes r's values into f. A substituted value is literal
// text within one level: one that is empty or holds "/", "+", "#" or NUL
// would widen or shift the filter. Such a value fails closed: an allow
// rule's filter then matches nothing (ok false); a deny rule's (widen)
// becomes # from that level, covering every topic the value could have
// reached, so that skipping the deny never lets a later allow through.
func (f filter) resolve(r Request, widen bool) ([]string, bool) {
	if f.static != nil {
		return f.static, true
	}
	out := make([]string, len(f.levels))
	for i, l := range f.levels {
		if l.wild != "" {
			out[i] = l.wild
			continue
		}
		if len(l.parts) == 1 && l.parts[0].v == varNone {
			out[i] = l.parts[0].lit
			continue
		}
		var b strings.Builder
		for _, p := range l.parts {
			if p.v == varNone {
				b.WriteString(p.lit)
				continue
			}
			val := p.v.value(r)
			if !safeValue(val) {
				if widen {
					return append(out[:i], "#"), true
				}
				return nil, false
			}
			b.WriteString(val)
		}
		out[i] = b.String()
	}
	return out, true
}

// safeValue tells whether a substituted value stays one literal level.
func safeValue(v string) bool {
	return v != "" && !strings.ContainsAny(v, "/+#\x00")
}

// within tells whether every topic that filter req matches is matched by
// filter pol (for a topic name: whether pol matches it). Wildcards at the
// first level do not match topics beginning with "$" (MQTT 4.7.2), so
// $SYS is only reachable through a rule that names it.
func within(req, pol []string) bool {
	if dollar(req) && (pol[0] == "+" || pol[0] == "#") {
		return false
	}
	for i, p := range pol {
		if p == "#" {
			return true // also matches the parent level: a/# matches a
		}
		if i >= len(req) {
			return false
		}
		switch r := req[i]; {
		case r == "#":
			return false // req reaches levels pol does not
		case p == "+":
			// + in req is within +
		case r != p: // includes r == "+" against a literal
			return false
		}
	}
	return len(req) == len(pol)
}

// overlaps tells whether some topic is matched by both filters.
func overlaps(a, b []string) bool {
	if (dollar(a) && (b[0] == "+" || b[0] == "#")) || (dollar(b) && (a[0] == "+" || a[0] == "#")) {
		return false
	}
	for i := 0; ; i++ {
		switch {
		case i < len(a) && a[i] == "#", i < len(b) && b[i] == "#":
			return true
		case i == len(a) || i == len(b):
			return len(a) == len(b)
		case a[i] == "+" || b[i] == "+" || a[i] == b[i]:
			continue
		default:
			return false
		}
	}
}

func dollar(levels []string) bool {
	return len(levels) > 0 && strings.HasPrefix(levels[0], "$")
}
