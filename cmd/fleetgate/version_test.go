package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionBuiltBinary: `fleetgate version` of a binary built as the
// Dockerfile builds it (go build -trimpath, stripped, version by -ldflags)
// names that version, the toolchain's Go, and the mochi and sarama versions
// go.mod requires; the build information survives the stripping.
func TestVersionBuiltBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fleetgate")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -X main.version=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("fleetgate version: %v\n%s", err, out)
	}
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fleetgate v9.8.7-test ", "go " + strings.TrimSpace(string(goVersion)) + "\n"}
	for _, m := range []string{"github.com/mochi-mqtt/server/v2", "github.com/IBM/sarama"} {
		req := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(m) + ` (v\S+)`).FindSubmatch(gomod)
		if req == nil {
			t.Fatalf("go.mod does not require %s", m)
		}
		v := string(req[1])
		if rep := regexp.MustCompile(`(?m)^\s*(?:replace\s+)?` + regexp.QuoteMeta(m) + ` => (\.\S*)\s*$`).FindSubmatch(gomod); rep != nil {
			v += " patched (" + string(rep[1]) + ")"
		}
		want = append(want, m+" "+v+"\n")
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("fleetgate version of the built binary lacks %q:\n%s", w, out)
		}
	}
}
