package lookup

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// fleetRow is a typical vehicle row: about 200 bytes of JSON.
func fleetRow(i int) string {
	return fmt.Sprintf(`{"device_no":"86%013d","vin":"WDB96340%09d","plate":"B-FG %04d","fleet":"north-%02d",`+
		`"model":"Actros 1845","year":%d,"capacity_kg":18000,"active":true,"depot":{"city":"Berlin","zone":%d}}`,
		i, i, i%10000, i%50, 2015+i%10, i%7)
}

func writeRows(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "vehicles.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		w.WriteString(fleetRow(i))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkLoad1M loads a million-row JSONL file and reports the time of a
// load (ns/op) and the heap the loaded table keeps (MiB, B/row).
func BenchmarkLoad1M(b *testing.B) {
	const n = 1_000_000
	path := writeRows(b, n)
	st, _ := os.Stat(path)
	b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
	var kept uint64
	for b.Loop() {
		b.StopTimer()
		before := heapInUse()
		b.StartTimer()
		t, err := LoadFile("vehicles", TableConfig{File: path, Key: "device_no"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		kept = heapInUse() - before
		if t.Len() != n {
			b.Fatalf("loaded %d rows", t.Len())
		}
		if _, ok := t.Row("86" + fmt.Sprintf("%013d", n-1)); !ok {
			b.Fatal("last row missing")
		}
		runtime.KeepAlive(t)
		b.StartTimer()
	}
	b.ReportMetric(float64(kept)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(kept)/n, "heap-B/row")
}

// BenchmarkLoad1MDecoded is the alternative not taken: the same rows kept
// as decoded objects (map[string]any), for the memory comparison in
// docs/benchmarks.md.
func BenchmarkLoad1MDecoded(b *testing.B) {
	const n = 1_000_000
	var kept uint64
	for b.Loop() {
		b.StopTimer()
		before := heapInUse()
		b.StartTimer()
		rows := make(map[string]map[string]any, n)
		for i := range n {
			var m map[string]any
			if err := json.Unmarshal([]byte(fleetRow(i)), &m); err != nil {
				b.Fatal(err)
			}
			rows[m["device_no"].(string)] = m
		}
		b.StopTimer()
		kept = heapInUse() - before
		runtime.KeepAlive(rows)
		b.StartTimer()
	}
	b.ReportMetric(float64(kept)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(kept)/n, "heap-B/row")
}

// BenchmarkGet is the message path: a hit in a million-row table.
func BenchmarkGet(b *testing.B) {
	const n = 1_000_000
	rows := make(map[string][]byte, n)
	keys := make([]string, 1024)
	for i := range n {
		k := "86" + strconv.Itoa(1_000_000_000+i)
		rows[k] = []byte(fleetRow(i))
		if i%(n/len(keys)) == 0 && i/(n/len(keys)) < len(keys) {
			keys[i/(n/len(keys))] = k
		}
	}
	t := NewTable("vehicles", nil)
	t.replace(rows, t0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := t.Row(keys[i%len(keys)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

var t0 = time.Unix(0, 0)

// BenchmarkGetDecoded is what lookup() costs a message: a hit and the
// decoding of the row into the rule language's values.
func BenchmarkGetDecoded(b *testing.B) {
	t := NewTable("vehicles", nil)
	t.replace(map[string][]byte{"861": []byte(fleetRow(861))}, t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := t.Get("861"); !ok {
			b.Fatal("miss")
		}
	}
}
