package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fleetgate/fleetgate/config"
)

// TestConfigPrint: the effective configuration, from defaults, file and
// environment, with the SASL password masked, and loadable again into the
// same configuration.
func TestConfigPrint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleetgate.yaml")
	if err := os.WriteFile(path, []byte(`
kafka:
  brokers: [file-broker:9092]
  sasl: {mechanism: SCRAM-SHA-512, username: fleetgate, password: hunter2-in-the-file}
mqtt:
  max_inflight: 16
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLEETGATE_KAFKA_BROKERS", "env-1:9096,env-2:9096")
	t.Setenv("FLEETGATE_LOG_LEVEL", "debug")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"config", "print", "--config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"brokers: ['env-1:9096', 'env-2:9096']", // environment over the file
		"max_inflight: 16",                      // the file over the default
		"delivery_timeout: 30s",                 // a default
		"level: debug",
		"username: fleetgate",
		"password: '" + config.Masked + "'",
		"name: device-reports",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Fatalf("config print shows the SASL password:\n%s", out)
	}

	// A password from the environment (the chart's Secret) is masked too.
	t.Setenv("FLEETGATE_KAFKA_SASL_PASSWORD", "hunter3-from-env")
	var envOut bytes.Buffer
	if code := run([]string{"config", "print", "--config", path}, &envOut, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if strings.Contains(envOut.String(), "hunter3") || !strings.Contains(envOut.String(), "password: '"+config.Masked+"'") {
		t.Fatalf("config print with the password in the environment:\n%s", envOut.String())
	}
	os.Unsetenv("FLEETGATE_KAFKA_SASL_PASSWORD")

	// What it prints is the configuration: loaded back (without the
	// environment), it is the same but for the masked password.
	printed := filepath.Join(dir, "printed.yaml")
	if err := os.WriteFile(printed, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	again, err := config.Load(printed, noEnv)
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, out)
	}
	orig, err := config.Load(path, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	if again.Kafka.SASL.Password != config.Masked {
		t.Errorf("password loaded back as %q", again.Kafka.SASL.Password)
	}
	again.Kafka.SASL.Password, again.Source = orig.Kafka.SASL.Password, orig.Source
	// Rules compare as what they say (an empty headers map loads as nil).
	r1, _ := yaml.Marshal(again.Rules)
	r2, _ := yaml.Marshal(orig.Rules)
	if string(r1) != string(r2) {
		t.Errorf("rules loaded back as\n%s\nnot\n%s", r1, r2)
	}
	again.Rules = orig.Rules
	for _, d := range []struct {
		a, b any
		n    string
	}{{again.Lookups, orig.Lookups, "lookups"}, {again.Schemas, orig.Schemas, "schemas"}, {again.MQTT, orig.MQTT, "mqtt"}, {again.Kafka, orig.Kafka, "kafka"}, {again.Router, orig.Router, "router"}, {again.Telematics, orig.Telematics, "tm"}} {
		if !reflect.DeepEqual(d.a, d.b) {
			t.Logf("DIFF %s: %#v vs %#v", d.n, d.a, d.b)
		}
	}
	// An empty list prints as [] and loads back as an empty slice where the
	// default was nil: the same configuration.
	nilEmptySlices(reflect.ValueOf(again).Elem())
	nilEmptySlices(reflect.ValueOf(orig).Elem())
	if !reflect.DeepEqual(again, orig) {
		t.Errorf("the printed configuration loads as\n%+v\nnot\n%+v", again, orig)
	}
}

func TestConfigPrintUsage(t *testing.T) {
	for _, args := range [][]string{{"config"}, {"config", "show"}, {"config", "print", "extra"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"config", "print", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, &stdout, &stderr); code != 1 || stderr.Len() == 0 {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr.String())
	}
}

// TestVersion names the Go, mochi and sarama versions from the build
// information.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, &stdout, &stderr); code != 0 {
		t.Fatal(code)
	}
	out := stdout.String()
	for _, want := range []string{"fleetgate ", "go go1.", "github.com/mochi-mqtt/server/v2 v2.", "github.com/IBM/sarama v1."} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
}

// nilEmptySlices sets every empty slice reachable through v's struct fields
// to nil.
func nilEmptySlices(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				nilEmptySlices(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 && !v.IsNil() && v.CanSet() {
			v.Set(reflect.Zero(v.Type()))
		}
	}
}
