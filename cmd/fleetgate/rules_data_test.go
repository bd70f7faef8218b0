package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/schema/schematest"
)

// TestRulesTestRegistryConfluent: rules test against a (fake) Schema
// Registry: the subject defaults to <topic>-value, the record is framed in
// the Confluent wire format and shown with its schema id; rules check
// fails when the registry refuses the credentials.
func TestRulesTestRegistryConfluent(t *testing.T) {
	reg := schematest.New(t)
	reg.RequireBasic("fleet", "s3cret")
	id := reg.Register("message-log-value", "JSON", `{"type":"object","required":["device_no"]}`)
	cfg := filepath.Join(t.TempDir(), "fleetgate.yaml")
	write := func(password string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(`schemas:
  registry: {url: "`+reg.URL+`", username: fleet, password: `+password+`}
kafka:
  topics: {names: [message-log, message-dlq]}
rules:
  - name: logs
    sql: SELECT * FROM 'fleet/+/log'
    actions:
      - kafka: {topic: "message-${type}", key: "${device_no}", format: confluent}
    error_action:
      kafka: {topic: message-dlq}
`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("s3cret")
	var stdout, stderr bytes.Buffer
	code := run([]string{"rules", "test", "--config", cfg, "--topic", "fleet/1/log", "--now", "0",
		"--payload", `{"type":"log","device_no":"861234567890123"}`}, &stdout, &stderr)
	want := `{"rule":"logs","action":"actions[0]","topic":"message-log","key":"861234567890123","headers":{},"schema":"message-log-value","format":"confluent","schema_id":` +
		strconv.Itoa(id) + `,"value":{"type":"log","device_no":"861234567890123"}}` + "\n"
	if code != 0 || stdout.String() != want || stderr.String() != "schemas: 1 compiled: message-log-value\n" {
		t.Fatalf("exit %d\nstdout: %s\nwant:   %s\nstderr: %s", code, stdout.String(), want, stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	code = run([]string{"rules", "test", "--config", cfg, "--topic", "fleet/1/log", "--payload", `{"type":"log"}`}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), `"reason":"schema_invalid"`) || !strings.Contains(stdout.String(), `"schema_keyword":"required"`) {
		t.Fatalf("invalid record: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}

	write("wrong")
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"rules", "check", "--config", cfg}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "schemas.registry: GET "+reg.URL+"/subjects: HTTP 401: error 401: Unauthorized") {
		t.Fatalf("rules check with a refused password: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}
