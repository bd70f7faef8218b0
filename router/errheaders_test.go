package router

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestErrorHeadersAreClipped(t *testing.T) {
	longID := strings.Repeat("é", 300) // 600 bytes
	typ := strings.Repeat("y", 1000)
	sink := &fakeSink{permanent: map[string]string{"message-" + typ: "invalid_topic"}}
	rules := compileYAML(t, `
rules:
  - name: r
    sql: SELECT * FROM '#'
    actions:
      - kafka: {topic: "message-${type}"}
    error_action:
      kafka: {topic: message-dlq, headers: {echo: "${note}"}}
`)
	e := NewEngine(rules, sink, Options{}, zap.NewNop())
	topic := "t/" + strings.Repeat("x", 70000)
	res := make(chan error, 1)
	e.Process(context.Background(), &Message{Source: "mqtt", Topic: topic, ClientID: longID,
		Payload: []byte(`{"type":"` + typ + `","note":"` + strings.Repeat("n", 5000) + `"}`)}, func(err error) { res <- err })
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if len(sink.records) != 1 {
		t.Fatalf("records %+v", sink.records)
	}
	for _, h := range sink.records[0].Headers {
		if len(h.Value) > MaxErrorHeaderBytes {
			t.Errorf("header %s is %d bytes", h.Key, len(h.Value))
		}
	}
	h := headers(sink.records[0])
	if !strings.HasSuffix(h["mqtt_topic"], "...(70002 bytes)") || !strings.HasPrefix(h["mqtt_topic"], "t/xxx") {
		t.Errorf("mqtt_topic %q", h["mqtt_topic"])
	}
	if !strings.HasSuffix(h["client_id"], "...(600 bytes)") || !strings.HasPrefix(h["client_id"], "éé") || strings.ContainsRune(h["client_id"], '\uFFFD') {
		t.Errorf("client_id %q", h["client_id"])
	}
	if !strings.HasSuffix(h["echo"], "...(5000 bytes)") || !strings.HasPrefix(h["error"], "invalid_topic: ") {
		t.Errorf("echo %q error %q", h["echo"], h["error"])
	}
	if s := string(clip("short")); s != "short" {
		t.Errorf("clip(short) = %q", s)
	}
}

// FuzzIdentityCheck: whatever the payload, a message from devA that reaches
// a message-* topic is keyed devA (or not keyed) and its record's device_no,
// read the way any consumer reads JSON (first or last of duplicate keys),
// is devA or absent.
