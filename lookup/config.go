package lookup

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Config is the top-level lookups: map, table name to its source.
type Config map[string]TableConfig

// TableConfig is lookups.<name>: exactly one of File or KafkaTopic.
type TableConfig struct {
	// File is a .jsonl file (one JSON object per line) or a .csv file
	// (a header row, then one row per line; every cell is a string). A
	// relative path is relative to the configuration file's directory.
	// The file is reloaded when it changes.
	File string `mapstructure:"file"`
	// Key names the member (JSONL) or column (CSV) that keys each row.
	// Required with File; not allowed with KafkaTopic (the record key is
	// the lookup key).
	Key string `mapstructure:"key"`
	// KafkaTopic is a compacted topic whose record key is the lookup key
	// and whose value is the row as a JSON object; a record with a null
	// value (a tombstone) deletes the key.
	KafkaTopic string `mapstructure:"kafka_topic"`
}

// tableName is what lookup('name', ...) may name: a SQL-friendly word.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// Validate checks the configuration; its errors name the key at fault.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	names := make([]string, 0, len(c))
	for name := range c {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t := c[name]
		key := "lookups." + name
		if !tableName.MatchString(name) {
			bad("%s: the table name must be a letter or _ then letters, digits, _ or -", key)
		}
		switch {
		case t.File == "" && t.KafkaTopic == "":
			bad("%s: give file or kafka_topic", key)
		case t.File != "" && t.KafkaTopic != "":
			bad("%s: file and kafka_topic are both set; keep one", key)
		case t.File != "":
			if _, err := formatOf(t.File); err != nil {
				bad("%s.file: %v", key, err)
			}
			if t.Key == "" {
				bad("%s.key is required with %s.file", key, key)
			}
		default:
			if t.Key != "" {
				bad("%s.key: not used with kafka_topic (the record key is the lookup key); remove it", key)
			}
			if strings.ContainsAny(t.KafkaTopic, " /\\") {
				bad("%s.kafka_topic: %q is not a topic name", key, t.KafkaTopic)
			}
		}
	}
	return errors.Join(errs...)
}

// Resolve returns c with relative file paths made relative to dir (the
// configuration file's directory).
func (c Config) Resolve(dir string) Config {
	out := make(Config, len(c))
	for name, t := range c {
		if t.File != "" && !filepath.IsAbs(t.File) && dir != "" {
			t.File = filepath.Join(dir, t.File)
		}
		out[name] = t
	}
	return out
}

// fileFormat is how a file source is parsed.
type fileFormat int

const (
	formatJSONL fileFormat = iota
	formatCSV
)

func formatOf(path string) (fileFormat, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson":
		return formatJSONL, nil
	case ".csv":
		return formatCSV, nil
	default:
		return 0, fmt.Errorf("%q: the name must end in .jsonl, .ndjson or .csv", path)
	}
}
