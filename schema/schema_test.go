package schema_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/schema"
)

// logSchema is the worked example's schema (docs/rules.md), draft 2020-12.
const logSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["device_no", "ts", "level"],
  "properties": {
    "device_no": {"type": "string", "pattern": "^[0-9]{15}$"},
    "ts": {"type": "string", "format": "date-time"},
    "level": {"enum": ["debug", "info", "warn", "error"]},
    "pos": {"$ref": "common.json#/$defs/pos"},
    "a/b~c": {"type": "integer", "minimum": 0}
  }
}`

// common is referenced by log, in draft 7.
const common = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$defs": {"pos": {"type": "object", "required": ["lat"], "properties": {
    "lat": {"type": "number", "minimum": -90, "maximum": 90}}, "additionalProperties": false}}
}`

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadDir(t *testing.T, files map[string]string) (*schema.Set, error) {
	t.Helper()
	return schema.Load(t.Context(), schema.Config{Dir: writeDir(t, files)}, nil)
}

func TestValidate(t *testing.T) {
	set, err := loadDir(t, map[string]string{"log.json": logSchema, "common.json": common, "README.md": "not a schema"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Names(), ","); got != "common,log" {
		t.Fatalf("names = %s", got)
	}
	log, _ := set.Get("log")
	for _, tc := range []struct {
		name, record     string
		pointer, keyword string
	}{
		{"valid", `{"device_no":"861234567890123","ts":"2026-12-01T08:00:00Z","level":"info","pos":{"lat":52.5},"a/b~c":3}`, "", ""},
		{"not an object", `[1]`, "", "type"},
		{"missing member", `{"device_no":"861234567890123","level":"info"}`, "", "required"},
		{"pattern", `{"device_no":"86x","ts":"2026-12-01T08:00:00Z","level":"info"}`, "/device_no", "pattern"},
		{"format", `{"device_no":"861234567890123","ts":"yesterday","level":"info"}`, "/ts", "format"},
		{"enum", `{"device_no":"861234567890123","ts":"2026-12-01T08:00:00Z","level":"loud"}`, "/level", "enum"},
		{"draft 7 ref: maximum", `{"device_no":"861234567890123","ts":"2026-12-01T08:00:00Z","level":"info","pos":{"lat":91}}`, "/pos/lat", "maximum"},
		{"draft 7 ref: additionalProperties", `{"device_no":"861234567890123","ts":"2026-12-01T08:00:00Z","level":"info","pos":{"lat":1,"lon":2}}`, "/pos", "additionalProperties"},
		{"escaped pointer", `{"device_no":"861234567890123","ts":"2026-12-01T08:00:00Z","level":"info","a/b~c":-1}`, "/a~1b~0c", "minimum"},
		{"not JSON", `{"device_no":`, "", "json"},
		{"trailing data", `{} {}`, "", "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := log.Validate([]byte(tc.record))
			if tc.keyword == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			var ve *schema.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if ve.Pointer != tc.pointer || ve.Keyword != tc.keyword || ve.Schema != "log" || ve.Message == "" {
				t.Fatalf("Validate = %+v, want pointer %q keyword %q", ve, tc.pointer, tc.keyword)
			}
		})
	}
}

func TestLoadDirErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"not JSON", map[string]string{"log.json": `{"type":`}, "log.json: not JSON"},
		{"bad keyword value", map[string]string{"log.json": `{"type": "objekt"}`}, "log.json does not compile"},
		{"bad pattern", map[string]string{"log.json": `{"pattern": "("}`}, "log.json does not compile"},
		{"missing ref", map[string]string{"log.json": `{"$ref": "other.json"}`}, "is not one of the loaded schemas"},
		{"no network", map[string]string{"log.json": `{"$ref": "http://127.0.0.1:1/x.json"}`}, "is not one of the loaded schemas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadDir(t, tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "schemas.dir: ") {
				t.Fatalf("Load = %v, want %q", err, tc.want)
			}
		})
	}
	_, err := schema.Load(t.Context(), schema.Config{Dir: filepath.Join(t.TempDir(), "none")}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "schemas.dir: ") {
		t.Fatalf("Load of a missing dir = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := schema.DefaultConfig()
	for _, tc := range []struct {
		name string
		edit func(*schema.Config)
		want string
	}{
		{"default", func(*schema.Config) {}, ""},
		{"ok", func(c *schema.Config) { c.Dir = "s"; c.Registry.URL = "https://r:8081"; c.Registry.BearerToken = "t" }, ""},
		{"bad url", func(c *schema.Config) { c.Registry.URL = "r:8081" }, "schemas.registry.url: "},
		{"credentials in the url", func(c *schema.Config) { c.Registry.URL = "https://u:p@r:8081" }, "not in the URL"},
		{"both auths", func(c *schema.Config) {
			c.Registry.URL = "http://r"
			c.Registry.Username = "u"
			c.Registry.BearerToken = "t"
		}, "schemas.registry.bearer_token and schemas.registry.username/password are both set"},
		{"password alone", func(c *schema.Config) { c.Registry.URL = "http://r"; c.Registry.Password = "p" }, "schemas.registry.password needs"},
		{"auth without url", func(c *schema.Config) { c.Registry.Username = "u" }, "schemas.registry.url is required"},
		{"timeout", func(c *schema.Config) { c.Registry.URL = "http://r"; c.Registry.Timeout = 0 }, "schemas.registry.timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFrame(t *testing.T) {
	b := schema.Frame(nil, 0x01020304, []byte(`{"a":1}`))
	if want := "\x00\x01\x02\x03\x04{\"a\":1}"; string(b) != want {
		t.Fatalf("Frame = %q, want %q", b, want)
	}
	id, payload, err := schema.Unframe(b)
	if err != nil || id != 0x01020304 || string(payload) != `{"a":1}` {
		t.Fatalf("Unframe = %d %q %v", id, payload, err)
	}
	for _, bad := range []string{"", "\x00\x00\x00\x01", "\x01\x00\x00\x00\x01{}"} {
		if _, _, err := schema.Unframe([]byte(bad)); err == nil {
			t.Errorf("Unframe(%q) accepted", bad)
		}
	}
}

func FuzzUnframe(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x00\x07{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, payload, err := schema.Unframe(b)
		if err != nil {
			return
		}
		if again := schema.Frame(nil, id, payload); string(again) != string(b) {
			t.Fatalf("Frame(Unframe(%q)) = %q", b, again)
		}
	})
}

// FuzzValidate: records are outside input. Validating one must not panic,
// must give the same answer twice, and a refusal must carry a keyword and
// a JSON pointer.
func FuzzValidate(f *testing.F) {
	dir := writeDirF(f, map[string]string{"log.json": logSchema, "common.json": common})
	set, err := schema.Load(f.Context(), schema.Config{Dir: dir}, nil)
	if err != nil {
		f.Fatal(err)
	}
	log, _ := set.Get("log")
	f.Add([]byte(`{"device_no":"861234567890123","ts":"2026-12-01T08:00:00Z","level":"info","pos":{"lat":52.5}}`))
	f.Add([]byte(`{"device_no":"86","ts":"x","level":1,"pos":{"lat":"n"},"a/b~c":1e400}`))
	f.Add([]byte(`[{"~":[null,true,-0.0]}]`))
	f.Fuzz(func(t *testing.T, record []byte) {
		err1, err2 := log.Validate(record), log.Validate(record)
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("two answers: %v, %v", err1, err2)
		}
		if err1 == nil {
			return
		}
		var ve *schema.ValidationError
		if !errors.As(err1, &ve) {
			t.Fatalf("Validate = %v, not a *ValidationError", err1)
		}
		if ve.Keyword == "" || (ve.Pointer != "" && ve.Pointer[0] != '/') {
			t.Fatalf("Validate = %+v", ve)
		}
	})
}

func writeDirF(f *testing.F, files map[string]string) string {
	dir := f.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	return dir
}

// TestValidateConcurrently: one compiled schema serves every connection's
// goroutine at once (go test -race).
func TestValidateConcurrently(t *testing.T) {
	set, err := loadDir(t, map[string]string{"log.json": logSchema, "common.json": common})
	if err != nil {
		t.Fatal(err)
	}
	log, _ := set.Get("log")
	good := []byte(`{"device_no":"861234567890123","ts":"2026-12-01T08:00:00Z","level":"info","pos":{"lat":1}}`)
	bad := []byte(`{"device_no":"861234567890123","ts":"2026-12-01T08:00:00Z","level":"info","pos":{"lat":100}}`)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 200 {
				rec, wantOK := good, true
				if (i+g)%2 == 1 {
					rec, wantOK = bad, false
				}
				if err := log.Validate(rec); (err == nil) != wantOK {
					errs <- fmt.Errorf("goroutine %d record %d: %v", g, i, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
