package iotsql

import (
	"testing"
	"time"
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

func BenchmarkEvalDefaultRule(b *testing.B) {
	q, err := ParseQuery(`SELECT *, parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) AS timestamp FROM 'report'`)
	if err != nil {
		b.Fatal(err)
	}
	msg := benchMessage()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		if _, _, err := q.Eval(NewEnv(msg)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvalFields selects and filters on fields, which decodes them.
func BenchmarkEvalFields(b *testing.B) {
	q, err := ParseQuery(`SELECT device_no, ts, battery_v * 10 AS bat, driver.id AS driver, upper(firmware) AS fw
		FROM 'report' WHERE type = 'log' AND fuel_pct > 10`)
	if err != nil {
		b.Fatal(err)
	}
	msg := benchMessage()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := q.Eval(NewEnv(msg)); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkTemplate renders the default rule's topic and key templates, sharing the
// Env as the engine does.
func BenchmarkTemplate(b *testing.B) {
	topic, err := ParseTemplate("message-${type}")
	if err != nil {
		b.Fatal(err)
	}
	key, err := ParseTemplate("${device_no}")
	if err != nil {
		b.Fatal(err)
	}
	msg := benchMessage()
	b.ReportAllocs()
	for b.Loop() {
		env := NewEnv(msg)
		if _, err := topic.Eval(env); err != nil {
			b.Fatal(err)
		}
		if _, err := key.Eval(env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDefaultRulePath is what the engine does per message with the default
// rule: one Env, the SELECT and the two templates.
func BenchmarkDefaultRulePath(b *testing.B) {
	q, _ := ParseQuery(`SELECT *, parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) AS timestamp FROM 'report'`)
	topic, _ := ParseTemplate("message-${type}")
	key, _ := ParseTemplate("${device_no}")
	msg := benchMessage()
	b.ReportAllocs()
	for b.Loop() {
		env := NewEnv(msg)
		if _, _, err := q.Eval(env); err != nil {
			b.Fatal(err)
		}
		if _, err := topic.Eval(env); err != nil {
			b.Fatal(err)
		}
		if _, err := key.Eval(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseQuery(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseQuery(`SELECT *, parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) AS timestamp FROM 'report'`); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan validates and indexes the payload (what every message
// costs before any rule reads it).
func BenchmarkScan(b *testing.B) {
	msg := benchMessage()
	env := NewEnv(msg)
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		env.Reset(msg)
		env.scan()
	}
}
