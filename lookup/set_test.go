package lookup_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/lookup"
)

// counts is an Observer that remembers what it was told.
type counts struct {
	mu                                sync.Mutex
	rows                              map[string]int
	hits, misses, refreshed, failures map[string]int
}

func newCounts() *counts {
	return &counts{rows: map[string]int{}, hits: map[string]int{}, misses: map[string]int{},
		refreshed: map[string]int{}, failures: map[string]int{}}
}

func (c *counts) LookupRows(t string, n int) { c.mu.Lock(); c.rows[t] = n; c.mu.Unlock() }
func (c *counts) LookupHit(t string)         { c.mu.Lock(); c.hits[t]++; c.mu.Unlock() }
func (c *counts) LookupMiss(t string)        { c.mu.Lock(); c.misses[t]++; c.mu.Unlock() }
func (c *counts) LookupRefreshed(t string, _ time.Time) {
	c.mu.Lock()
	c.refreshed[t]++
	c.mu.Unlock()
}
func (c *counts) LookupRefreshFailed(t string) { c.mu.Lock(); c.failures[t]++; c.mu.Unlock() }

func (c *counts) get(m *map[string]int, t string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return (*m)[t]
}

// watch is the gateway's file watcher, with a short quiet period.
func watch(t *testing.T) lookup.WatchFunc {
	return func(path string, onChange func()) (io.Closer, error) {
		return config.WatchFile(path, 20*time.Millisecond, onChange, zaptest.NewLogger(t))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Write beside and rename over, as editors and deploy tools do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func get(tb *lookup.Table, key string) string {
	row, ok := tb.Row(key)
	if !ok {
		return "<absent>"
	}
	return string(row)
}

func TestFileTableReloadsKeepingLastGood(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vehicles.jsonl")
	writeFile(t, path, `{"device_no":"861","vin":"WDB1"}`+"\n")
	obs := newCounts()
	set, err := lookup.Open(lookup.Config{"vehicles": {File: path, Key: "device_no"}},
		lookup.Options{Log: zaptest.NewLogger(t), Observer: obs, Watch: watch(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	if err := set.Ready(); err != nil {
		t.Fatalf("Ready = %v after a file load", err)
	}
	tb, ok := set.Lookup("vehicles")
	if !ok {
		t.Fatal("no table vehicles")
	}
	if got := get(tb, "861"); got != `{"device_no":"861","vin":"WDB1"}` {
		t.Fatalf("861 = %s", got)
	}
	if got := get(tb, "862"); got != "<absent>" {
		t.Fatalf("862 = %s", got)
	}
	if obs.get(&obs.hits, "vehicles") != 1 || obs.get(&obs.misses, "vehicles") != 1 || obs.get(&obs.rows, "vehicles") != 1 {
		t.Errorf("observer: %+v", obs)
	}

	// A change is picked up live.
	writeFile(t, path, `{"device_no":"861","vin":"WDB1-new"}`+"\n"+`{"device_no":"862","vin":"WDB2"}`+"\n")
	waitFor(t, "the reload", func() bool { return get(tb, "862") == `{"device_no":"862","vin":"WDB2"}` })
	if got := get(tb, "861"); got != `{"device_no":"861","vin":"WDB1-new"}` {
		t.Errorf("861 after reload = %s", got)
	}

	// A broken file is refused whole: the last good table stays.
	writeFile(t, path, `{"device_no":"863","vin":"WDB3"}`+"\n"+`{"device_no":`+"\n")
	waitFor(t, "the refused reload", func() bool { return obs.get(&obs.failures, "vehicles") == 1 })
	if got := get(tb, "863"); got != "<absent>" {
		t.Errorf("a half-good file was applied: 863 = %s", got)
	}
	if tb.Len() != 2 || obs.get(&obs.rows, "vehicles") != 2 {
		t.Errorf("rows after a refused reload: %d (observer %d), want 2", tb.Len(), obs.get(&obs.rows, "vehicles"))
	}

	// A deleted file too, then a good one again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload of a missing file", func() bool { return obs.get(&obs.failures, "vehicles") == 2 })
	writeFile(t, path, "device_no,vin\n")
	writeFile(t, path, `{"device_no":"864","vin":"WDB4"}`+"\n")
	waitFor(t, "the reload after the file came back", func() bool { return tb.Len() == 1 && get(tb, "864") != "<absent>" })
}

func TestOpenFailsOnABadFirstLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	writeFile(t, good, "device_no,vin\n1,a\n")
	bad := filepath.Join(dir, "bad.jsonl")
	writeFile(t, bad, "{\"vin\":\"a\"}\n")
	_, err := lookup.Open(lookup.Config{"good": {File: good, Key: "device_no"}, "vehicles": {File: bad, Key: "device_no"}},
		lookup.Options{Watch: watch(t)})
	if err == nil || !strings.Contains(err.Error(), `lookups.vehicles.file: `+bad+`: line 1: no member "device_no"`) {
		t.Fatalf("Open = %v", err)
	}
	_, err = lookup.Open(lookup.Config{"vehicles": {File: filepath.Join(dir, "none.jsonl"), Key: "k"}}, lookup.Options{Watch: watch(t)})
	if err == nil || !strings.Contains(err.Error(), "lookups.vehicles.file: open ") {
		t.Fatalf("Open of a missing file = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  lookup.Config
		want string
	}{
		{"ok", lookup.Config{"vehicles": {File: "v.jsonl", Key: "device_no"}, "registry": {KafkaTopic: "vehicle-registry"}}, ""},
		{"neither", lookup.Config{"v": {}}, "lookups.v: give file or kafka_topic"},
		{"both", lookup.Config{"v": {File: "a.csv", Key: "k", KafkaTopic: "t"}}, "lookups.v: file and kafka_topic are both set"},
		{"no key", lookup.Config{"v": {File: "a.csv"}}, "lookups.v.key is required with lookups.v.file"},
		{"key with kafka", lookup.Config{"v": {KafkaTopic: "t", Key: "k"}}, "lookups.v.key: not used with kafka_topic"},
		{"extension", lookup.Config{"v": {File: "a.json", Key: "k"}}, `lookups.v.file: "a.json": the name must end in .jsonl, .ndjson or .csv`},
		{"name", lookup.Config{"1v": {File: "a.csv", Key: "k"}}, "lookups.1v: the table name must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	got := lookup.Config{"a": {File: "v.csv"}, "b": {File: "/abs.csv"}}.Resolve("/etc/fleetgate")
	if got["a"].File != "/etc/fleetgate/v.csv" || got["b"].File != "/abs.csv" {
		t.Errorf("Resolve = %+v", got)
	}
}

func kafkaClient(t *testing.T, addr string) sarama.Client {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_9_0_0
	sc.Consumer.Return.Errors = true
	sc.Consumer.MaxWaitTime = 20 * time.Millisecond
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	c, err := sarama.NewClient([]string{addr}, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestKafkaTableCatchesUpAndFollows(t *testing.T) {
	const topic = "vehicle-registry"
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Listen: "127.0.0.1:0", Topics: []string{topic, "empty"}, Partitions: 3}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	client := kafkaClient(t, e.Addr())
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	send := func(key string, value []byte) {
		t.Helper()
		msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key)}
		if value != nil {
			msg.Value = sarama.ByteEncoder(value)
		}
		if _, _, err := prod.SendMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
	// History before the gateway starts: 300 vehicles, some changed, one
	// deleted, one bad record.
	for i := range 300 {
		send(key(i), []byte(`{"vin": "v`+key(i)+`"}`))
	}
	send(key(7), []byte(`{"vin":"changed"}`))
	send(key(8), nil)
	send(key(9), []byte(`[not an object`))

	obs := newCounts()
	set := openReady(t, lookup.Config{"registry": {KafkaTopic: topic}, "empty": {KafkaTopic: "empty"}},
		lookup.Options{Log: zaptest.NewLogger(t), Observer: obs, Kafka: client})
	tb, _ := set.Lookup("registry")
	if tb.Len() != 299 {
		t.Errorf("rows after catching up = %d, want 299", tb.Len())
	}
	for k, want := range map[string]string{key(0): `{"vin":"v` + key(0) + `"}`, key(7): `{"vin":"changed"}`,
		key(8): "<absent>", key(9): `{"vin":"v` + key(9) + `"}`} {
		if got := get(tb, k); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	if n := obs.get(&obs.failures, "registry"); n != 1 {
		t.Errorf("refused records counted %d, want 1", n)
	}

	// Followed live after start.
	send("new", []byte(`{"vin":"live"}`))
	send(key(0), nil)
	waitFor(t, "live changes", func() bool { return get(tb, "new") == `{"vin":"live"}` && get(tb, key(0)) == "<absent>" })
	waitFor(t, "the rows gauge", func() bool { return obs.get(&obs.rows, "registry") == 299 })

	if err := set.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := set.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestKafkaTableUnknownTopic(t *testing.T) {
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Listen: "127.0.0.1:0", Partitions: 1}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	sc := sarama.NewConfig()
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 10 * time.Millisecond
	client, err := sarama.NewClient([]string{e.Addr()}, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	_, err = lookup.Open(lookup.Config{"registry": {KafkaTopic: "nope"}}, lookup.Options{Kafka: client})
	if err == nil || !strings.Contains(err.Error(), `lookups.registry.kafka_topic: topic "nope"`) {
		t.Fatalf("Open = %v", err)
	}
}

// openReady opens a Set and waits until its Kafka tables caught up.
func openReady(t *testing.T, cfg lookup.Config, opts lookup.Options) *lookup.Set {
	t.Helper()
	set, err := lookup.Open(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := set.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return set
}

func key(i int) string { return "86" + strconv.Itoa(1000+i) }
