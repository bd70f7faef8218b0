package schema

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"
)

// Config is the top-level schemas: key. Dir and Registry may both be set;
// a name found in both is an error.
type Config struct {
	// Dir holds one JSON Schema per file, <name>.json, named by the file
	// name without .json. A relative path is relative to the configuration
	// file's directory.
	Dir string `mapstructure:"dir"`
	// Registry is a Confluent-compatible Schema Registry.
	Registry RegistryConfig `mapstructure:"registry"`
}

// RegistryConfig is schemas.registry: a Schema Registry speaking the
// Confluent REST API (Confluent, Apicurio under /apis/ccompat/v7, Karapace).
type RegistryConfig struct {
	// URL is the API's base, e.g. http://registry:8081 or
	// http://apicurio:8080/apis/ccompat/v7.
	URL string `mapstructure:"url"`
	// Username gives HTTP basic authentication, with Password.
	Username string `mapstructure:"username"`
	// Password is the basic-authentication password (masked by config
	// print); prefer the FLEETGATE_SCHEMAS_REGISTRY_PASSWORD environment
	// variable to writing it in the file.
	Password string `mapstructure:"password" secret:"true"`
	// BearerToken is sent as "Authorization: Bearer <token>" instead.
	BearerToken string `mapstructure:"bearer_token"`
	// Subjects restricts what is fetched; empty (the default) fetches the
	// latest version of every subject the registry lists.
	Subjects []string `mapstructure:"subjects"`
	// Timeout bounds each request; default 10s.
	Timeout time.Duration `mapstructure:"timeout"`
}

// DefaultConfig returns schemas: with nothing configured.
func DefaultConfig() Config {
	return Config{Registry: RegistryConfig{Timeout: 10 * time.Second}}
}

// Enabled reports whether any schema source is configured.
func (c Config) Enabled() bool { return c.Dir != "" || c.Registry.URL != "" }

// Validate checks the configuration; its errors name the key at fault.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	r := c.Registry
	if r.URL != "" {
		u, err := url.Parse(r.URL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("schemas.registry.url: %q is not an http or https URL", r.URL)
		case u.User != nil:
			// Errors and logs name the URL: keep secrets out of it.
			bad("schemas.registry.url: give the credentials in schemas.registry.username and password, not in the URL")
		}
		if r.Timeout <= 0 {
			bad("schemas.registry.timeout must be positive")
		}
	}
	if r.BearerToken != "" && (r.Username != "" || r.Password != "") {
		bad("schemas.registry.bearer_token and schemas.registry.username/password are both set; keep one")
	}
	if r.Password != "" && r.Username == "" {
		bad("schemas.registry.password needs schemas.registry.username")
	}
	if r.URL == "" && (r.Username != "" || r.BearerToken != "" || len(r.Subjects) > 0) {
		bad("schemas.registry.url is required with the other schemas.registry keys")
	}
	return errors.Join(errs...)
}

// Resolve returns c with a relative Dir made relative to dir (the
// configuration file's directory).
func (c Config) Resolve(dir string) Config {
	if c.Dir != "" && !filepath.IsAbs(c.Dir) && dir != "" {
		c.Dir = filepath.Join(dir, c.Dir)
	}
	return c
}
