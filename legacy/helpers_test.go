package legacy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/legacy"
)

// decoder is the common signature of the four decoders.
type decoder func([]byte) ([]legacy.Message, error)

// jsonValue decodes s keeping numbers as json.Number, so that 37.5665 and
// 37.566500000000005 compare different.
func jsonValue(t testing.TB, s []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("payload %s is not JSON: %v", s, err)
	}
	return v
}

// assertMessages checks that got are the messages want (JSON texts), member
// order aside, and that DeviceNo and Type repeat the payload's.
func assertMessages(t *testing.T, got []legacy.Message, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		var texts []string
		for _, m := range got {
			texts = append(texts, string(m.Payload))
		}
		t.Fatalf("got %d messages, want %d:\n%s", len(got), len(want), strings.Join(texts, "\n"))
	}
	for i, m := range got {
		g, w := jsonValue(t, m.Payload), jsonValue(t, []byte(want[i]))
		if !reflect.DeepEqual(g, w) {
			t.Errorf("message %d:\n got %s\nwant %s", i, m.Payload, want[i])
		}
		if err := checkMessage(m); err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
}

// checkMessage checks the invariants every decoded message holds: a JSON
// object with no repeated member, string type and device_no equal to the
// Message's fields, an integer ts, source sts or csa.
func checkMessage(m legacy.Message) error {
	if !json.Valid(m.Payload) {
		return errors.New("payload is not valid JSON: " + string(m.Payload))
	}
	dec := json.NewDecoder(bytes.NewReader(m.Payload))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return errors.New("payload is not an object")
	}
	members := map[string]any{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if _, dup := members[k.(string)]; dup {
			return errors.New("repeated member " + k.(string))
		}
		members[k.(string)] = v
	}
	if typ, _ := members["type"].(string); typ == "" || typ != m.Type {
		return errors.New("type missing or different from Message.Type")
	}
	if dev, _ := members["device_no"].(string); dev == "" || dev != m.DeviceNo {
		return errors.New("device_no missing or different from Message.DeviceNo")
	}
	ts, ok := members["ts"].(json.Number)
	if !ok {
		return errors.New("ts missing or not a number")
	}
	if _, err := ts.Int64(); err != nil {
		return errors.New("ts is not an integer")
	}
	if src := members["source"]; src != "sts" && src != "csa" {
		return errors.New("source is neither sts nor csa")
	}
	return nil
}

// assertError checks that err is a *FieldError for field whose problem
// contains problem, or, when field is "", that it wraps ErrMalformed.
func assertError(t *testing.T, err error, field, problem string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s: %s", field, problem)
	}
	var fe *legacy.FieldError
	if field == "" {
		if !errors.Is(err, legacy.ErrMalformed) || errors.As(err, &fe) {
			t.Fatalf("error %q (%T), want ErrMalformed", err, err)
		}
		if !strings.Contains(err.Error(), problem) {
			t.Fatalf("error %q does not contain %q", err, problem)
		}
		return
	}
	if !errors.As(err, &fe) {
		t.Fatalf("error %q (%T) is not a *FieldError", err, err)
	}
	if fe.Field != field || !strings.Contains(fe.Problem, problem) {
		t.Fatalf("error %q, want field %q with problem containing %q", err, field, problem)
	}
	if fe.Error() != fe.Field+": "+fe.Problem {
		t.Fatalf("Error() = %q", fe.Error())
	}
}
