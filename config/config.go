// Package config loads fleetgate's YAML configuration (SPEC section 5) with
// viper: defaults from each package, the file, then FLEETGATE_* environment
// variables. It is the only package that imports viper.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/fleetgate/fleetgate/broker"
	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/telematics"
)

// Config is the whole configuration.
type Config struct {
	Log        LogConfig         `mapstructure:"log"`
	Admin      AdminConfig       `mapstructure:"admin"`
	MQTT       broker.Config     `mapstructure:"mqtt"`
	Telematics telematics.Config `mapstructure:"telematics"`
	Kafka      kafka.Config      `mapstructure:"kafka"`
	// RulesFile holds the rules in a YAML file of their own (a top-level
	// rules: list); it replaces rules: of this file.
	RulesFile string              `mapstructure:"rules_file"`
	Rules     []router.RuleConfig `mapstructure:"rules"`

	// Source is the file the configuration came from, "" for the defaults.
	Source string `mapstructure:"-"`
}

// LogConfig is log:.
type LogConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `mapstructure:"level"`
	// Format is json (default) or console.
	Format string `mapstructure:"format"`
}

// AdminConfig is admin:.
type AdminConfig struct {
	// Listen is the admin HTTP listener (/healthz, /readyz, /metrics).
	// Default "127.0.0.1:8080"; empty disables it.
	Listen string `mapstructure:"listen"`
}

// EnvPrefix prefixes the environment variables that override keys:
// kafka.brokers is FLEETGATE_KAFKA_BROKERS.
const EnvPrefix = "FLEETGATE"

const keyDelim = "::"

// Default returns the development default configuration (SPEC section 7).
func Default() *Config {
	return &Config{
		Log:        LogConfig{Level: "info", Format: "json"},
		Admin:      AdminConfig{Listen: "127.0.0.1:8080"},
		MQTT:       broker.DefaultConfig(),
		Telematics: telematics.DefaultConfig(),
		Kafka:      kafka.DefaultConfig(),
		Rules:      router.DefaultRules(),
	}
}

// Load reads the configuration from path ("" for the defaults only),
// applies FLEETGATE_* environment overrides, loads rules_file, and
// validates everything. Errors name the key at fault.
func Load(path string, env func(string) (string, bool)) (*Config, error) {
	// Keys are split on "::", not ".", so that map keys such as
	// kafka.topics.config's retention.ms stay whole.
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelim))
	v.SetConfigType("yaml")
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		err = v.ReadConfig(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
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
		return nil, fmt.Errorf("config %s: %w", orDefaults(path), cleanDecodeError(err))
	}
	cfg.Source = path
	cfg.MQTT.DeliveryTimeout = cfg.Kafka.DeliveryTimeout
	switch {
	case cfg.RulesFile != "" && v.IsSet("rules"):
		return nil, fmt.Errorf("config %s: rules and rules_file are both set; keep one", orDefaults(path))
	case cfg.RulesFile != "":
		if cfg.Rules, err = LoadRulesFile(cfg.RulesFile); err != nil {
			return nil, err
		}
	case !v.IsSet("rules"):
		cfg.Rules = router.DefaultRules()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", orDefaults(path), err)
	}
	return cfg, nil
}

// LoadRulesFile reads a rules file: a YAML document with a rules: list.
func LoadRulesFile(path string) ([]router.RuleConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules_file: %w", err)
	}
	var doc struct {
		Rules []router.RuleConfig `yaml:"rules"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("rules_file %s: %w", path, err)
	}
	return doc.Rules, nil
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
	if c.Admin.Listen != "" && !strings.Contains(c.Admin.Listen, ":") {
		errs = append(errs, fmt.Errorf("admin.listen: %q is not [host]:port", c.Admin.Listen))
	}
	if strings.HasPrefix(c.Kafka.SASL.Password, "${") {
		errs = append(errs, fmt.Errorf("kafka.sasl.password: %s is not resolved; set the environment variable %s_KAFKA_SASL_PASSWORD", c.Kafka.SASL.Password, EnvPrefix))
	}
	errs = append(errs, c.MQTT.Validate(), c.Telematics.Validate(), c.Kafka.Validate())
	if _, err := router.Compile(c.Rules); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// leafKeys lists the dotted mapstructure key paths of t's scalar, slice and
// map fields, for environment overrides.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, leafKeys(f.Type, key+".")...)
			continue
		}
		if key == "rules" {
			continue // a list of structures: not settable from one variable
		}
		keys = append(keys, key)
	}
	return keys
}

func orDefaults(path string) string {
	if path == "" {
		return "(defaults)"
	}
	return path
}

// cleanDecodeError turns mapstructure's "'kafka' has invalid keys: brokrs"
// into a sentence that names the full keys and says what to do.
func cleanDecodeError(err error) error {
	var unknown []string
	for _, m := range invalidKeys.FindAllStringSubmatch(err.Error(), -1) {
		for _, k := range strings.Split(m[2], ", ") {
			if m[1] != "" {
				k = m[1] + "." + k
			}
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return err
	}
	return fmt.Errorf("unknown key(s) %s; check the spelling against docs/configuration.md", strings.Join(unknown, ", "))
}

var invalidKeys = regexp.MustCompile(`'([^']*)' has invalid keys: ([^\n]*)`)
