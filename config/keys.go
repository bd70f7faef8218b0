package config

import (
	"reflect"
	"regexp"
	"strings"
)

// Key is one configuration key, found by walking the Config structs: the
// one description of the file's shape that the environment overrides,
// `fleetgate config print` and the generated docs/configuration.md share.
type Key struct {
	// Path is the dotted key, e.g. "kafka.sasl.password".
	Path string
	// Field is the struct field behind the key; Owner the struct type that
	// declares it (for its doc comment).
	Field reflect.StructField
	Owner reflect.Type
	// Value is the key's value in the walked configuration.
	Value reflect.Value
	// Section is true for a struct-valued key (mqtt, mqtt.tls), whose keys
	// follow it; false for a leaf (a scalar, a list or a map).
	Section bool
}

// Env is the environment variable that overrides the key.
func (k Key) Env() string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(k.Path, ".", "_"))
}

// secretName matches the leaf names that hold a secret (kafka.sasl.password,
// a token, a secret key); paths to files (key_file, tokens_file) are not.
var secretName = regexp.MustCompile(`(^|_)(password|passphrase|secret|token|tokens|credentials)($|_)`)

// Secret reports whether the key holds a secret that `config print` masks:
// a field tagged secret:"true", or a leaf whose name says so (password,
// secret, token), unless it names a file.
func (k Key) Secret() bool {
	if k.Section {
		return false
	}
	if k.Field.Tag.Get("secret") == "true" {
		return true
	}
	name := k.Path[strings.LastIndex(k.Path, ".")+1:]
	return !strings.HasSuffix(name, "_file") && !strings.HasSuffix(name, "_files") && secretName.MatchString(name)
}

// Keys lists every key of c in declaration order, each section before its
// keys. The rules list (decoded apart from the other keys) is not among them.
func Keys(c *Config) []Key {
	return keysOf(reflect.ValueOf(c).Elem(), "")
}

func keysOf(v reflect.Value, prefix string) []Key {
	var keys []Key
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		k := Key{Path: prefix + tag, Field: f, Owner: t, Value: v.Field(i), Section: f.Type.Kind() == reflect.Struct}
		keys = append(keys, k)
		if k.Section {
			keys = append(keys, keysOf(v.Field(i), k.Path+".")...)
		}
	}
	return keys
}
