package iotsql

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// Regular expression functions of the AWS IoT SQL reference. AWS uses Java's
// java.util.regex; fleetgate uses Go's RE2 syntax, which is the same for
// the common constructs (classes, quantifiers, groups, alternation, (?i))
// and lacks back-references and look-around. Matching time is linear in the
// input whatever the pattern. A pattern written as a literal is compiled
// once with the rule, and one RE2 cannot compile is a rule error; a pattern
// computed per message is compiled then and cached per call (at most
// regexpCacheSize patterns, each at most maxRegexpLen bytes), and an invalid
// or too long one gives Undefined.

func regexpFuncs() []*funcDef {
	return []*funcDef{
		{name: "regexp_matches", minArgs: 2, maxArgs: 2, call: fnRegexpMatches, check: checkRegexp},
		{name: "regexp_replace", minArgs: 3, maxArgs: 3, call: fnRegexpReplace, check: checkRegexp},
		{name: "regexp_substr", minArgs: 2, maxArgs: 2, call: fnRegexpSubstr, check: checkRegexp},
	}
}

const (
	maxRegexpLen    = 1024
	regexpCacheSize = 64
)

// regexpCache holds the patterns one call site compiled at run time.
type regexpCache struct {
	m sync.Map // pattern -> *regexp.Regexp
	n atomic.Int32
}

func (rc *regexpCache) get(pattern string) *regexp.Regexp {
	if re, ok := rc.m.Load(pattern); ok {
		return re.(*regexp.Regexp)
	}
	if len(pattern) > maxRegexpLen {
		return nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil
	}
	if rc.n.Load() < regexpCacheSize {
		if _, loaded := rc.m.LoadOrStore(pattern, re); !loaded {
			rc.n.Add(1)
		}
	}
	return re
}

// checkRegexp compiles a literal pattern (argument 1) at parse time. A
// literal number or Boolean is converted to a String first, as AWS converts
// a pattern that is not a String; a literal null is left to run time, where
// it gives Undefined.
func checkRegexp(c *callExpr) (int, string) {
	l, lit := c.args[1].(*litExpr)
	s, conv := "", false
	if lit {
		s, conv = toStr(l.v)
	}
	if !conv {
		c.reCache = &regexpCache{}
		return 0, ""
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return 1, c.fn.name + ": " + err.Error()
	}
	c.re = re
	if c.fn.name == "regexp_replace" {
		if l, ok := c.args[2].(*litExpr); ok {
			repl, _ := toStr(l.v)
			// A literal replacement's group references are checked
			// against the pattern once, here.
			m := make([]int, 2*(re.NumSubexp()+1))
			for i := range m {
				m[i] = -1
			}
			var b strings.Builder
			if !appendJavaReplacement(&b, re, "", m, repl) {
				return 2, "regexp_replace: the replacement refers to a group the pattern does not have, or ends in $ or \\"
			}
		}
	}
	return 0, ""
}

// regexpArgs evaluates the subject and the pattern, both converted to
// Strings by the standard conversions (AWS's tables: an Array or Object
// gives its JSON, Null or Undefined gives Undefined).
func regexpArgs(env *Env, c *callExpr) (string, *regexp.Regexp, bool, error) {
	v, err := c.args[0].eval(env)
	if err != nil {
		return "", nil, false, err
	}
	re := c.re
	if re == nil {
		p, err := c.args[1].eval(env)
		if err != nil {
			return "", nil, false, err
		}
		ps, ok := toStr(p)
		if !ok {
			return "", nil, false, nil
		}
		if re = c.reCache.get(ps); re == nil {
			return "", nil, false, nil
		}
	}
	s, ok := toStr(v)
	return s, re, ok, nil
}

// regexp_matches(s, pattern) is true when s contains a match of pattern.
func fnRegexpMatches(env *Env, c *callExpr) (any, error) {
	s, re, ok, err := regexpArgs(env, c)
	if err != nil || !ok {
		return undef, err
	}
	return re.MatchString(s), nil
}

// regexp_substr(s, pattern) is the first match of pattern in s, or the
// empty String when there is none [fleetgate: AWS documents no result for
// that case].
func fnRegexpSubstr(env *Env, c *callExpr) (any, error) {
	s, re, ok, err := regexpArgs(env, c)
	if err != nil || !ok {
		return undef, err
	}
	loc := re.FindStringIndex(s)
	if loc == nil {
		return "", nil
	}
	return s[loc[0]:loc[1]], nil
}

// regexp_replace(s, pattern, replacement) replaces every match of pattern in
// s. The replacement follows Java's Matcher.replaceAll: $n and ${name} are
// groups, a backslash takes the next character literally; a reference to a
// group that does not exist gives Undefined.
func fnRegexpReplace(env *Env, c *callExpr) (any, error) {
	s, re, ok, err := regexpArgs(env, c)
	if err != nil || !ok {
		return undef, err
	}
	repl, ok, err := strArg(env, c, 2)
	if err != nil || !ok {
		return undef, err
	}
	matches := re.FindAllStringSubmatchIndex(s, -1)
	if matches == nil {
		return s, nil
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		b.WriteString(s[last:m[0]])
		if !appendJavaReplacement(&b, re, s, m, repl) {
			return undef, nil
		}
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

// appendJavaReplacement writes repl for match m of re in s, expanding group
// references as java.util.regex.Matcher does; false for an invalid one.
func appendJavaReplacement(b *strings.Builder, re *regexp.Regexp, s string, m []int, repl string) bool {
	group := func(n int) {
		if m[2*n] >= 0 {
			b.WriteString(s[m[2*n]:m[2*n+1]])
		}
	}
	for i := 0; i < len(repl); i++ {
		switch ch := repl[i]; ch {
		case '\\':
			i++
			if i == len(repl) {
				return false // Java: character to be escaped is missing
			}
			b.WriteByte(repl[i])
		case '$':
			i++
			if i == len(repl) {
				return false
			}
			if repl[i] == '{' {
				end := strings.IndexByte(repl[i:], '}')
				if end < 0 {
					return false
				}
				n := re.SubexpIndex(repl[i+1 : i+end])
				if n < 0 {
					return false
				}
				group(n)
				i += end
				continue
			}
			if repl[i] < '0' || repl[i] > '9' {
				return false
			}
			// Java takes the first digit, then more while the number
			// stays a group of the pattern.
			n := int(repl[i] - '0')
			if n > re.NumSubexp() {
				return false
			}
			for i+1 < len(repl) && repl[i+1] >= '0' && repl[i+1] <= '9' {
				next := n*10 + int(repl[i+1]-'0')
				if next > re.NumSubexp() {
					break
				}
				n = next
				i++
			}
			group(n)
		default:
			b.WriteByte(ch)
		}
	}
	return true
}
