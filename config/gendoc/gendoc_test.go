package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigurationDocIsGenerated fails when docs/configuration.md is not
// what the configuration structs generate (a key added, removed, renamed,
// re-documented or given a new default without regenerating), or when a
// key has no doc comment.
func TestConfigurationDocIsGenerated(t *testing.T) {
	root := filepath.Join("..", "..")
	want, undocumented, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range undocumented {
		t.Errorf("%s: write one (it is the key's meaning in docs/configuration.md), then run: %s", u, Regenerate)
	}
	got, err := os.ReadFile(filepath.Join(root, docPath))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) == want {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(want, "\n")
	line := 0
	for line < len(g) && line < len(w) && g[line] == w[line] {
		line++
	}
	at := func(l []string) string {
		if line < len(l) {
			return l[line]
		}
		return "(end of file)"
	}
	t.Fatalf("%s is out of date with the configuration structs; regenerate it with:\n\n\t%s\n\nfirst difference at line %d:\n  file:      %s\n  generated: %s",
		docPath, Regenerate, line+1, at(g), at(w))
}

// TestGeneratedDocCoversEveryKey: every key of the configuration, with its
// default, is a row.
func TestGeneratedDocCoversEveryKey(t *testing.T) {
	doc, _, err := generate(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"log.level", "mqtt.tls.client_ca_file", "kafka.sasl.password", "kafka.topics.names", "rules_file", "rules"} {
		if !strings.Contains(doc, "| `"+key+"` |") {
			t.Errorf("no row for %s", key)
		}
	}
	if !strings.Contains(doc, "| `kafka.delivery_timeout` | `30s` |") {
		t.Error("kafka.delivery_timeout's default is not 30s in the generated doc")
	}
}
