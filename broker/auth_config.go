package broker

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/fleetgate/fleetgate/policy"
)

// validate checks mqtt.auth; errors name the key.
func (a AuthConfig) validate(tc TLSConfig) error {
	var errs []error
	switch a.CertIdentity {
	case "cn", "san_dns", "san_uri":
	default:
		errs = append(errs, fmt.Errorf("mqtt.auth.cert_identity: %q is not cn, san_dns or san_uri", a.CertIdentity))
	}
	b := a.Backoff
	for _, k := range b.Keys {
		if k != "remote_addr" && k != "username" {
			errs = append(errs, fmt.Errorf("mqtt.auth.backoff.keys: %q is not remote_addr or username", k))
		}
	}
	if len(b.Keys) > 0 {
		if b.InitialDelay <= 0 || b.MaxDelay < b.InitialDelay {
			errs = append(errs, fmt.Errorf("mqtt.auth.backoff: want 0 < initial_delay (%s) <= max_delay (%s)", b.InitialDelay, b.MaxDelay))
		}
		if b.ForgetAfter <= 0 {
			errs = append(errs, errors.New("mqtt.auth.backoff.forget_after must be positive"))
		}
		if b.MaxTracked < 1 {
			errs = append(errs, errors.New("mqtt.auth.backoff.max_tracked must be at least 1"))
		}
		if b.MaxWaiting < 1 {
			errs = append(errs, errors.New("mqtt.auth.backoff.max_waiting must be at least 1"))
		}
	}
	if a.EnforceDeviceIdentity && a.AllowAnonymous {
		errs = append(errs, errors.New("mqtt.auth.enforce_device_identity needs mqtt.auth.allow_anonymous: false (an anonymous client has no identity)"))
	}
	return errors.Join(errs...)
}

// validateFiles reads the users and policy files, so that their mistakes
// show at load (fleetgate rules check), not at start.
func (c Config) validateFiles() error {
	var errs []error
	if c.Auth.UsersFile != "" {
		if _, err := loadUsers(c.Auth.UsersFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ACLFile != "" {
		if _, err := loadPolicy(c.ACLFile); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// loadPolicy reads and compiles mqtt.acl_file.
func loadPolicy(path string) (*policy.Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mqtt.acl_file: %w", err)
	}
	p, err := policy.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("mqtt.acl_file %s: %w", path, err)
	}
	return p, nil
}

// Policy returns the policy the configuration puts in force at start, and
// where it comes from: mqtt.acl_file; without one, the built-in default
// when authentication is on (allow_anonymous false), else allow-all.
func (c Config) Policy() (*policy.Policy, string, error) {
	switch {
	case c.ACLFile != "":
		p, err := loadPolicy(c.ACLFile)
		return p, c.ACLFile, err
	case !c.Auth.AllowAnonymous:
		return policy.Default(), "(built-in default policy)", nil
	}
	return policy.AllowAll(), "(none: anonymous access, everything allowed)", nil
}

// backoffKey reports whether failures are counted by key.
func (b BackoffConfig) has(key string) bool { return slices.Contains(b.Keys, key) }
