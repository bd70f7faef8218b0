package router

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"
)

// fakeSink stores records at once, or fails topics as told.
type fakeSink struct {
	mu        sync.Mutex
	records   []*Record
	permanent map[string]string // topic -> reason
	transient map[string]bool
	async     bool
}

type fakePermanent struct{ reason string }

func (e fakePermanent) Error() string       { return "permanent: " + e.reason }
func (e fakePermanent) Permanent() bool     { return true }
func (e fakePermanent) ErrorReason() string { return e.reason }

func (s *fakeSink) Produce(ctx context.Context, rec *Record, done func(error)) error {
	var err error
	s.mu.Lock()
	if r, ok := s.permanent[rec.Topic]; ok {
		err = fakePermanent{r}
	} else if s.transient[rec.Topic] {
		err = errors.New("kafka is down")
	} else {
		s.records = append(s.records, rec)
	}
	s.mu.Unlock()
	if s.async {
		go done(err)
	} else {
		done(err)
	}
	return nil
}

type countObserver struct {
	mu     sync.Mutex
	counts map[string]int
}

func (o *countObserver) add(k string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = map[string]int{}
	}
	o.counts[k]++
}
func (o *countObserver) Message(s string)           { o.add("message:" + s) }
func (o *countObserver) Unmatched(s string)         { o.add("unmatched:" + s) }
func (o *countObserver) ErrorRecord(rule, r string) { o.add("error_record:" + rule + ":" + r) }
func (o *countObserver) Dropped(rule, r string)     { o.add("dropped:" + rule + ":" + r) }
func (o *countObserver) Failed(s string)            { o.add("failed:" + s) }

func compileYAML(t testing.TB, src string) *Rules {
	t.Helper()
	var doc struct {
		Rules []RuleConfig `yaml:"rules"`
	}
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	r, err := Compile(doc.Rules)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func process(t *testing.T, e *Engine, topic, payload string) error {
	t.Helper()
	return processMessage(t, e, &Message{Source: "mqtt", Topic: topic, ClientID: "C1", Payload: []byte(payload), Received: time.UnixMilli(1763780000000)})
}

// processMessage runs msg through e and returns its outcome.
func processMessage(t *testing.T, e *Engine, msg *Message) error {
	t.Helper()
	res := make(chan error, 1)
	e.Process(context.Background(), msg, func(err error) { res <- err })
	select {
	case err := <-res:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("done never called")
		return nil
	}
}

const twoRules = `
rules:
  - name: reports
    sql: SELECT *, parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) AS timestamp FROM 'report'
    actions:
      - kafka: {topic: "message-${type}", key: "${device_no}"}
    error_action:
      kafka: {topic: message-dlq, key: "${clientid()}"}
  - name: fast
    sql: SELECT device_no, speed FROM 'fleet/+/report' WHERE speed > 100
    actions:
      - kafka: {topic: speeding, key: "${topic(2)}", partition: "${partition}", headers: {kind: "${type}"}}
      - kafka: {topic: speeding-all}
`

func TestEngineRoutes(t *testing.T) {
	for _, async := range []bool{false, true} {
		sink := &fakeSink{async: async}
		obs := &countObserver{}
		e := NewEngine(compileYAML(t, twoRules), sink, Options{Observer: obs}, zap.NewNop())

		if err := process(t, e, "report", `{"type":"log","device_no":"D1","ts":1}`); err != nil {
			t.Fatal(err)
		}
		if err := process(t, e, "fleet/V9/report", `{"type":"gps","device_no":"D9","speed":120,"partition":4}`); err != nil {
			t.Fatal(err)
		}
		if err := process(t, e, "fleet/V9/report", `{"type":"gps","device_no":"D9","speed":80}`); err != nil {
			t.Fatal(err)
		}
		if len(sink.records) != 3 {
			t.Fatalf("async=%v: %d records, want 3", async, len(sink.records))
		}
		byTopic := map[string]*Record{}
		for _, r := range sink.records {
			byTopic[r.Topic] = r
		}
		log := byTopic["message-log"]
		if log == nil || string(log.Key) != "D1" || log.Partition != -1 ||
			!strings.Contains(string(log.Value), `"timestamp":"2025-11-22T02:53:20UTC"`) {
			t.Fatalf("message-log record: %+v %s", log, log.Value)
		}
		sp := byTopic["speeding"]
		if sp == nil || string(sp.Key) != "V9" || sp.Partition != 4 || string(sp.Value) != `{"device_no":"D9","speed":120}` ||
			len(sp.Headers) != 1 || sp.Headers[0].Key != "kind" || string(sp.Headers[0].Value) != "gps" {
			t.Fatalf("speeding record: %+v", sp)
		}
		if all := byTopic["speeding-all"]; all == nil || all.Key != nil {
			t.Fatalf("speeding-all record: %+v", all)
		}
		if obs.counts["message:mqtt"] != 3 || obs.counts["unmatched:mqtt"] != 1 {
			t.Fatalf("observer: %v", obs.counts)
		}
	}
}

// TestEngineEmptyKeyAndHeader: a key template that renders nothing leaves
// the record without a key (nil); a header that renders nothing is there,
// empty (not null).
func TestEngineEmptyKeyAndHeader(t *testing.T) {
	sink := &fakeSink{}
	e := NewEngine(compileYAML(t, `
rules:
  - name: r
    sql: SELECT * FROM 'report'
    actions:
      - kafka: {topic: "t-${type}", key: "${missing}", headers: {h: "${missing}", k: "${device_no}-${n}"}}
`), sink, Options{}, zap.NewNop())
	if err := process(t, e, "report", `{"type":"log","device_no":"D1","n":7}`); err != nil {
		t.Fatal(err)
	}
	if len(sink.records) != 1 {
		t.Fatalf("%d records, want 1", len(sink.records))
	}
	r := sink.records[0]
	if r.Topic != "t-log" || r.Key != nil || len(r.Headers) != 2 {
		t.Fatalf("record: %+v", r)
	}
	if h := r.Headers[0]; h.Key != "h" || h.Value == nil || len(h.Value) != 0 {
		t.Errorf("header h = %q %#v, want empty and not nil", h.Key, h.Value)
	}
	if h := r.Headers[1]; h.Key != "k" || string(h.Value) != "D1-7" {
		t.Errorf("header k = %q %q, want D1-7", h.Key, h.Value)
	}
}

// heldSink keeps the completion of every record until release, which
// fails those of the topics in permanent.
type heldSink struct {
	mu        sync.Mutex
	held      []func(error)
	records   []*Record
	permanent map[string]bool
}

func (s *heldSink) Produce(_ context.Context, rec *Record, done func(error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.permanent[rec.Topic] {
		err = fakePermanent{"record_too_large"}
	} else {
		s.records = append(s.records, rec)
	}
	s.held = append(s.held, func(error) { done(err) })
	return nil
}

// release completes every record held so far.
func (s *heldSink) release() {
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, done := range held {
		done(nil)
	}
}

// TestEngineReusesAnEnvOnlyOnceDone: the engine reuses a message's
// evaluation context only once the message is done. A message whose record
// is still with the sink, and whose error action then evaluates its
// templates, must not see the next message's payload.
func TestEngineReusesAnEnvOnlyOnceDone(t *testing.T) {
	sink := &heldSink{permanent: map[string]bool{"t-big": true}}
	e := NewEngine(compileYAML(t, `
rules:
  - name: r
    sql: SELECT * FROM 'report'
    actions:
      - kafka: {topic: "t-${type}", key: "${device_no}"}
    error_action:
      kafka: {topic: "dlq-${type}", key: "${device_no}"}
`), sink, Options{}, zap.NewNop())
	for i := range 20 {
		first := make(chan error, 1)
		e.Process(context.Background(), &Message{Source: "mqtt", Topic: "report", ClientID: "A",
			Payload: []byte(`{"type":"big","device_no":"A"}`)}, func(err error) { first <- err })
		// While the first is held, others go through (the sink holds theirs too).
		for range 3 {
			e.Process(context.Background(), &Message{Source: "mqtt", Topic: "report", ClientID: "B",
				Payload: []byte(`{"type":"small","device_no":"B"}`)}, func(error) {})
		}
		// The first's record fails: its error action runs, on another
		// goroutine, and hands the sink the error record, released in turn.
		deadline := time.Now().Add(5 * time.Second)
		for done := false; !done; {
			sink.release()
			select {
			case err := <-first:
				if err != nil {
					t.Fatal(err)
				}
				done = true
			case <-time.After(time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatal("done never called")
				}
			}
		}
		sink.mu.Lock()
		recs := sink.records
		sink.records = nil
		sink.mu.Unlock()
		var dlq []string
		for _, r := range recs {
			if strings.HasPrefix(r.Topic, "dlq-") {
				dlq = append(dlq, r.Topic+"/"+string(r.Key))
			}
		}
		if len(dlq) != 1 || dlq[0] != "dlq-big/A" {
			t.Fatalf("round %d: error records %q, want [dlq-big/A]", i, dlq)
		}
	}
}

func TestEngineErrorAction(t *testing.T) {
	cases := []struct {
		name, payload, reason string
		permanent             map[string]string
	}{
		{"not json", `nope`, "eval_error", nil},
		{"sink refuses topic", `{"type":"gone","device_no":"D1"}`, "unknown_topic", map[string]string{"message-gone": "unknown_topic"}},
		{"partition template not a number", `{"type":"log","device_no":"D1"}`, "", nil},
	}
	for _, c := range cases[:2] {
		t.Run(c.name, func(t *testing.T) {
			sink := &fakeSink{permanent: c.permanent, async: true}
			obs := &countObserver{}
			e := NewEngine(compileYAML(t, twoRules), sink, Options{Observer: obs, MaxRecordBytes: 1 << 20}, zap.NewNop())
			if err := process(t, e, "report", c.payload); err != nil {
				t.Fatalf("a message stored in the error topic counts as delivered; got %v", err)
			}
			if len(sink.records) != 1 || sink.records[0].Topic != "message-dlq" {
				t.Fatalf("records: %+v", sink.records)
			}
			r := sink.records[0]
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			if string(r.Value) != c.payload || string(r.Key) != "C1" || !strings.HasPrefix(h["error"], c.reason+": ") ||
				h["rule"] != "reports" || h["source"] != "mqtt" || h["client_id"] != "C1" || h["mqtt_topic"] != "report" {
				t.Fatalf("error record %q key %q headers %v", r.Value, r.Key, h)
			}
			if obs.counts["error_record:reports:"+c.reason] != 1 {
				t.Fatalf("observer: %v", obs.counts)
			}
		})
	}
}

func TestEngineTransientFailureFailsTheMessage(t *testing.T) {
	sink := &fakeSink{transient: map[string]bool{"message-log": true}, async: true}
	obs := &countObserver{}
	e := NewEngine(compileYAML(t, twoRules), sink, Options{Observer: obs}, zap.NewNop())
	if err := process(t, e, "report", `{"type":"log","device_no":"D1"}`); err == nil {
		t.Fatal("a message Kafka did not store was reported stored")
	}
	// And when the error topic itself is down, a permanent failure is not
	// acknowledged either.
	sink2 := &fakeSink{permanent: map[string]string{"message-x": "unknown_topic"}, transient: map[string]bool{"message-dlq": true}}
	e2 := NewEngine(compileYAML(t, twoRules), sink2, Options{Observer: obs}, zap.NewNop())
	if err := process(t, e2, "report", `{"type":"x","device_no":"D1"}`); err == nil {
		t.Fatal("a message whose error record was not stored was reported stored")
	}
	// A permanent failure of the error record itself (the error topic was
	// deleted) is not acknowledged either: nothing may be lost.
	sink3 := &fakeSink{permanent: map[string]string{"message-x": "unknown_topic", "message-dlq": "unknown_topic"}, async: true}
	e3 := NewEngine(compileYAML(t, twoRules), sink3, Options{Observer: obs}, zap.NewNop())
	if err := process(t, e3, "report", `{"type":"x","device_no":"D1"}`); err == nil {
		t.Fatal("a message stored nowhere was reported stored")
	}
	if obs.counts["failed:mqtt"] != 3 {
		t.Fatalf("observer: %v", obs.counts)
	}
}

func TestEngineWithoutErrorActionDropsLoudly(t *testing.T) {
	sink := &fakeSink{permanent: map[string]string{"speeding": "record_too_large"}}
	obs := &countObserver{}
	e := NewEngine(compileYAML(t, twoRules), sink, Options{Observer: obs}, zap.NewNop())
	if err := process(t, e, "fleet/a/report", `{"device_no":"D9","speed":300}`); err != nil {
		t.Fatal(err)
	}
	if obs.counts["dropped:fast:record_too_large"] != 1 || len(sink.records) != 1 || sink.records[0].Topic != "speeding-all" {
		t.Fatalf("observer %v records %+v", obs.counts, sink.records)
	}
}

func TestEngineTruncatesOversizeErrorPayload(t *testing.T) {
	sink := &fakeSink{permanent: map[string]string{"message-log": "record_too_large"}}
	e := NewEngine(compileYAML(t, twoRules), sink, Options{MaxRecordBytes: ErrorRecordHeadroom + 100}, zap.NewNop())
	payload := `{"type":"log","device_no":"D1","blob":"` + strings.Repeat("x", 500) + `"}`
	if err := process(t, e, "report", payload); err != nil {
		t.Fatal(err)
	}
	r := sink.records[0]
	if len(r.Value) != 100 || !strings.HasPrefix(payload, string(r.Value)) {
		t.Fatalf("error record value %q", r.Value)
	}
	found := false
	for _, h := range r.Headers {
		found = found || h.Key == "truncated" && string(h.Value) == strconv.Itoa(len(payload))
	}
	if !found {
		t.Fatalf("no truncated header: %+v", r.Headers)
	}
}

func TestEngineSwapKeepsInFlightOnOldRules(t *testing.T) {
	sink := &fakeSink{}
	e := NewEngine(compileYAML(t, twoRules), sink, Options{}, zap.NewNop())
	e.Swap(compileYAML(t, `
rules:
  - name: only
    sql: SELECT 1 AS one FROM '#'
    actions: [{kafka: {topic: everything}}]
`))
	if err := process(t, e, "any/topic", `{}`); err != nil {
		t.Fatal(err)
	}
	if len(sink.records) != 1 || sink.records[0].Topic != "everything" {
		t.Fatalf("records after swap: %+v", sink.records)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"bad sql", `[{name: a, sql: "SELECT * FORM 'x'", actions: [{kafka: {topic: t}}]}]`, "rules[0] (a) sql: line 1, column 10"},
		{"no name", `[{sql: "SELECT * FROM 'x'", actions: [{kafka: {topic: t}}]}]`, "rules[0] name: every rule needs a name"},
		{"duplicate name", `[{name: a, sql: "SELECT * FROM 'x'", actions: [{kafka: {topic: t}}]}, {name: a, sql: "SELECT * FROM 'x'", actions: [{kafka: {topic: t}}]}]`, "rules[1] (a) name: the name is already used by rules[0]"},
		{"no actions", `[{name: a, sql: "SELECT * FROM 'x'"}]`, "rules[0] (a) actions: a rule needs at least one action"},
		{"empty action", `[{name: a, sql: "SELECT * FROM 'x'", actions: [{}]}]`, "rules[0] (a) actions[0]: the action is empty"},
		{"bad template", `[{name: a, sql: "SELECT * FROM 'x'", actions: [{kafka: {topic: "m-${type"}}]}]`, "rules[0] (a) actions[0].kafka.topic:"},
		{"bad partition", `[{name: a, sql: "SELECT * FROM 'x'", actions: [{kafka: {topic: t, partition: "-1"}}]}]`, "actions[0].kafka.partition"},
		{"republish qos 2", `[{name: a, sql: "SELECT * FROM 'x'", actions: [{republish: {topic: t, qos: 2}}]}]`, "actions[0].republish.qos"},
		{"foreach without AS", `[{name: a, foreach: samples, sql: "SELECT * FROM 'x'", actions: [{kafka: {topic: t}}]}]`, "rules[0] (a) foreach: line 1, column 8: expected AS"},
		{"foreach alias in a bad template", `[{name: a, foreach: samples AS s, sql: "SELECT s.ax FROM 'x'", actions: [{kafka: {topic: "t-${s.}"}}]}]`, "rules[0] (a) actions[0].kafka.topic: line 1, column 7"},
		{"error action republish", `[{name: a, sql: "SELECT * FROM 'x'", actions: [{kafka: {topic: t}}], error_action: {republish: {topic: t}}}]`, "error_action: the error action must be a kafka action"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfgs []RuleConfig
			if err := yaml.Unmarshal([]byte(c.src), &cfgs); err != nil {
				t.Fatal(err)
			}
			_, err := Compile(cfgs)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
