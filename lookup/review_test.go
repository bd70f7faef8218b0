package lookup_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/fleetgate/fleetgate/lookup"
)

// TestFileTableConfigMapSwap: Kubernetes mounts a ConfigMap's key as a
// symbolic link through "..data", itself a link to a timestamped directory
// that an update swaps atomically. The swap is a change of the table.
func TestFileTableConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "vehicles.jsonl"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_12_01_a", `{"device_no":"1","vin":"a"}`+"\n")
	link("..2026_12_01_a", "..data")
	link("..data/vehicles.jsonl", "vehicles.jsonl")

	obs := newCounts()
	set, err := lookup.Open(lookup.Config{"vehicles": {File: filepath.Join(dir, "vehicles.jsonl"), Key: "device_no"}},
		lookup.Options{Log: zaptest.NewLogger(t), Observer: obs, Watch: watch(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	tb, _ := set.Lookup("vehicles")
	if got := get(tb, "1"); got != `{"device_no":"1","vin":"a"}` {
		t.Fatalf("1 = %s", got)
	}

	version("..2026_12_01_b", `{"device_no":"1","vin":"b"}`+"\n"+`{"device_no":"2","vin":"b"}`+"\n")
	link("..2026_12_01_b", "..data")
	if err := os.RemoveAll(filepath.Join(dir, "..2026_12_01_a")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload after the ..data swap", func() bool { return get(tb, "1") == `{"device_no":"1","vin":"b"}` && tb.Len() == 2 })

	// A swap to a version whose file is broken keeps the last good rows.
	version("..2026_12_01_c", `{"device_no":`+"\n")
	link("..2026_12_01_c", "..data")
	waitFor(t, "the refused reload", func() bool { return obs.get(&obs.failures, "vehicles") == 1 })
	if tb.Len() != 2 {
		t.Errorf("rows after a broken version: %d, want 2", tb.Len())
	}
}

// TestFileTableInPlaceWrite: a file rewritten in place can be seen
// half-written; the half is refused and the whole is loaded once written.
func TestFileTableInPlaceWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vehicles.jsonl")
	writeFile(t, path, `{"device_no":"1","vin":"a"}`+"\n")
	obs := newCounts()
	set, err := lookup.Open(lookup.Config{"vehicles": {File: path, Key: "device_no"}},
		lookup.Options{Log: zaptest.NewLogger(t), Observer: obs, Watch: watch(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	tb, _ := set.Lookup("vehicles")
	whole := `{"device_no":"1","vin":"b"}` + "\n" + `{"device_no":"2","vin":"b"}` + "\n"
	if err := os.WriteFile(path, []byte(whole[:40]), 0o644); err != nil { // cut inside the second row
		t.Fatal(err)
	}
	waitFor(t, "the refused half-written file", func() bool { return obs.get(&obs.failures, "vehicles") == 1 })
	if got := get(tb, "1"); got != `{"device_no":"1","vin":"a"}` {
		t.Errorf("1 after a half-written file = %s", got)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, whole[40:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the whole file", func() bool { return tb.Len() == 2 && get(tb, "1") == `{"device_no":"1","vin":"b"}` })
}

// TestFileTableChangedWhileOpening: a file that changes between the first
// load and the start of its watch must not stay stale: the watch's
// baseline is taken before the load.
func TestFileTableChangedWhileOpening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vehicles.jsonl")
	writeFile(t, path, `{"device_no":"1","vin":"old"}`+"\n")
	real := watch(t)
	changed := false
	racing := func(p string, onChange func()) (io.Closer, error) {
		if !changed { // the deploy tool's rename lands now, once
			changed = true
			writeFile(t, path, `{"device_no":"1","vin":"new"}`+"\n")
		}
		return real(p, onChange)
	}
	set, err := lookup.Open(lookup.Config{"vehicles": {File: path, Key: "device_no"}},
		lookup.Options{Log: zaptest.NewLogger(t), Watch: racing})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	tb, _ := set.Lookup("vehicles")
	waitFor(t, "the new content", func() bool { return get(tb, "1") == `{"device_no":"1","vin":"new"}` })
}
