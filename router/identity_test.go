package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// processAs runs one message of client/principal through e and returns its
// outcome.
func processAs(t *testing.T, e *Engine, source, principal, payload string) error {
	t.Helper()
	return processMessage(t, e, &Message{Source: source, Topic: "report", ClientID: principal, Principal: principal,
		Payload: []byte(payload), Received: time.UnixMilli(1763780000000)})
}

func TestIdentityCheck(t *testing.T) {
	long := strings.Repeat("d", 129)
	cases := []struct {
		name, source, principal, payload string
		reason                           string // "" stored in message-log; else the error record's reason
		claimed                          string
	}{
		{"own device", "mqtt", "devA", `{"type":"log","device_no":"devA"}`, "", ""},
		{"other device", "mqtt", "devA", `{"type":"log","device_no":"devB"}`, ReasonIdentityMismatch, "devB"},
		{"other device, escaped", "mqtt", "devA", `{"type":"log","device_no":"dev\u0042"}`, ReasonIdentityMismatch, "devB"},
		{"other device, escaped key", "mqtt", "devA", `{"type":"log","device\u005fno":"devB"}`, ReasonIdentityMismatch, "devB"},
		{"case differs", "mqtt", "devA", `{"type":"log","device_no":"DEVA"}`, ReasonIdentityMismatch, "DEVA"},
		{"duplicate key, own last", "mqtt", "devA", `{"type":"log","device_no":"devB","device_no":"devA"}`, ReasonInvalidDeviceID, `"devA"`},
		{"duplicate key, escaped", "mqtt", "devA", `{"type":"log","device_no":"devA","devic\u0065_no":"devB"}`, ReasonInvalidDeviceID, `"devB"`},
		{"name in a value is no duplicate", "mqtt", "devA", `{"type":"log","device_no":"devA","note":"\"device_no\""}`, "", ""},
		{"nested device_no is not the field", "mqtt", "devA", `{"type":"log","device_no":"devA","peer":{"device_no":"devB"}}`, "", ""},
		{"number", "mqtt", "devA", `{"type":"log","device_no":12}`, ReasonInvalidDeviceID, "12"},
		{"null", "mqtt", "devA", `{"type":"log","device_no":null}`, ReasonInvalidDeviceID, "null"},
		{"empty", "mqtt", "devA", `{"type":"log","device_no":""}`, ReasonInvalidDeviceID, ""},
		{"too long", "mqtt", long, `{"type":"log","device_no":"` + long + `"}`, ReasonInvalidDeviceID, long},
		{"control character", "mqtt", "devA", `{"type":"log","device_no":"dev\u0000A"}`, ReasonInvalidDeviceID, "dev\x00A"},
		{"trailing space", "mqtt", "devA", `{"type":"log","device_no":"devA "}`, ReasonInvalidDeviceID, "devA "},
		{"absent: stored without a key", "mqtt", "devA", `{"type":"log"}`, "", ""},
		{"anonymous: not compared", "mqtt", "", `{"type":"log","device_no":"devB"}`, "", ""},
		{"source not enforced: not compared", "sts", "fleet-token", `{"type":"log","device_no":"devB"}`, "", ""},
		{"source not enforced: still sane", "sts", "fleet-token", `{"type":"log","device_no":" devB"}`, ReasonInvalidDeviceID, " devB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink := &fakeSink{async: true}
			obs := &countObserver{}
			e := NewEngine(compileYAML(t, twoRules), sink, Options{Observer: obs, EnforceIdentity: []string{"mqtt"}}, zap.NewNop())
			err := processAs(t, e, tc.source, tc.principal, tc.payload)
			if len(sink.records) != 1 {
				t.Fatalf("%d records, want 1: %+v", len(sink.records), sink.records)
			}
			rec := sink.records[0]
			if tc.reason == "" {
				if err != nil || rec.Topic != "message-log" {
					t.Fatalf("outcome %v, record in %s; want stored in message-log", err, rec.Topic)
				}
				return
			}
			h := headers(rec)
			if rec.Topic != "message-dlq" || !strings.HasPrefix(h["error"], tc.reason+": ") || h["action"] != "identity" ||
				h["principal"] != tc.principal || h["claimed_id"] != string(clip(tc.claimed)) || string(rec.Value) != tc.payload {
				t.Fatalf("record %s %q headers %q; want the payload in message-dlq with reason %s, claimed %q", rec.Topic, rec.Value, h, tc.reason, tc.claimed)
			}
			if obs.counts["error_record:reports:"+tc.reason] != 1 {
				t.Fatalf("counts %v", obs.counts)
			}
			r, refused := Refused(err)
			switch tc.reason {
			case ReasonIdentityMismatch:
				if !refused || r.Reason != tc.reason || r.Principal != tc.principal || r.Claimed != tc.claimed {
					t.Fatalf("outcome %v (%+v); want a refusal for %q claiming %q", err, r, tc.principal, tc.claimed)
				}
			default:
				if err != nil {
					t.Fatalf("outcome %v; want nil (stored in the error topic)", err)
				}
			}
		})
	}
}

// A refusal is reported only once the error record is stored: when the
// error topic cannot take it now, the message fails (not acknowledged) and
// the sender re-sends it.
func TestIdentityRefusalWaitsForTheErrorRecord(t *testing.T) {
	sink := &fakeSink{async: true, transient: map[string]bool{"message-dlq": true}}
	e := NewEngine(compileYAML(t, twoRules), sink, Options{EnforceIdentity: []string{"mqtt"}}, zap.NewNop())
	err := processAs(t, e, "mqtt", "devA", `{"type":"log","device_no":"devB"}`)
	if _, refused := Refused(err); err == nil || refused {
		t.Fatalf("outcome %v; want a transient failure", err)
	}
	if len(sink.records) != 0 {
		t.Fatalf("stored %+v", sink.records)
	}
}

// Without a principal (mutual TLS without a username, before the broker
// sets one) an enforced message is compared with its client id, which the
// broker made equal to the certificate's name.
func TestIdentityFallsBackToTheClientID(t *testing.T) {
	sink := &fakeSink{}
	e := NewEngine(compileYAML(t, twoRules), sink, Options{EnforceIdentity: []string{"mqtt"}}, zap.NewNop())
	err := processMessage(t, e, &Message{Source: "mqtt", Topic: "report", ClientID: "devA", Payload: []byte(`{"type":"log","device_no":"devB"}`)})
	r, refused := Refused(err)
	if !refused || r.Principal != "devA" || len(sink.records) != 1 || headers(sink.records[0])["principal"] != "devA" {
		t.Fatalf("outcome %v, records %+v", err, sink.records)
	}
}

// Rules that do not match the topic do not run; a refused message that no
// rule matches is refused all the same, with nothing stored.
func TestIdentityRefusalWithoutMatchingRule(t *testing.T) {
	sink := &fakeSink{}
	obs := &countObserver{}
	e := NewEngine(compileYAML(t, twoRules), sink, Options{Observer: obs, EnforceIdentity: []string{"mqtt"}}, zap.NewNop())
	res := make(chan error, 1)
	e.Process(context.Background(), &Message{Source: "mqtt", Topic: "other", ClientID: "devA", Principal: "devA",
		Payload: []byte(`{"device_no":"devB"}`)}, func(err error) { res <- err })
	if _, refused := Refused(<-res); !refused || len(sink.records) != 0 || obs.counts["unmatched:mqtt"] != 1 {
		t.Fatalf("refused %v, records %+v, counts %v", refused, sink.records, obs.counts)
	}
}

// A message without the device field is keyed by its sender only when a
// rule says so: key "${principal()}" (and principal() AS device_no to put
// it in the record).
func TestIdentityPrincipalAsKeyWhenTheRuleSaysSo(t *testing.T) {
	rules := compileYAML(t, `
rules:
  - name: keyed
    sql: SELECT *, principal() AS device_no FROM 'report'
    actions:
      - kafka: {topic: "message-${type}", key: "${principal()}"}
`)
	sink := &fakeSink{}
	e := NewEngine(rules, sink, Options{EnforceIdentity: []string{"mqtt"}}, zap.NewNop())
	if err := processAs(t, e, "mqtt", "devA", `{"type":"log","ts":1}`); err != nil {
		t.Fatal(err)
	}
	if len(sink.records) != 1 || string(sink.records[0].Key) != "devA" || string(sink.records[0].Value) != `{"type":"log","ts":1,"device_no":"devA"}` {
		t.Fatalf("records %+v", sink.records)
	}
	// The default rule's ${device_no} leaves such a message without a key.
	sink = &fakeSink{}
	e = NewEngine(compileYAML(t, twoRules), sink, Options{EnforceIdentity: []string{"mqtt"}}, zap.NewNop())
	if err := processAs(t, e, "mqtt", "devA", `{"type":"log","ts":1}`); err != nil {
		t.Fatal(err)
	}
	if len(sink.records) != 1 || sink.records[0].Key != nil {
		t.Fatalf("records %+v", sink.records)
	}
}

func TestIdentityPatternAndLength(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Identity = IdentityConfig{Field: "vin", MaxLength: 17, Pattern: "[A-HJ-NPR-Z0-9]+"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for payload, want := range map[string]string{
		`{"type":"log","vin":"1HGCM82633A004352"}`:  "message-log",
		`{"type":"log","vin":"1HGCM82633A00435Q"}`:  "message-dlq", // Q is not in a VIN
		`{"type":"log","vin":"1HGCM82633A0043520"}`: "message-dlq", // 18 bytes
		`{"type":"log","device_no":" x"}`:           "message-log", // not the field any more
	} {
		sink := &fakeSink{}
		e := NewEngine(compileYAML(t, twoRules), sink, Options{Config: cfg}, zap.NewNop())
		if err := processAs(t, e, "mqtt", "", payload); err != nil {
			t.Fatal(err)
		}
		if len(sink.records) != 1 || sink.records[0].Topic != want {
			t.Errorf("%s: records %+v, want one in %s", payload, sink.records, want)
		} else if want == "message-dlq" && !strings.HasPrefix(headers(sink.records[0])["error"], ReasonInvalidDeviceID) {
			t.Errorf("%s: headers %q", payload, headers(sink.records[0]))
		}
	}
}

func FuzzIdentityCheck(f *testing.F) {
	for _, seed := range []string{
		`{"type":"log","device_no":"devA"}`, `{"type":"log","device_no":"devB"}`,
		`{"type":"log","device_no":"devB","device_no":"devA"}`, `{"type":"log","devic\u0065_no":"devB","device_no":"devA"}`,
		`{"type":"log","device_no":"dev\u0041"}`, `{"type":"log"}`, `[1,2]`, `not json`, `{"type":"log","device_no":["devB"]}`,
	} {
		f.Add([]byte(seed))
	}
	rules := compileYAML(f, twoRules)
	f.Fuzz(func(t *testing.T, payload []byte) {
		sink := &fakeSink{}
		e := NewEngine(rules, sink, Options{EnforceIdentity: []string{"mqtt"}}, zap.NewNop())
		res := make(chan error, 1)
		e.Process(context.Background(), &Message{Source: "mqtt", Topic: "report", ClientID: "devA", Principal: "devA", Payload: payload},
			func(err error) { res <- err })
		<-res
		for _, rec := range sink.records {
			if !strings.HasPrefix(rec.Topic, "message-") || rec.Topic == "message-dlq" {
				continue
			}
			if len(rec.Key) > 0 && string(rec.Key) != "devA" {
				t.Fatalf("record in %s keyed %q from devA: %q", rec.Topic, rec.Key, payload)
			}
			for _, dev := range deviceFieldValues(rec.Value) {
				if dev != "devA" {
					t.Fatalf("record in %s claims device_no %q from devA: %q", rec.Topic, dev, payload)
				}
			}
		}
	})
}

// deviceFieldValues returns every top-level device_no of a JSON object as
// encoding/json decodes it (non-strings as their JSON text).
func deviceFieldValues(b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var out []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
		if k, _ := tok.(string); k == "device_no" {
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			out = append(out, s)
		}
	}
	return out
}

// TestRefusedOfNilAllocatesNothing: a transport asks Refused of every
// message's outcome, stored ones (nil) included.
func TestRefusedOfNilAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := Refused(nil); ok {
			t.Fatal("nil is not a refusal")
		}
	}); n != 0 {
		t.Errorf("Refused(nil) allocates %.0f times", n)
	}
	if r, ok := Refused(fmt.Errorf("wrapped: %w", &Refusal{Reason: ReasonIdentityMismatch})); !ok || r.Reason != ReasonIdentityMismatch {
		t.Errorf("Refused of a wrapped refusal = %v, %v", r, ok)
	}
}
