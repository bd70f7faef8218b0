package router

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// benchPayload is a ~300-byte telemetry report.
var benchPayload = []byte(`{"type":"log","device_no":"STS-00000123","ts":1763779999000,"source":"sts","seq":4711,` +
	`"ignition":true,"battery_v":12.6,"odometer_km":12345.6,"fuel_pct":55,"door_locked":true,` +
	`"lat":37.5665,"lng":126.978,"speed_kmh":42.5,"heading_deg":180,"satellites":9,` +
	`"firmware":"sts-2.4.1","driver":{"id":"DRV-0042","name":"Kim"},"tags":["fleet-a","seoul"]}`)

func benchMessage() *Message {
	return &Message{Source: "mqtt", Topic: "report", ClientID: "STS-00000123", Payload: benchPayload,
		Received: time.UnixMilli(1763780000000)}
}

// nopSink stores every record at once.
type nopSink struct{}

func (nopSink) Produce(_ context.Context, _ *Record, done func(error)) error {
	done(nil)
	return nil
}

// benchEngine runs one message through an engine over rules, as the
// gateway does per message (the sink costs nothing).
func benchEngine(b *testing.B, rules []RuleConfig, msg *Message) {
	compiled, err := Compile(rules)
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(compiled, nopSink{}, Options{}, zap.NewNop())
	done := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg.Payload)))
	for b.Loop() {
		e.Process(context.Background(), msg, done)
	}
}

// BenchmarkEngineDefaultRule is the whole engine path of one message with
// the default rule: SELECT, templates, record, completion.
func BenchmarkEngineDefaultRule(b *testing.B) {
	benchEngine(b, DefaultRules(), benchMessage())
}

// BenchmarkEngineForeach splits a kinematic message of 10 samples into 10
// records.
func BenchmarkEngineForeach(b *testing.B) {
	payload := []byte(`{"type":"kinematic","device_no":"STS-00000123","ts":1763780002000,"seq":3,"hz":10,"samples":[` +
		strings.Repeat(`{"ax":0.01,"ay":-0.02,"az":0.98},`, 9) + `{"ax":0.01,"ay":-0.02,"az":0.98}]}`)
	rules := []RuleConfig{{
		Name:    "samples",
		Foreach: "samples AS s",
		SQL:     "SELECT device_no, seq, ts + index() * 1000 / hz AS sample_ts, s.ax, s.ay, s.az FROM 'report'",
		Actions: []ActionConfig{{Kafka: &KafkaActionConfig{Topic: "kinematic-samples", Key: "${device_no}"}}},
	}}
	benchEngine(b, rules, &Message{Source: "mqtt", Topic: "report", ClientID: "STS-00000123", Payload: payload,
		Received: time.UnixMilli(1763780000000)})
}
