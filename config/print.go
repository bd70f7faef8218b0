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
	v := k.Value
	if k.Secret() {
		s := ""
		if !v.IsZero() {
			s = Masked
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}, nil
	}
	n := &yaml.Node{}
	switch x := v.Interface().(type) {
	case time.Duration:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: FormatDuration(x)}, nil
	default:
		if v.Kind() == reflect.Map && v.Len() > 0 {
			// Sorted, so the output is stable.
			m := &yaml.Node{Kind: yaml.MappingNode}
			keys := v.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
			for _, mk := range keys {
				kn, vn := &yaml.Node{}, &yaml.Node{}
				if err := kn.Encode(mk.Interface()); err != nil {
					return nil, err
				}
				if err := vn.Encode(v.MapIndex(mk).Interface()); err != nil {
					return nil, err
				}
				m.Content = append(m.Content, kn, vn)
			}
			return m, nil
		}
		if err := n.Encode(x); err != nil {
			return nil, err
		}
	}
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode {
		n.Style = yaml.FlowStyle
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
