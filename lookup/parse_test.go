package lookup

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseJSONL(t *testing.T) {
	data := "{\"device_no\": \"861\", \"vin\": \"WDB1\", \"year\": 2021}\n" +
		"\n" + // blank lines are skipped
		"{\"vin\":\"WDB2\",\"device_no\":862,\"nested\":{\"device_no\":\"no\"}}\r\n" +
		"{\"device_no\":\"8\\u00363\",\"s\":\"a\\\"}b\"}\n" +
		"{\"device_no\":\"x\",\"device_no\":\"861\",\"vin\":\"WDB1-new\"}" // no final newline; replaces line 1; the last of a twice-given member keys
	rows, err := parseJSONL([]byte(data), "device_no")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"861": `{"device_no":"x","device_no":"861","vin":"WDB1-new"}`,
		"862": `{"vin":"WDB2","device_no":862,"nested":{"device_no":"no"}}`,
		"863": `{"device_no":"8\u00363","s":"a\"}b"}`,
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %q", len(rows), len(want), rows)
	}
	for k, w := range want {
		if got := string(rows[k]); got != w {
			t.Errorf("rows[%q] = %s, want %s", k, got, w)
		}
	}
}

func TestParseJSONLErrors(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"not an object", "{\"device_no\":\"1\"}\n[1,2]\n", "line 2: not a JSON object"},
		{"bad JSON", "{\"device_no\":\"1\"\n", "line 1: unexpected end of JSON input"},
		{"no key", "{\"device_no\":\"1\"}\n{\"vin\":\"x\"}\n", `line 2: no member "device_no"`},
		{"nested key only", "{\"a\":{\"device_no\":\"1\"}}", `line 1: no member "device_no"`},
		{"key is an object", "{\"device_no\":{}}", `line 1: member "device_no" must be a string or a number, not {}`},
		{"key is null", "{\"device_no\":null}", `must be a string or a number, not null`},
		{"key is empty", "{\"device_no\":\"\"}", `line 1: member "device_no" is empty`},
		{"trailing garbage", "{\"device_no\":\"1\"} x", "line 1: invalid character 'x'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseJSONL([]byte(tc.data), "device_no")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseCSV(t *testing.T) {
	data := "device_no,vin,plate\n861,WDB1,\"B-FG 1\"\n862,WDB2,\"say \"\"hi\"\"\\\"\n"
	rows, err := parseCSV([]byte(data), "device_no")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"861": `{"device_no":"861","vin":"WDB1","plate":"B-FG 1"}`,
		"862": `{"device_no":"862","vin":"WDB2","plate":"say \"hi\"\\"}`,
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows: %q", len(rows), rows)
	}
	for k, w := range want {
		if got := string(rows[k]); got != w {
			t.Errorf("rows[%q] = %s, want %s", k, got, w)
		}
	}
}

func TestByteOrderMark(t *testing.T) {
	csvRows, err := parseCSV([]byte("\xef\xbb\xbfdevice_no,vin\n861,WDB1\n"), "device_no")
	if err != nil || string(csvRows["861"]) != `{"device_no":"861","vin":"WDB1"}` {
		t.Errorf("CSV with a BOM: %q, %v", csvRows, err)
	}
	jsonRows, err := parseJSONL([]byte("\xef\xbb\xbf{\"device_no\":\"861\"}\n"), "device_no")
	if err != nil || len(jsonRows) != 1 {
		t.Errorf("JSONL with a BOM: %q, %v", jsonRows, err)
	}
}

func TestParseCSVErrors(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "no header row"},
		{"no key column", "vin,plate\nx,y\n", `line 1: the header has no column "device_no"`},
		{"short row", "device_no,vin\n1,a\n2\n", "record on line 3: wrong number of fields"},
		{"empty key", "device_no,vin\n,a\n", `line 2: the key column "device_no" is empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCSV([]byte(tc.data), "device_no")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":       `"plain"`,
		"a\"b\\c":     `"a\"b\\c"`,
		"tab\tnl\n":   `"tab\u0009nl\u000a"`,
		"ü€😀":         `"ü€😀"`,
		"bad\xffutf8": `"bad\ufffdutf8"`,
	} {
		if got := string(appendJSONString(nil, in)); got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzParseJSONL: a lookup file is outside input; parsing must not panic,
// and every row it accepts must carry its key.
func FuzzParseJSONL(f *testing.F) {
	f.Add([]byte("{\"k\":\"1\",\"v\":[1,{\"k\":2}]}\n{\"k\":2}"), "k")
	f.Add([]byte("{\"a\\\"k\":\"x\",\"k\":\"\\u0031\"}"), "k")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		rows, err := parseJSONL(data, key)
		if err != nil {
			return
		}
		for k, row := range rows {
			if k == "" || len(row) == 0 || row[0] != '{' {
				t.Fatalf("row %q = %q", k, row)
			}
			if _, ok := member(row, key); !ok {
				t.Fatalf("row %q has no member %q: %s", k, key, row)
			}
		}
	})
}

// FuzzParseCSV: a CSV lookup file is outside input too; every row it
// accepts must be a valid JSON object carrying its key.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("k,v\n1,\"a,b\"\n2,\"x\"\"y\"\n"), "k")
	f.Add([]byte("k\n\xff\n"), "k")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		rows, err := parseCSV(data, key)
		if err != nil {
			return
		}
		for k, row := range rows {
			if !json.Valid(row) || row[0] != '{' {
				t.Fatalf("row %q is not a JSON object: %q", k, row)
			}
			if _, ok := member(row, key); !ok {
				t.Fatalf("row %q has no member %q: %s", k, key, row)
			}
		}
	})
}
