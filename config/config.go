// Package config loads fleetgate's YAML configuration (SPEC section 5) with
// viper: defaults from each package, the file, then FLEETGATE_* environment
// variables. It is the only package that imports viper.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/fleetgate/fleetgate/admin"
	"github.com/fleetgate/fleetgate/broker"
	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/limits"
	"github.com/fleetgate/fleetgate/lookup"
	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/schema"
	"github.com/fleetgate/fleetgate/telematics"
)

// Config is the whole configuration.
type Config struct {
	// Log says what the gateway logs and how.
	Log LogConfig `mapstructure:"log"`
	// Admin is the operations HTTP listener: /metrics, /healthz, /readyz
	// (docs/operations.md).
	Admin admin.Config `mapstructure:"admin"`
	// Limits bounds how much memory messages in flight may hold, all inputs
	// together. A message is in flight from the moment it is read until the
	// Kafka producer is done with it (stored or failed), even after its
	// terminal was told it failed. docs/operations.md ("Back-pressure") says
	// what terminals see at the bound and how to size these; the
	// per-connection bound is mqtt.max_inflight.
	Limits limits.Config `mapstructure:"limits"`
	// MQTT is the embedded MQTT broker (3.1.1 and 5).
	MQTT broker.Config `mapstructure:"mqtt"`
	// Telematics is the legacy HTTPS endpoint (/log, /boot), TLS always.
	Telematics telematics.Config `mapstructure:"telematics"`
	// Kafka is the producer, the brokers it writes to and the topics it
	// checks at start.
	Kafka kafka.Config `mapstructure:"kafka"`
	// Router is router.*: the engine's device identity (anti-spoofing) and
	// foreach checks.
	Router router.Config `mapstructure:"router"`
	// RulesFile holds the rules in a YAML file of their own (a top-level
	// rules: list) instead of inline rules (not both). A relative path is
	// relative to the configuration file's directory; Load stores the
	// resolved path.
	RulesFile string `mapstructure:"rules_file"`
	// Rules are the rules, inline (decoded from the YAML by rules.go, not by
	// viper). They are reloaded when their file changes (or on SIGHUP); a
	// reload that fails validation keeps the previous rules and is counted
	// in fleetgate_rule_reloads_total.
	Rules []router.RuleConfig `mapstructure:"-"`
	// Lookups are the tables rules read with lookup('name', key): in-memory
	// snapshots of a file or a compacted Kafka topic (docs/rules.md).
	Lookups lookup.Config `mapstructure:"lookups"`
	// Schemas are the JSON Schemas kafka actions validate records with
	// (schema:), from a directory and/or a Confluent-compatible Schema
	// Registry, loaded with the rules (docs/rules.md).
	Schemas schema.Config `mapstructure:"schemas"`

	// Source is the file the configuration came from, "" for the defaults.
	Source string `mapstructure:"-"`
}

// LogConfig is log:.
type LogConfig struct {
	// Level is debug, info (default), warn or error. Connection events are
	// logged at debug (they are counted in the metrics at every level).
	Level string `mapstructure:"level"`
	// Format is json (default; one object a line, for log pipelines) or
	// console (for people).
	Format string `mapstructure:"format"`
}

// EnvPrefix prefixes the environment variables that override keys:
// kafka.brokers is FLEETGATE_KAFKA_BROKERS.
const EnvPrefix = "FLEETGATE"

const keyDelim = "::"

// Default returns the development default configuration (SPEC section 7).
func Default() *Config {
	return &Config{
		Log:        LogConfig{Level: "info", Format: "json"},
		Admin:      admin.DefaultConfig(),
		Limits:     limits.DefaultConfig(),
		MQTT:       broker.DefaultConfig(),
		Telematics: telematics.DefaultConfig(),
		Kafka:      kafka.DefaultConfig(),
		Router:     router.DefaultConfig(),
		Rules:      router.DefaultRules(),
		Lookups:    lookup.Config{},
		Schemas:    schema.DefaultConfig(),
	}
}

// Load reads the configuration from path ("" for the defaults only),
// applies FLEETGATE_* environment overrides, loads rules_file, and
// validates everything. Errors name the key at fault; they are an *Error
// listing every problem with its file and line ("file:line: message").
func Load(path string, env func(string) (string, bool)) (*Config, error) {
	// Keys are split on "::", not ".", so that map keys such as
	// kafka.topics.config's retention.ms stay whole.
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelim))
	file := &yamlFile{path: orDefaults(path)}
	if path != "" {
		var err error
		if file, err = readYAML(path); err != nil {
			return nil, err
		}
		settings := map[string]any{}
		if file.root != nil {
			if err := file.root.Decode(&settings); err != nil {
				return nil, &Error{Problems: []Problem{file.problem(err.Error())}}
			}
		}
		for k := range settings {
			if strings.EqualFold(k, "rules") {
				delete(settings, k) // decoded by rulesOf
			}
		}
		if err := v.MergeConfigMap(settings); err != nil {
			return nil, &Error{Problems: []Problem{file.problem(err.Error())}}
		}
	}
	cfg := Default()
	cfg.Rules = nil // decoded below, or defaulted when absent
	for _, key := range leafKeys(reflect.TypeOf(*cfg), "") {
		name := EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		if val, ok := env(name); ok {
			v.Set(strings.ReplaceAll(key, ".", keyDelim), val)
		}
	}
	err := v.UnmarshalExact(cfg, func(dc *mapstructure.DecoderConfig) {
		// A list or map in the file replaces the default rather than
		// merging into it element by element.
		dc.ZeroFields = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		return nil, &Error{Problems: decodeProblems(file, err)}
	}
	cfg.Source = path
	cfg.MQTT.DeliveryTimeout = cfg.Kafka.DeliveryTimeout
	if path != "" {
		cfg.Lookups = cfg.Lookups.Resolve(filepath.Dir(path))
		cfg.Schemas = cfg.Schemas.Resolve(filepath.Dir(path))
	}
	var src rulesSource
	var problems []Problem
	cfg.RulesFile = resolveRulesFile(cfg.RulesFile, path)
	// The MQTT users and policy files too are relative to this file.
	cfg.MQTT.Auth.UsersFile = resolveRulesFile(cfg.MQTT.Auth.UsersFile, path)
	cfg.MQTT.ACLFile = resolveRulesFile(cfg.MQTT.ACLFile, path)
	switch {
	case cfg.RulesFile != "" && file.get("rules") != nil:
		k, _ := file.entry("rules")
		return nil, &Error{Problems: []Problem{{File: file.path, Line: k.Line,
			Msg: "rules and rules_file are both set; keep one"}}}
	case cfg.RulesFile != "":
		if _, err := os.Stat(cfg.RulesFile); err != nil {
			p := file.problem("rules_file: " + err.Error())
			if k, _ := file.entry("rules_file"); k != nil {
				p.Line = k.Line
			}
			return nil, &Error{Problems: []Problem{p}}
		}
		rf, err := readYAML(cfg.RulesFile)
		if err != nil {
			return nil, err
		}
		cfg.Rules, src, problems = rulesOf(rf, true)
	default:
		cfg.Rules, src, problems = rulesOf(file, false)
	}
	// Rules with unknown keys still compile: report both kinds at once.
	for _, err := range joinedErrors(cfg.Validate()) {
		var re *router.RuleError
		if errors.As(err, &re) {
			problems = append(problems, src.problem(err))
		} else {
			problems = append(problems, file.problem(err.Error()))
		}
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return cfg, nil
}

// Validate checks every section.
func (c *Config) Validate() error {
	var errs []error
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not json or console", c.Log.Format))
	}
	errs = append(errs, c.Admin.Validate(), c.Limits.Validate())
	// The largest single message or request must fit the budget, or it
	// would hold all of it alone.
	if b := c.Limits.MaxInflightBytes; b < int64(c.MQTT.MaxPacketBytes) || b < c.Telematics.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("limits.max_inflight_bytes: %d is below mqtt.max_packet_bytes (%d) or telematics.max_body_bytes (%d)",
			b, c.MQTT.MaxPacketBytes, c.Telematics.MaxBodyBytes))
	}
	// The broker drops older queued messages to make room, never the new
	// one: the largest message must fit alone.
	if b := c.Limits.MaxQueuedBytes; b < int64(c.MQTT.MaxPacketBytes) {
		errs = append(errs, fmt.Errorf("limits.max_queued_bytes: %d is below mqtt.max_packet_bytes (%d)", b, c.MQTT.MaxPacketBytes))
	}
	if strings.HasPrefix(c.Kafka.SASL.Password, "${") {
		errs = append(errs, fmt.Errorf("kafka.sasl.password: %s is not resolved; set the environment variable %s_KAFKA_SASL_PASSWORD", c.Kafka.SASL.Password, EnvPrefix))
	}
	errs = append(errs, c.MQTT.Validate(), c.Telematics.Validate(), c.Kafka.Validate())
	errs = append(errs, c.Router.Validate(), c.Lookups.Validate(), c.Schemas.Validate())
	if _, err := c.checkCompiler().Compile(c.Rules); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// leafKeys lists the dotted mapstructure key paths of t's scalar, slice and
// map fields, for environment overrides.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for _, k := range keysOf(reflect.New(t).Elem(), prefix) {
		if !k.Section {
			keys = append(keys, k.Path)
		}
	}
	return keys
}

func orDefaults(path string) string {
	if path == "" {
		return "(defaults)"
	}
	return path
}

// decodeProblems turns mapstructure's "'kafka' has invalid keys: brokrs"
// into one problem per unknown key, at its line, saying what to do.
func decodeProblems(file *yamlFile, err error) []Problem {
	var problems []Problem
	for _, m := range invalidKeys.FindAllStringSubmatch(err.Error(), -1) {
		for _, k := range strings.Split(m[2], ", ") {
			if m[1] != "" {
				k = m[1] + "." + k
			}
			// A map entry ("lookups[vehicles]") is named as its YAML key path.
			k = mapKey.ReplaceAllString(k, ".$1")
			p := file.problem(fmt.Sprintf("unknown key %s; check the spelling against docs/configuration.md", k))
			if file.root != nil {
				if n, key, whole := walk(file.root, k); whole {
					p.Line = line(n, key)
				}
			}
			problems = append(problems, p)
		}
	}
	if len(problems) == 0 {
		problems = append(problems, file.problem(err.Error()))
	}
	slices.SortStableFunc(problems, func(a, b Problem) int { return a.Line - b.Line })
	return problems
}

var mapKey = regexp.MustCompile(`\[([^\]0-9][^\]]*)\]`)

var invalidKeys = regexp.MustCompile(`'([^']*)' has invalid keys: ([^\n]*)`)
