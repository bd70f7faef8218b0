package router

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
)

const kinematicPayload = `{"type":"kinematic","device_no":"STS-1","ts":1763780002000,"seq":3,"hz":10,` +
	`"samples":[{"ax":0.01,"ay":-0.02,"az":0.98},{"ax":0.02,"ay":-0.01,"az":0.99},{"ax":0,"ay":0,"az":1.5}]}`

const foreachRules = `
rules:
  - name: samples
    foreach: samples AS s
    sql: >-
      SELECT device_no, seq, ts + index() * 1000 / hz AS sample_ts, index() AS i, s.ax, s.ay, s.az
      FROM 'report' WHERE type = 'kinematic'
    actions:
      - kafka: {topic: "message-sample", key: "${device_no}", headers: {n: "${index()}", az: "${s.az}"}}
    error_action:
      kafka: {topic: message-dlq}
`

func TestForeachOneRecordPerElementInOrder(t *testing.T) {
	for _, async := range []bool{false, true} {
		sink := &fakeSink{async: async}
		e := NewEngine(compileYAML(t, foreachRules), sink, Options{}, zap.NewNop())
		if err := process(t, e, "report", kinematicPayload); err != nil {
			t.Fatal(err)
		}
		want := []string{
			`{"device_no":"STS-1","seq":3,"sample_ts":1763780002000,"i":0,"ax":0.01,"ay":-0.02,"az":0.98}`,
			`{"device_no":"STS-1","seq":3,"sample_ts":1763780002100,"i":1,"ax":0.02,"ay":-0.01,"az":0.99}`,
			`{"device_no":"STS-1","seq":3,"sample_ts":1763780002200,"i":2,"ax":0,"ay":0,"az":1.5}`,
		}
		if len(sink.records) != len(want) {
			t.Fatalf("async=%v: %d records, want %d", async, len(sink.records), len(want))
		}
		for i, r := range sink.records {
			if string(r.Value) != want[i] || r.Topic != "message-sample" || string(r.Key) != "STS-1" {
				t.Errorf("record %d: %s %s %s, want %s", i, r.Topic, r.Key, r.Value, want[i])
			}
			if n := string(r.Headers[1].Value); r.Headers[1].Key != "n" || n != strconv.Itoa(i) {
				t.Errorf("record %d: header n = %q", i, n)
			}
		}
		if az := string(sink.records[2].Headers[0].Value); az != "1.5" {
			t.Errorf("header az = %q, want 1.5 (templates see the element)", az)
		}
	}
}

func TestForeachWhereFiltersElements(t *testing.T) {
	sink := &fakeSink{}
	e := NewEngine(compileYAML(t, `
rules:
  - name: hard-brake
    foreach: samples AS s
    sql: SELECT device_no, index() AS i, s.az FROM 'report' WHERE s.az > 1.2
    actions: [{kafka: {topic: harsh}}]
`), sink, Options{}, zap.NewNop())
	if err := process(t, e, "report", kinematicPayload); err != nil {
		t.Fatal(err)
	}
	if len(sink.records) != 1 || string(sink.records[0].Value) != `{"device_no":"STS-1","i":2,"az":1.5}` {
		t.Fatalf("records: %+v", sink.records)
	}
}

func TestForeachNothingToIterate(t *testing.T) {
	for _, payload := range []string{
		`{"type":"kinematic","device_no":"D1"}`,                // no array
		`{"type":"kinematic","device_no":"D1","samples":[]}`,   // empty
		`{"type":"kinematic","device_no":"D1","samples":{}}`,   // not an array
		`{"type":"kinematic","device_no":"D1","samples":null}`, // null
	} {
		sink := &fakeSink{}
		obs := &countObserver{}
		e := NewEngine(compileYAML(t, foreachRules), sink, Options{Observer: obs}, zap.NewNop())
		if err := process(t, e, "report", payload); err != nil {
			t.Fatal(err)
		}
		if len(sink.records) != 0 || obs.counts["unmatched:mqtt"] != 1 {
			t.Errorf("%s: records %+v, observer %v", payload, sink.records, obs.counts)
		}
	}
}

func TestForeachFailuresReachTheErrorActionOnce(t *testing.T) {
	t.Run("unknown topic for every element", func(t *testing.T) {
		sink := &fakeSink{permanent: map[string]string{"message-sample": "unknown_topic"}, async: true}
		obs := &countObserver{}
		e := NewEngine(compileYAML(t, foreachRules), sink, Options{Observer: obs}, zap.NewNop())
		if err := process(t, e, "report", kinematicPayload); err != nil {
			t.Fatal(err)
		}
		if len(sink.records) != 1 || sink.records[0].Topic != "message-dlq" || string(sink.records[0].Value) != kinematicPayload {
			t.Fatalf("records: %+v", sink.records)
		}
		h := headers(sink.records[0])
		if !strings.HasPrefix(h["error"], "unknown_topic: foreach element ") || h["action"] != "actions[0]" {
			t.Fatalf("headers %v", h)
		}
		if obs.counts["error_record:samples:unknown_topic"] != 1 {
			t.Fatalf("observer: %v", obs.counts)
		}
	})
	t.Run("payload not JSON", func(t *testing.T) {
		sink := &fakeSink{}
		e := NewEngine(compileYAML(t, foreachRules), sink, Options{}, zap.NewNop())
		if err := process(t, e, "report", `not json`); err != nil {
			t.Fatal(err)
		}
		if len(sink.records) != 1 || headers(sink.records[0])["action"] != "foreach" {
			t.Fatalf("records: %+v", sink.records)
		}
	})
}

func TestForeachAliasScope(t *testing.T) {
	// The alias shadows a payload member of the same name; a backquoted
	// name is always the payload member; outside foreach index() and an
	// unknown name are Undefined.
	sink := &fakeSink{}
	e := NewEngine(compileYAML(t, `
rules:
  - name: each
    foreach: list AS s
    sql: SELECT s, `+"`s`"+` AS field, s.k AS k FROM 't'
    actions: [{kafka: {topic: "out-${s.k}"}}]
  - name: plain
    sql: SELECT index() AS i, s FROM 't'
    actions: [{kafka: {topic: plain}}]
`), sink, Options{}, zap.NewNop())
	if err := process(t, e, "t", `{"s":"payload","list":[{"k":"a"},{"k":"b"}]}`); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, r := range sink.records {
		got = append(got, r.Topic+" "+string(r.Value))
	}
	want := []string{
		`out-a {"s":{"k":"a"},"field":"payload","k":"a"}`,
		`out-b {"s":{"k":"b"},"field":"payload","k":"b"}`,
		`plain {"s":"payload"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTraceReportsEveryOutput(t *testing.T) {
	var mu sync.Mutex
	var traces []Trace
	sink := &fakeSink{permanent: map[string]string{"message-gone": "unknown_topic"}}
	pub := &fakePublisher{}
	rules := compileYAML(t, twoRules+`
  - name: alerts
    sql: SELECT device_no FROM 'report' WHERE type = 'adas'
    actions: [{republish: {topic: "alerts/${device_no}", qos: 1}}]
`)
	e := NewEngine(rules, sink, Options{Publisher: pub, Trace: func(tr Trace) {
		mu.Lock()
		traces = append(traces, tr)
		mu.Unlock()
	}}, zap.NewNop())
	for _, p := range []string{`{"type":"adas","device_no":"D1"}`, `{"type":"gone","device_no":"D2"}`} {
		if err := process(t, e, "report", p); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, tr := range traces {
		s := tr.Rule + " " + tr.Action
		if tr.Record != nil {
			s += " record " + tr.Record.Topic
		}
		if tr.MQTTTopic != "" {
			s += " republish " + tr.MQTTTopic + " " + string(tr.Payload)
		}
		if tr.Reason != "" {
			s += " failed " + tr.Failed + " " + tr.Reason
		}
		got = append(got, s)
	}
	want := []string{
		"reports actions[0] record message-adas",
		`alerts actions[0] republish alerts/D1 {"device_no":"D1"}`,
		"reports error_action record message-dlq failed actions[0] unknown_topic",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("traces\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rules.Len() != 3 || strings.Join(rules.Names(), ",") != "reports,fast,alerts" {
		t.Fatalf("Names() = %v", rules.Names())
	}
}

type fakePublisher struct {
	mu   sync.Mutex
	msgs []string
}

func (p *fakePublisher) Publish(topic string, payload []byte, qos byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, topic+" "+string(payload))
	return nil
}

func headers(r *Record) map[string]string {
	h := map[string]string{}
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}
