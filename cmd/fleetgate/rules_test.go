package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the rules command tests")

// golden is a test file of named sections, each introduced by a line
// "-- name --", as in Caddy's adapt tests and Go's txtar.
type golden struct {
	order    []string
	sections map[string]string
}

func readGolden(t *testing.T, path string) *golden {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g := &golden{sections: map[string]string{}}
	name := ""
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "-- ") && strings.HasSuffix(s, " --") {
			name = strings.TrimSuffix(strings.TrimPrefix(s, "-- "), " --")
			g.order = append(g.order, name)
			g.sections[name] = ""
			continue
		}
		if name != "" {
			g.sections[name] += line
		}
	}
	return g
}

func (g *golden) set(name, value string) {
	if _, ok := g.sections[name]; !ok {
		g.order = append(g.order, name)
	}
	g.sections[name] = value
}

func (g *golden) write(t *testing.T, path string) {
	t.Helper()
	var b strings.Builder
	for _, name := range g.order {
		b.WriteString("-- " + name + " --\n")
		v := g.sections[name]
		if v != "" && !strings.HasSuffix(v, "\n") {
			v += "\n"
		}
		b.WriteString(v)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRulesTestGolden runs "fleetgate rules test" on each
// testdata/rulestest/*.txt: its args and payload sections are the input,
// its stdout, stderr and exit sections the expected result. go test
// -update rewrites the expected sections.
func TestRulesTestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/rulestest/*.txt")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			g := readGolden(t, path)
			args := append([]string{"rules", "test"}, strings.Fields(g.sections["args"])...)
			if p, ok := g.sections["payload"]; ok {
				args = append(args, "--payload", strings.TrimSuffix(p, "\n"))
			}
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			got := map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "exit": strconv.Itoa(code) + "\n"}
			if *updateGolden {
				for _, k := range []string{"stdout", "stderr", "exit"} {
					g.set(k, got[k])
				}
				g.write(t, path)
				return
			}
			for _, k := range []string{"stdout", "stderr", "exit"} {
				if want := g.sections[k]; got[k] != want {
					t.Errorf("%s:\n got: %s\nwant: %s", k, got[k], want)
				}
			}
		})
	}
}

// TestRulesCheckGolden runs "fleetgate rules check" on each
// testdata/check/*.yaml and compares its output and exit code with the
// .golden file beside it.
func TestRulesCheckGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/check/*.yaml")
	if len(files) == 0 {
		t.Fatal("no test configurations")
	}
	for _, path := range files {
		if strings.HasSuffix(path, ".rules.yaml") {
			continue // a rules_file of another configuration
		}
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"rules", "check", "--config", path}, &stdout, &stderr)
			got := "exit " + strconv.Itoa(code) + "\n" + stdout.String() + stderr.String()
			goldenPath := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *updateGolden {
				if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestRulesUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rules"}, 2, "want check or test"},
		{[]string{"rules", "lint"}, 2, `unknown subcommand "lint"`},
		{[]string{"rules", "check"}, 2, "want --config FILE"},
		{[]string{"rules", "test", "--payload", "{}"}, 2, "want --topic"},
		{[]string{"rules", "test", "--topic", "a/+"}, 2, "wildcard"},
		{[]string{"rules", "test", "--topic", "report"}, 2, "want one of --payload and --payload-file"},
		{[]string{"rules", "test", "--topic", "report", "--payload", "{}", "--now", "yesterday"}, 2, "neither RFC 3339 nor epoch milliseconds"},
		{[]string{"rules", "test", "--topic", "report", "--payload", "{}", "--config", "testdata/nope.yaml"}, 1, "testdata/nope.yaml: open: no such file or directory"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(c.args, &stdout, &stderr); code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr.String(), c.code, c.want)
		}
	}
}

func TestRulesTestReadsStdin(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := rulesTest([]string{"--topic", "report", "--client-id", "D1", "--now", "1763780000000", "--payload-file", "-"},
		&stdout, &stderr, strings.NewReader("\x00\x01binary"))
	if code != 0 || !strings.Contains(stdout.String(), `"reason":"eval_error"`) || !strings.Contains(stdout.String(), `"value":"\u0000\u0001binary"`) {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
	}
}
