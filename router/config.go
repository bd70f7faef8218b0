package router

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/fleetgate/fleetgate/ident"
)

// Config is the router: section of the configuration: the engine's checks
// that hold whatever the rules say. Start from DefaultConfig.
type Config struct {
	// Identity configures the device-field checks (router.identity.*).
	Identity IdentityConfig `mapstructure:"identity"`
	// MaxForeachElements is the most elements a rule's foreach may iterate
	// over for one message (router.max_foreach_elements); a message whose
	// array is longer goes to the rule's error action with reason
	// foreach_too_large and produces no record of that rule. Default 10000.
	MaxForeachElements int `mapstructure:"max_foreach_elements"`
}

// IdentityConfig is router.identity: where the device id of a message is and
// what a valid one looks like.
type IdentityConfig struct {
	// Field is the top-level JSON member that names the device a message
	// speaks for (router.identity.field): compared with the sender's
	// verified principal when identity is enforced, and checked against
	// MaxLength and Pattern always. ASCII letters, digits, '_' and '-'.
	// Default "device_no".
	Field string `mapstructure:"field"`
	// MaxLength is the longest device id accepted, in bytes
	// (router.identity.max_length). Default 128, as the legacy decoders.
	MaxLength int `mapstructure:"max_length"`
	// Pattern, when set, is a regular expression (RE2 syntax) the whole
	// device id must match, on top of the built-in rules
	// (router.identity.pattern), e.g. "[A-Z]{3}-[0-9]{8}". Default empty.
	Pattern string `mapstructure:"pattern"`
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config {
	return Config{
		Identity:           IdentityConfig{Field: "device_no", MaxLength: ident.MaxLen},
		MaxForeachElements: 10000,
	}
}

// fieldName is what router.identity.field may be: the duplicate check in
// identity.go relies on it having no character JSON writes escaped except
// through \u.
var fieldName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks the configuration; its errors name the key at fault.
func (c Config) Validate() error {
	var errs []error
	if !fieldName.MatchString(c.Identity.Field) {
		errs = append(errs, fmt.Errorf("router.identity.field: %q must be 1 to 64 ASCII letters, digits, '_' or '-'", c.Identity.Field))
	}
	if c.Identity.MaxLength < 1 || c.Identity.MaxLength > 65535 {
		errs = append(errs, fmt.Errorf("router.identity.max_length: %d is out of range 1..65535", c.Identity.MaxLength))
	}
	if c.Identity.Pattern != "" {
		if _, err := regexp.Compile(c.Identity.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("router.identity.pattern: %w", err))
		}
	}
	if c.MaxForeachElements < 1 {
		errs = append(errs, fmt.Errorf("router.max_foreach_elements: %d must be at least 1", c.MaxForeachElements))
	}
	return errors.Join(errs...)
}
