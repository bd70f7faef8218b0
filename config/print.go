package config

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Masked replaces the value of a secret key in Print's output.
const Masked = "********"

// Print writes c as the YAML file that would configure it (every key, with
// the defaults, the file and the environment applied), secrets masked: a
// set secret prints as Masked, an unset one as "". Inline rules are printed
// too; rules from rules_file are not (the file is named).
func Print(w io.Writer, c *Config) error {
	root := &yaml.Node{Kind: yaml.MappingNode}
	sections := map[string]*yaml.Node{"": root}
	for _, k := range Keys(c) {
		parent := sections[parentPath(k.Path)]
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: k.Path[strings.LastIndex(k.Path, ".")+1:]}
		if k.Section {
			n := &yaml.Node{Kind: yaml.MappingNode}
			sections[k.Path] = n
			parent.Content = append(parent.Content, key, n)
			continue
		}
		val, err := valueNode(k)
		if err != nil {
			return fmt.Errorf("config print %s: %w", k.Path, err)
		}
		parent.Content = append(parent.Content, key, val)
	}
	source := c.Source
	if source == "" {
		source = "no file"
	}
	root.HeadComment = fmt.Sprintf("fleetgate effective configuration: defaults, %s, %s_* environment; secrets masked", source, EnvPrefix)
	if c.RulesFile == "" {
		rules := &yaml.Node{}
		if err := rules.Encode(c.Rules); err != nil {
			return fmt.Errorf("config print rules: %w", err)
		}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "rules"}, rules)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return err
	}
	return enc.Close()
}

func parentPath(p string) string {
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

// valueNode is the YAML of one leaf, masked if it is a secret.
func valueNode(k Key) (*yaml.Node, error) {
	if k.Secret() {
		return masked(k.Value), nil
	}
	return node(k.Value)
}

// masked is Masked for a set value, "" for an unset one.
func masked(v reflect.Value) *yaml.Node {
	s := ""
	if !v.IsZero() {
		s = Masked
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// node is the YAML of any configuration value: structs by their
// mapstructure keys (so that a list of structures prints as the file would
// write it), with secret-named fields masked; durations as people write
// them; maps sorted.
func node(v reflect.Value) (*yaml.Node, error) {
	if d, ok := v.Interface().(time.Duration); ok {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: FormatDuration(d)}, nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		return node(v.Elem())
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range keysOf(v, "") {
			if strings.Contains(k.Path, ".") {
				continue // a nested struct's keys are under it
			}
			var val *yaml.Node
			var err error
			if k.Secret() {
				val = masked(k.Value)
			} else if val, err = node(k.Value); err != nil {
				return nil, err
			}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k.Path}, val)
		}
		return m, nil
	case reflect.Slice, reflect.Array:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			n, err := node(v.Index(i))
			if err != nil {
				return nil, err
			}
			if n.Kind != yaml.ScalarNode {
				seq.Style = 0
			}
			seq.Content = append(seq.Content, n)
		}
		return seq, nil
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for _, mk := range keys {
			kn, err := node(mk)
			if err != nil {
				return nil, err
			}
			vn, err := node(v.MapIndex(mk))
			if err != nil {
				return nil, err
			}
			if vn.Kind != yaml.ScalarNode {
				m.Style = 0
			}
			m.Content = append(m.Content, kn, vn)
		}
		return m, nil
	}
	n := &yaml.Node{}
	if err := n.Encode(v.Interface()); err != nil {
		return nil, err
	}
	return n, nil
}

// FormatDuration writes d as an operator would: 30s, 2m, 1h30m, 500ms
// (time.Duration's String gives 2m0s).
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if d == 0 {
		return "0s"
	}
	return s
}
