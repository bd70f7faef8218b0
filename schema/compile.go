package schema

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Load reads the schemas of cfg: every <name>.json of cfg.Dir and, with a
// registry, the latest version of each subject. Every schema is compiled;
// the first that does not compile (or cannot be fetched) fails the load,
// naming the file or subject. client is used for the registry; nil means
// http.DefaultClient. cfg must be valid.
func Load(ctx context.Context, cfg Config, client *http.Client) (*Set, error) {
	set := &Set{byName: map[string]*Schema{}}
	if cfg.Dir != "" {
		if err := loadDir(set, cfg.Dir); err != nil {
			return nil, err
		}
	}
	if cfg.Registry.URL != "" {
		reg := NewRegistry(cfg.Registry, client)
		if err := loadRegistry(ctx, set, reg, cfg.Registry.Subjects); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// refuseLoader keeps $ref inside what Load was given: no network, no
// other files.
type refuseLoader struct{}

func (refuseLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("%s is not one of the loaded schemas (only schemas of schemas.dir or the registry can be referenced)", u)
}

func newCompiler() *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	// A data contract means what it says: "format": "date-time" is checked,
	// in every draft (2020-12 would otherwise only annotate).
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	return c
}

// loadDir compiles every <name>.json of dir. All files are added first, so
// that one may $ref another by its file name ("common.json#/$defs/pos").
func loadDir(set *Set, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("schemas.dir: %w", err)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return fmt.Errorf("schemas.dir: %w", err)
	}
	c := newCompiler()
	var names []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name()) // errors name the path as configured
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("schemas.dir: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("schemas.dir: %s: not JSON: %w", path, err)
		}
		if err := c.AddResource(fileURL(filepath.Join(abs, e.Name())), doc); err != nil {
			return fmt.Errorf("schemas.dir: %s: %w", path, err)
		}
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	for _, name := range names {
		path := filepath.Join(dir, name+".json")
		compiled, err := c.Compile(fileURL(filepath.Join(abs, name+".json")))
		if err != nil {
			// Name files as configured, not by the file:// URLs the
			// compiler knows them by.
			msg := strings.ReplaceAll(err.Error(), fileURL(abs), filepath.ToSlash(dir))
			return fmt.Errorf("schemas.dir: %s does not compile: %s", path, msg)
		}
		set.byName[name] = &Schema{Name: name, Source: path, compiled: compiled}
	}
	return nil
}

func fileURL(path string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
}

// loadRegistry fetches and compiles the latest version of each subject
// (every subject the registry lists when subjects is empty). Subjects
// whose schemas are not JSON Schema (Avro, Protobuf) are skipped when
// listed, refused when named.
func loadRegistry(ctx context.Context, set *Set, reg *Registry, subjects []string) error {
	named := len(subjects) > 0
	if !named {
		var err error
		if subjects, err = reg.Subjects(ctx); err != nil {
			return fmt.Errorf("schemas.registry: %w", err)
		}
	}
	slices.Sort(subjects)
	for _, subject := range slices.Compact(subjects) {
		v, err := reg.Latest(ctx, subject)
		if err != nil {
			return fmt.Errorf("schemas.registry: %w", err)
		}
		if v.SchemaType != "JSON" {
			if named {
				return fmt.Errorf("schemas.registry.subjects: %q is a %s schema, not JSON Schema", subject, v.SchemaType)
			}
			continue
		}
		if _, dup := set.byName[subject]; dup {
			return fmt.Errorf("schemas: %q is both a file of schemas.dir and a registry subject; rename one", subject)
		}
		sch, err := compileRegistered(ctx, reg, v)
		if err != nil {
			return fmt.Errorf("schemas.registry: subject %q version %d (id %d) does not compile: %w", subject, v.Version, v.ID, err)
		}
		set.byName[subject] = sch
	}
	return nil
}

// compileRegistered compiles one registered schema with the schemas it
// references (Confluent "references": name, subject, version), each added
// under its reference name so that "$ref": "<name>" finds it.
func compileRegistered(ctx context.Context, reg *Registry, v *Version) (*Schema, error) {
	c := newCompiler()
	// A hierarchical base, so that a relative "$ref": "common.json" of the
	// subject resolves to the reference added beside it.
	base := "mem://registry/"
	seen := map[string]bool{}
	var add func(refs []Reference, depth int) error
	add = func(refs []Reference, depth int) error {
		if depth > 16 {
			return errors.New("references nest more than 16 deep")
		}
		for _, r := range refs {
			if seen[r.Name] {
				continue
			}
			seen[r.Name] = true
			rv, err := reg.Version(ctx, r.Subject, r.Version)
			if err != nil {
				return fmt.Errorf("reference %q: %w", r.Name, err)
			}
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(rv.Schema))
			if err != nil {
				return fmt.Errorf("reference %q: not JSON: %w", r.Name, err)
			}
			if err := c.AddResource(refURL(base, r.Name), doc); err != nil {
				return fmt.Errorf("reference %q: %w", r.Name, err)
			}
			if err := add(rv.References, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := add(v.References, 0); err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(v.Schema))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	loc := base + url.PathEscape(v.Subject) + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	compiled, err := c.Compile(loc)
	if err != nil {
		return nil, err
	}
	return &Schema{Name: v.Subject, ID: v.ID, Version: v.Version, compiled: compiled,
		Source: fmt.Sprintf("registry subject %s version %d (id %d)", v.Subject, v.Version, v.ID)}, nil
}

// refURL is where a reference is added: an absolute name as it is, a
// relative one beside the referring schema.
func refURL(base, name string) string {
	if u, err := url.Parse(name); err == nil && u.IsAbs() {
		return name
	}
	return base + name
}
