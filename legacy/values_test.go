package legacy

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAppendScaled(t *testing.T) {
	tests := []struct {
		v        int64
		decimals int
		want     string
	}{
		{37566500, 6, "37.5665"},
		{126978000, 6, "126.978"},
		{-500, 6, "-0.0005"},
		{0, 6, "0"},
		{90000000, 6, "90"},
		{-180000000, 6, "-180"},
		{1, 6, "0.000001"},
		{126, 1, "12.6"},
		{120, 1, "12"},
		{5, 1, "0.5"},
		{1234567, 1, "123456.7"},
		{math.MaxInt64, 1, "922337203685477580.7"},
		{math.MinInt64, 1, "-922337203685477580.8"},
	}
	for _, tt := range tests {
		if got := string(appendScaled(nil, tt.v, tt.decimals)); got != tt.want {
			t.Errorf("appendScaled(%d, %d) = %s, want %s", tt.v, tt.decimals, got, tt.want)
		}
	}
}

// TestAppendScaledMatchesParse checks, over many values, that the printed
// decimal parses back to the nearest float64 of the exact quotient.
func TestAppendScaledMatchesParse(t *testing.T) {
	for v := int64(-180_000_000); v <= 180_000_000; v += 1_234_567 {
		s := string(appendScaled(nil, v, 6))
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := strconv.ParseFloat(strconv.FormatInt(v, 10)+"e-6", 64)
		if f != want {
			t.Fatalf("%d → %s", v, s)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "ctl\x00\x01\x1f\n\r\t", "ünï€ode", "</script>"} {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Errorf("appendString(%q) = %s (back %q, %v)", s, got, back, err)
		}
	}
}

func TestSplitObject(t *testing.T) {
	in := []byte(`{ "a" : 1 , "b\"c":{"x":[1,"]}"]}, "d":"e\\" ,"f":[ ], "g":-1.5e3,"h":null}`)
	got := splitObject(in)
	want := []struct{ name, value string }{
		{"a", `1`}, {`b"c`, `{"x":[1,"]}"]}`}, {"d", `"e\\"`}, {"f", `[ ]`}, {"g", `-1.5e3`}, {"h", `null`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d members: %+v", len(got), got)
	}
	for i, m := range got {
		if string(m.name) != want[i].name || string(m.value) != want[i].value {
			t.Errorf("member %d = %q:%s, want %q:%s", i, m.name, m.value, want[i].name, want[i].value)
		}
	}
	if got := splitObject([]byte(`{}`)); len(got) != 0 {
		t.Errorf("empty object: %+v", got)
	}
}

func TestSplitArray(t *testing.T) {
	got := splitArray([]byte(`[ 1 ,"a,b", [2,[3]] ,{"k":"]"},true ]`))
	var s []string
	for _, e := range got {
		s = append(s, string(e))
	}
	want := []string{`1`, `"a,b"`, `[2,[3]]`, `{"k":"]"}`, `true`}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %q, want %q", s, want)
	}
	if got := splitArray([]byte(`[]`)); len(got) != 0 {
		t.Errorf("empty array: %q", got)
	}
}

func TestAppendCompact(t *testing.T) {
	got := string(appendCompact(nil, []byte("{ \"a b\" : [ 1 , \"x \\\" y\" ] ,\n\"c\":\t{} }")))
	if want := `{"a b":[1,"x \" y"],"c":{}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestSeoulOffset(t *testing.T) {
	_, off := time.Date(2026, 7, 1, 12, 0, 0, 0, seoul()).Zone()
	if off != 9*60*60 {
		t.Fatalf("Asia/Seoul offset in July 2026 = %ds, want +09:00", off)
	}
	_, off = time.Date(2026, 1, 1, 12, 0, 0, 0, seoul()).Zone()
	if off != 9*60*60 {
		t.Fatalf("Asia/Seoul offset in January 2026 = %ds, want +09:00", off)
	}
}

func TestRepeatedName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{}`, ""},
		{`[]`, ""},
		{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, ""},
		{`{"a":"a","b":"a"}`, ""},
		{`{"a":1,"a":2}`, ".a"},
		{`{"a":1,"\u0061":2}`, ".a"},
		{`[1,[2,{"x":{"y":[],"y":1}}]]`, "[1][1].x.y"},
		{`{"o":{"p":[null,true,"s",{"q":0, "q" :0}]}}`, ".o.p[3].q"},
		{`{"a b":{"":1,"":2}}`, `["a b"][""]`},
		{`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":0,"k11":1,"k12":2,"k13":3,"k14":4,"k15":5,"k16":6,"k17":7,"k3":8}`, ".k3"},
	} {
		if got := repeatedName([]byte(tt.in)); got != tt.want {
			t.Errorf("repeatedName(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRepeatedNameDeep checks that a deeply nested value is walked once: a
// per-level rescan would take seconds here.
func TestRepeatedNameDeep(t *testing.T) {
	const depth = 9000
	v := strings.Repeat(`{"a":[`, depth) + `{"z":1,"z":2}` + strings.Repeat(`]}`, depth)
	start := time.Now()
	got := repeatedName([]byte(v))
	if !strings.HasSuffix(got, ".a[0].z") || strings.Count(got, ".a[0]") != depth {
		t.Fatalf("path of %d levels: %.40q...", depth, got)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}
