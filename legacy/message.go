package legacy

import (
	"errors"
	"fmt"
)

// Message is one canonical message: Payload is a JSON object with at least
// type, device_no, ts and source. DeviceNo and Type repeat the payload's
// device_no and type so that callers need not parse it.
type Message struct {
	DeviceNo string
	Type     string
	Payload  []byte
}

// Source values written into every payload.
const (
	SourceSTS = "sts"
	SourceCSA = "csa"
)

// FieldError reports an invalid field of an otherwise well-formed body: a
// missing device number, a value of the wrong kind, a latitude out of range,
// an impossible date, an unknown or repeated key. Use errors.As to get it.
type FieldError struct {
	// Field is the path of the field in the body as the terminal sent it:
	// "device_no", "records[2].lat", "records[1].samples[0]" for STS, the
	// form key ("dt", "lat") for CSA.
	Field string
	// Problem says what is wrong with it, without repeating its value.
	Problem string
}

// Error returns "field: problem".
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// ErrMalformed is wrapped by the errors for bodies that cannot be parsed at
// all (not JSON, not an object, not UTF-8, bad form encoding); test with
// errors.Is. Every decoder error is either a *FieldError or wraps ErrMalformed.
var ErrMalformed = errors.New("malformed body")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func fieldErr(field, problem string) error {
	return &FieldError{Field: field, Problem: problem}
}
