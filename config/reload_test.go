package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleetgate/fleetgate/router"
)

// rulesYAML is a rules file with one rule sending everything on topic
// report to topic.
func rulesYAML(topic string) string {
	return "rules:\n  - name: to-" + topic + "\n    sql: SELECT * FROM 'report'\n    actions:\n      - kafka: {topic: " + topic + "}\n"
}

// topicSink stores the topic of every record.
type topicSink struct {
	mu     sync.Mutex
	topics []string
}

func (s *topicSink) Produce(_ context.Context, rec *router.Record, done func(error)) error {
	s.mu.Lock()
	s.topics = append(s.topics, rec.Topic)
	s.mu.Unlock()
	done(nil)
	return nil
}

// routeOne processes one message and returns the topic it went to.
func routeOne(t *testing.T, e *router.Engine, sink *topicSink) string {
	t.Helper()
	res := make(chan error, 1)
	e.Process(context.Background(), &router.Message{Topic: "report", Payload: []byte(`{"type":"log"}`)}, func(err error) { res <- err })
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	return sink.topics[len(sink.topics)-1]
}

// rig is a rules file, an engine running its rules and a started Reloader.
type rig struct {
	path    string
	engine  *router.Engine
	sink    *topicSink
	results chan bool
	logs    *observer.ObservedLogs
	rl      *Reloader
}

func newRig(t *testing.T, dir string, check func(context.Context, *router.Rules) error) *rig {
	t.Helper()
	r := &rig{path: filepath.Join(dir, "rules.yaml"), sink: &topicSink{}, results: make(chan bool, 16)}
	if _, err := os.Stat(r.path); err != nil {
		writeFile(t, dir, "rules.yaml", rulesYAML("first"))
	}
	cfg, err := Load(writeFile(t, t.TempDir(), "config.yaml", "rules_file: "+r.path+"\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := router.Compile(cfg.Rules)
	if err != nil {
		t.Fatal(err)
	}
	r.engine = router.NewEngine(rules, r.sink, router.Options{}, zap.NewNop())
	core, logs := observer.New(zap.InfoLevel)
	r.logs = logs
	r.rl = NewReloader(cfg, r.engine, ReloaderOptions{
		Debounce: 50 * time.Millisecond,
		Check:    check,
		OnReload: func(ok bool) { r.results <- ok },
	}, zap.New(core))
	if err := r.rl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.rl.Close() })
	return r
}

// result waits for the next reload attempt.
func (r *rig) result(t *testing.T, within time.Duration) bool {
	t.Helper()
	select {
	case ok := <-r.results:
		return ok
	case <-time.After(within):
		t.Fatalf("no reload within %v", within)
		return false
	}
}

func TestReloadAppliesAValidChangeWithinTwoSeconds(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	if got := routeOne(t, r.engine, r.sink); got != "first" {
		t.Fatalf("routed to %s before the change", got)
	}
	start := time.Now()
	writeFile(t, filepath.Dir(r.path), "rules.yaml", rulesYAML("second"))
	if !r.result(t, 2*time.Second) {
		t.Fatalf("valid change rejected: %v", r.logs.All())
	}
	if got := routeOne(t, r.engine, r.sink); got != "second" {
		t.Fatalf("routed to %s after the change", got)
	}
	t.Logf("applied %v after the write", time.Since(start).Round(time.Millisecond))
}

func TestReloadRejectsAnInvalidChange(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	writeFile(t, filepath.Dir(r.path), "rules.yaml", "rules:\n  - name: broken\n    sql: SELECT * FORM 'report'\n    actions: [{kafka: {topic: x}}]\n")
	if r.result(t, 2*time.Second) {
		t.Fatal("an invalid file was swapped in")
	}
	if got := routeOne(t, r.engine, r.sink); got != "first" {
		t.Fatalf("routed to %s; the previous rules must stay in force", got)
	}
	entries := r.logs.FilterMessageSnippet("rules reload rejected").All()
	if len(entries) != 1 {
		t.Fatalf("logs: %v", r.logs.All())
	}
	problems := entries[0].ContextMap()["problems"]
	if want := r.path + ":3:19: rules[0] (broken) sql: line 1, column 10: expected FROM"; !strings.Contains(strings.Join(toStrings(problems), "\n"), want) {
		t.Fatalf("logged problems %v, want %q", problems, want)
	}
	// Fixing the file applies it.
	writeFile(t, filepath.Dir(r.path), "rules.yaml", rulesYAML("fixed"))
	if !r.result(t, 2*time.Second) || routeOne(t, r.engine, r.sink) != "fixed" {
		t.Fatal("the fixed file was not applied")
	}
}

func toStrings(v any) []string {
	switch v := v.(type) {
	case []string:
		return v
	case []any:
		var out []string
		for _, x := range v {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// TestReloadRenameOnSave saves as editors do: write a temporary file beside
// the rules file, then rename it over the rules file.
func TestReloadRenameOnSave(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir, nil)
	for _, topic := range []string{"saved-once", "saved-twice"} {
		tmp := writeFile(t, dir, ".rules.yaml.swp", rulesYAML(topic))
		if err := os.Rename(tmp, r.path); err != nil {
			t.Fatal(err)
		}
		if !r.result(t, 2*time.Second) || routeOne(t, r.engine, r.sink) != topic {
			t.Fatalf("rename-on-save to %s not applied", topic)
		}
	}
}

// TestReloadConfigMapSymlinkSwap reproduces a Kubernetes ConfigMap volume:
// rules.yaml -> ..data/rules.yaml, ..data -> ..<timestamp>, and an update
// that writes a new timestamped directory and renames a new ..data link
// over the old one.
func TestReloadConfigMapSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, topic string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), "rules.yaml", rulesYAML(topic))
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_11_22_04_00_00.1", "first")
	if err := os.Symlink(filepath.Join("..data", "rules.yaml"), filepath.Join(dir, "rules.yaml")); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, dir, nil)
	version("..2026_11_22_04_05_00.2", "from-configmap")
	if err := os.RemoveAll(filepath.Join(dir, "..2026_11_22_04_00_00.1")); err != nil {
		t.Fatal(err)
	}
	if !r.result(t, 2*time.Second) || routeOne(t, r.engine, r.sink) != "from-configmap" {
		t.Fatal("ConfigMap update not applied")
	}
}

func TestReloadCheckRejects(t *testing.T) {
	r := newRig(t, t.TempDir(), func(_ context.Context, rules *router.Rules) error {
		for _, topic := range rules.LiteralTopics() {
			if topic == "forbidden" {
				return errors.New("kafka topics missing from the cluster: forbidden")
			}
		}
		return nil
	})
	writeFile(t, filepath.Dir(r.path), "rules.yaml", rulesYAML("forbidden"))
	if r.result(t, 2*time.Second) || routeOne(t, r.engine, r.sink) != "first" {
		t.Fatal("rules that failed the check were swapped in")
	}
}

func TestReloadOnDemand(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	// SIGHUP reloads even when nothing changed.
	if err := r.rl.Reload(context.Background()); err != nil || !r.result(t, time.Second) {
		t.Fatalf("Reload: %v", err)
	}
	// Rules inline in the configuration file are reloaded from it.
	dir := t.TempDir()
	cfgPath := writeFile(t, dir, "config.yaml", "log: {level: info}\n"+rulesYAML("inline"))
	cfg, err := Load(cfgPath, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	sink := &topicSink{}
	rules, _ := router.Compile(cfg.Rules)
	e := router.NewEngine(rules, sink, router.Options{}, zap.NewNop())
	rl := NewReloader(cfg, e, ReloaderOptions{}, zap.NewNop())
	writeFile(t, dir, "config.yaml", "log: {level: debug}\n"+rulesYAML("inline-changed"))
	if err := rl.Reload(context.Background()); err != nil || routeOne(t, e, sink) != "inline-changed" || rl.Path() != cfgPath {
		t.Fatalf("inline reload: %v", err)
	}
	// The development default has nothing to reload.
	def, _ := Load("", noEnv)
	if err := NewReloader(def, e, ReloaderOptions{}, zap.NewNop()).Reload(context.Background()); !errors.Is(err, ErrNoRulesFile) {
		t.Fatalf("got %v, want ErrNoRulesFile", err)
	}
}

func TestFileWatcherIgnoresOtherFilesAndUnchangedContent(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "rules.yaml", rulesYAML("a"))
	calls := make(chan struct{}, 8)
	w, err := WatchFile(path, 20*time.Millisecond, func() { calls <- struct{}{} }, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	writeFile(t, dir, "other.yaml", "x")            // another file
	writeFile(t, dir, "rules.yaml", rulesYAML("a")) // same content
	select {
	case <-calls:
		t.Fatal("called without a change of content")
	case <-time.After(300 * time.Millisecond):
	}
	writeFile(t, dir, "rules.yaml", rulesYAML("b"))
	select {
	case <-calls:
	case <-time.After(2 * time.Second):
		t.Fatal("not called after a change")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}
