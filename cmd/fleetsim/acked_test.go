package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestSpans(t *testing.T) {
	var s spans
	for _, q := range []int64{1, 2, 3, 7, 8, 5, 3, 4, 20} {
		s.add(q)
	}
	s.normalize()
	want := spans{{1, 5}, {7, 8}, {20, 20}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("spans = %v, want %v", s, want)
	}
	for q, in := range map[int64]bool{0: false, 1: true, 5: true, 6: false, 7: true, 8: true, 9: false, 20: true, 21: false} {
		if s.contains(q) != in {
			t.Errorf("contains(%d) = %v", q, !in)
		}
	}
	if s.count() != 8 {
		t.Errorf("count = %d, want 8", s.count())
	}
}

func TestAckedFileRoundTrip(t *testing.T) {
	types := []string{"gps", "log"}
	l := newLedger("SIM-000001", "mqtt", len(types))
	l.settle(0, 1, true, 1)
	l.settle(1, 2, true, 1)
	l.settle(0, 3, true, 2) // acked after a re-send
	l.settle(0, 4, false, 3)
	l.settle(0, 5, true, 1)
	empty := newLedger("SIM-000002", "mqtt", len(types))
	var buf bytes.Buffer
	if err := writeAcked(&buf, ackedHeader{Run: "r1", QoS: 1, CSABaseMS: 1000}, types, []*ledger{l, empty}); err != nil {
		t.Fatal(err)
	}
	wantText := `{"fleetsim":"acked/v1","run":"r1","started":"","qos":1,"csa_base_ms":1000}
{"device":"SIM-000001","source":"mqtt","type":"gps","topic":"message-gps","seq":[[1,1],[3,3],[5,5]],"unacked":[[4,4]],"resent":[[3,4]]}
{"device":"SIM-000001","source":"mqtt","type":"log","topic":"message-log","seq":[[2,2]]}
`
	if buf.String() != wantText {
		t.Fatalf("acked file:\n%s\nwant:\n%s", buf.String(), wantText)
	}
	f, err := readAcked(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if f.Header.Run != "r1" || f.Header.CSABaseMS != 1000 || len(f.Lines) != 2 {
		t.Fatalf("read back %+v", f)
	}
	gps := f.Lines[0]
	if !reflect.DeepEqual(gps.Seq, spans{{1, 1}, {3, 3}, {5, 5}}) || !reflect.DeepEqual(gps.Resent, spans{{3, 4}}) {
		t.Errorf("gps line read back as %+v", gps)
	}
}

func TestReadAcked(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		lines             int
	}{
		{name: "no header, merged lines", lines: 1, in: `{"device":"D","topic":"t","seq":[[5,6]]}
{"device":"D","topic":"t","seq":[[1,4]]}`},
		{name: "bad format", in: `{"fleetsim":"acked/v9"}`, wantErr: "format"},
		{name: "late header", in: `{"device":"D","topic":"t"}
{"fleetsim":"acked/v1"}`, wantErr: "header after"},
		{name: "no device", in: `{"topic":"t"}`, wantErr: "required"},
		{name: "reversed", in: `{"device":"D","topic":"t","seq":[[5,4]]}`, wantErr: "reversed"},
		{name: "not json", in: `{"device":`, wantErr: "value 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := readAcked(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Lines) != tt.lines {
				t.Fatalf("%d lines, want %d", len(f.Lines), tt.lines)
			}
			if !reflect.DeepEqual(f.Lines[0].Seq, spans{{1, 6}}) {
				t.Errorf("merged seq = %v", f.Lines[0].Seq)
			}
		})
	}
}
