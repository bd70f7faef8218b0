package router

import (
	"bytes"
	"testing"

	"github.com/fleetgate/fleetgate/schema"
)

// TestConfluentFrameBytes pins the action's framing to the documented wire
// format, byte by byte (magic 0, the id big-endian), as schema.Frame is: an
// id whose four bytes differ catches a byte order or width slip.
func TestConfluentFrameBytes(t *testing.T) {
	value := []byte(`{"a":1}`)
	got := confluentFrame(0x01020304, value)
	if want := "\x00\x01\x02\x03\x04{\"a\":1}"; string(got) != want {
		t.Fatalf("confluentFrame = %q, want %q", got, want)
	}
	if lib := schema.Frame(nil, 0x7fffffff, value); !bytes.Equal(confluentFrame(0x7fffffff, value), lib) {
		t.Errorf("confluentFrame and schema.Frame differ: %q", lib)
	}
}
