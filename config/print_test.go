package config

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestPrintMasksEverySecret gives every string key a recognisable value and
// checks that Print shows each, except the secrets, which are masked.
func TestPrintMasksEverySecret(t *testing.T) {
	c := Default()
	var secrets []string
	for _, k := range Keys(c) {
		if k.Value.Kind() == reflect.String {
			k.Value.SetString("VALUE-OF-" + k.Path)
			if k.Secret() {
				secrets = append(secrets, k.Path)
			}
		}
	}
	if !slices.Contains(secrets, "kafka.sasl.password") {
		t.Fatalf("kafka.sasl.password is not a secret; secrets: %v", secrets)
	}
	var b bytes.Buffer
	if err := Print(&b, c); err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys(c) {
		if k.Value.Kind() != reflect.String {
			continue
		}
		shown := strings.Contains(b.String(), "VALUE-OF-"+k.Path+"\n") || strings.Contains(b.String(), "VALUE-OF-"+k.Path+"'")
		if k.Secret() == shown {
			t.Errorf("%s (secret %v) shown %v:\n%s", k.Path, k.Secret(), shown, b.String())
		}
	}
	for _, p := range []string{"mqtt.tls.key_file", "telematics.auth.tokens_file", "kafka.sasl.username"} {
		for _, k := range Keys(c) {
			if k.Path == p && k.Secret() {
				t.Errorf("%s is not a secret (a path or a name)", p)
			}
		}
	}
}

// TestPrintNestedSecrets: a list of structures prints by its mapstructure
// keys, its secret-named fields masked (a key another part may add).
func TestPrintNestedSecrets(t *testing.T) {
	type user struct {
		Name     string        `mapstructure:"name"`
		Password string        `mapstructure:"password"`
		Timeout  time.Duration `mapstructure:"timeout"`
	}
	n, err := node(reflect.ValueOf([]user{{Name: "dev-1", Password: "hunter2", Timeout: 90 * time.Second}, {Name: "dev-2"}}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	want := "- name: dev-1\n  password: '" + Masked + "'\n  timeout: 1m30s\n- name: dev-2\n  password: \"\"\n  timeout: 0s\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}
