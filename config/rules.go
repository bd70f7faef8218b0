package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fleetgate/fleetgate/router"
)

// Rules are decoded from the YAML nodes with yaml.v3, not through viper:
// viper lower-cases map keys (header names are case-sensitive) and loses
// the line numbers that rules check reports.

// rulesSource is the file the rules were read from and their rules: node,
// for the positions of errors.
type rulesSource struct {
	file *yamlFile
	seq  *yaml.Node // nil: the built-in default rule
}

// LoadRules reads and compiles the rules of the file at path: a rules file
// (standalone: a YAML document whose only key is rules:) or a configuration
// file, of which only rules: is read (the default rule when it has none).
// Every problem is reported, as an *Error with file and line.
func LoadRules(path string, standalone bool) (*router.Rules, []router.RuleConfig, error) {
	return LoadRulesWith(path, standalone, nil)
}

// LoadRulesWith is LoadRules compiling with rc (nil: the built-in
// functions, no lookup tables, no schemas).
func LoadRulesWith(path string, standalone bool, rc *router.Compiler) (*router.Rules, []router.RuleConfig, error) {
	f, err := readYAML(path)
	if err != nil {
		return nil, nil, err
	}
	return compileRulesWith(f, standalone, rc)
}

// compileRules decodes and compiles the rules of f.
func compileRules(f *yamlFile, standalone bool) (*router.Rules, []router.RuleConfig, error) {
	return compileRulesWith(f, standalone, nil)
}

// compileRulesWith decodes and compiles the rules of f with rc (nil: the
// default compiler).
func compileRulesWith(f *yamlFile, standalone bool, rc *router.Compiler) (*router.Rules, []router.RuleConfig, error) {
	cfgs, src, problems := rulesOf(f, standalone)
	if len(problems) > 0 {
		return nil, nil, &Error{Problems: problems}
	}
	if rc == nil {
		rc = router.NewCompiler(router.CompilerOptions{})
	}
	rules, err := rc.Compile(cfgs)
	if err != nil {
		return nil, nil, &Error{Problems: src.problems(err)}
	}
	return rules, cfgs, nil
}

// LoadRulesFile reads a rules file: a YAML document with a rules: list. It
// checks the keys and types but does not compile the rules (Validate does).
// Problems are an *Error with file and line.
func LoadRulesFile(path string) ([]router.RuleConfig, error) {
	f, err := readYAML(path)
	if err != nil {
		return nil, err
	}
	cfgs, _, problems := rulesOf(f, true)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return cfgs, nil
}

// rulesOf decodes the rules of f. A configuration file without rules: gets
// the default rule; a rules file without it has no rules.
func rulesOf(f *yamlFile, standalone bool) ([]router.RuleConfig, rulesSource, []Problem) {
	src := rulesSource{file: f}
	var problems []Problem
	if standalone && f.root != nil {
		for i := 0; i+1 < len(f.root.Content); i += 2 {
			if k := f.root.Content[i]; !strings.EqualFold(k.Value, "rules") {
				problems = append(problems, Problem{File: f.path, Line: k.Line, Column: k.Column,
					Msg: fmt.Sprintf("unknown key %q; a rules file holds only rules:", k.Value)})
			}
		}
	}
	n := f.get("rules")
	if n == nil {
		if standalone {
			return nil, src, problems
		}
		return router.DefaultRules(), src, problems
	}
	src.seq = deref(n)
	cfgs, more := decodeRules(f, src.seq)
	return cfgs, src, append(problems, more...)
}

// decodeRules decodes a rules: node, reporting unknown keys and values of
// the wrong type with their lines.
func decodeRules(f *yamlFile, n *yaml.Node) ([]router.RuleConfig, []Problem) {
	var problems []Problem
	if n.Kind == yaml.SequenceNode {
		for i, item := range n.Content {
			prefix := "rules[" + strconv.Itoa(i) + "]"
			if name := mapValue(deref(item), "name"); name != nil && name.Value != "" {
				prefix += " (" + name.Value + ")"
			}
			checkKeys(f, item, reflect.TypeFor[router.RuleConfig](), prefix, "", &problems)
		}
	}
	var cfgs []router.RuleConfig
	if err := n.Decode(&cfgs); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, append(problems, Problem{File: f.path, Line: n.Line, Msg: "rules: " + err.Error()})
		}
		for _, msg := range te.Errors {
			p := Problem{File: f.path, Msg: "rules: " + msg}
			if m := typeErrorLine.FindStringSubmatch(msg); m != nil {
				p.Line, _ = strconv.Atoi(m[1])
				p.Msg = "rules: " + m[2]
			}
			problems = append(problems, p)
		}
	}
	return cfgs, problems
}

var typeErrorLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// checkKeys reports the keys of mapping n that type t (a struct, through
// its yaml tags) does not have, recursing into the known ones. prefix names
// the rule, path the place inside it.
func checkKeys(f *yamlFile, n *yaml.Node, t reflect.Type, prefix, path string, problems *[]Problem) {
	n = deref(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // a type error, which Decode reports
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			name := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if name != "" && name != "-" {
				fields[name] = t.Field(i).Type
				names = append(names, name)
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				where := prefix
				if path != "" {
					where += " " + path
				}
				*problems = append(*problems, Problem{File: f.path, Line: k.Line, Column: k.Column,
					Msg: fmt.Sprintf("%s: unknown key %q (known: %s)", where, k.Value, strings.Join(names, ", "))})
				continue
			}
			checkKeys(f, n.Content[i+1], ft, prefix, join(path, k.Value), problems)
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, item := range n.Content {
				checkKeys(f, item, t.Elem(), prefix, path+"["+strconv.Itoa(i)+"]", problems)
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// problems turns router.Compile's error into Problems at the lines of the
// rules and fields at fault.
func (s rulesSource) problems(err error) []Problem {
	var out []Problem
	for _, e := range joinedErrors(err) {
		out = append(out, s.problem(e))
	}
	return out
}

func (s rulesSource) problem(err error) Problem {
	file := "(defaults)"
	if s.file != nil {
		file = s.file.path
	}
	p := Problem{File: file, Msg: err.Error()}
	var re *router.RuleError
	if s.seq == nil || !errors.As(err, &re) || s.seq.Kind != yaml.SequenceNode || re.Index >= len(s.seq.Content) {
		return p
	}
	n, key, whole := walk(s.seq.Content[re.Index], re.Field)
	if whole && n.Kind == yaml.ScalarNode {
		p.Line, p.Column = s.file.errorPosition(n, re.Err)
	} else {
		p.Line = line(n, key)
	}
	return p
}

// resolveRulesFile returns rules_file's path: as given when absolute,
// otherwise relative to the directory of the configuration file that names
// it (to the working directory for the defaults and the environment).
func resolveRulesFile(rulesFile, configPath string) string {
	if rulesFile == "" || filepath.IsAbs(rulesFile) || configPath == "" {
		return rulesFile
	}
	return filepath.Join(filepath.Dir(configPath), rulesFile)
}
