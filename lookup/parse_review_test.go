package lookup

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestParseCSVMemory: a CSV table keeps its rows and keys and nothing
// more: no key pins the whole record the CSV reader read it from, and the
// rows' buffer is not a grown buffer's spare capacity.
func TestParseCSVMemory(t *testing.T) {
	const n = 4000
	var b strings.Builder
	b.WriteString("device_no,note\n")
	cell := strings.Repeat("x", 4096)
	for i := range n {
		fmt.Fprintf(&b, "86%013d,%s\n", i, cell)
	}
	data := []byte(b.String())
	before := heapInUse()
	rows, err := parseCSV(data, "device_no")
	if err != nil {
		t.Fatal(err)
	}
	kept := heapInUse() - before
	var ideal int
	for k, r := range rows {
		ideal += len(k) + len(r)
	}
	runtime.KeepAlive(rows)
	runtime.KeepAlive(data)
	if len(rows) != n {
		t.Fatalf("%d rows", len(rows))
	}
	if float64(kept) > 1.3*float64(ideal) {
		t.Errorf("the table keeps %d bytes of heap for %d bytes of rows and keys", kept, ideal)
	}
}

func TestParseCSVDuplicateColumn(t *testing.T) {
	_, err := parseCSV([]byte("device_no,vin,device_no\n1,a,2\n"), "device_no")
	if err == nil || !strings.Contains(err.Error(), `line 1: column "device_no" is named twice`) {
		t.Fatalf("err = %v", err)
	}
}

// TestNumberKeys: a number key in a JSONL file is keyed as lookup() looks
// a number up (router.lookupKey): 42, 42.0 and 4.2e1 are "42".
func TestNumberKeys(t *testing.T) {
	for _, tc := range []struct{ num, key string }{
		{"42", "42"}, {"42.0", "42"}, {"4.2e1", "42"}, {"-7", "-7"}, {"-0", "0"}, {"1.5", "1.5"}, {"1.50", "1.5"},
		{"860000000000000042", "860000000000000042"},     // beyond 2^53, exact
		{"99999999999999999999", "99999999999999999999"}, // beyond int64, as written
		{"1e300", "1e+300"},
	} {
		rows, err := parseJSONL([]byte(`{"device_no":`+tc.num+`}`), "device_no")
		if err != nil {
			t.Fatalf("%s: %v", tc.num, err)
		}
		if _, ok := rows[tc.key]; !ok {
			t.Errorf("%s is keyed %q, want %q", tc.num, keys(rows), tc.key)
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
