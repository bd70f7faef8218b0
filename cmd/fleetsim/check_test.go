package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// Partitions the Java client's default partitioner picks (from
// kafka/partitioner_test.go, computed with kafka-clients 4.1.2).
func TestExpectedPartitionMatchesJava(t *testing.T) {
	for _, tt := range []struct {
		key     string
		p6, p12 int32
	}{
		{"D1", 2, 8}, {"STS-00000123", 1, 7}, {"CSA0000042", 2, 2}, {"차량1", 4, 10}, {"abc", 3, 3},
	} {
		if got := expectedPartition(tt.key, 6); got != tt.p6 {
			t.Errorf("%q of 6: %d, Java %d", tt.key, got, tt.p6)
		}
		if got := expectedPartition(tt.key, 12); got != tt.p12 {
			t.Errorf("%q of 12: %d, Java %d", tt.key, got, tt.p12)
		}
	}
}

const (
	topicGPS = "message-gps"
	topicLog = "message-log"
	// D1 hashes to partition 2 of 6.
	testDev  = "D1"
	testPart = 2
)

// stream builds records of D1 (unless changed) in topic and partition, with
// consecutive offsets.
type stream struct {
	recs []kafkaRecord
	off  map[[2]any]int64
}

func (s *stream) add(topic string, part int32, key, value string) *stream {
	if s.off == nil {
		s.off = map[[2]any]int64{}
	}
	k := [2]any{topic, part}
	s.recs = append(s.recs, kafkaRecord{Topic: topic, Partition: part, Offset: s.off[k], Key: []byte(key), Value: []byte(value)})
	s.off[k]++
	return s
}

// seqs adds D1's records of seqs to topic, in the right partition.
func (s *stream) seqs(topic string, seqs ...int64) *stream {
	for _, q := range seqs {
		s.add(topic, testPart, testDev, fmt.Sprintf(`{"type":"x","device_no":"D1","ts":1,"seq":%d,"run":"r1"}`, q))
	}
	return s
}

const ackedD1 = `{"fleetsim":"acked/v1","run":"r1","qos":1,"csa_base_ms":1763780000000}
{"device":"D1","source":"mqtt","type":"gps","topic":"message-gps","seq":[[1,3],[5,5]],"unacked":[[6,6]],"resent":[[3,3]]}
{"device":"D1","source":"mqtt","type":"log","topic":"message-log","seq":[[4,4]]}
`

func TestChecker(t *testing.T) {
	tests := []struct {
		name      string
		acked     string
		recs      *stream
		noPartChk bool
		want      map[string]int64 // violation kind → count
		check     func(t *testing.T, r *Report)
	}{
		{
			name: "clean",
			recs: new(stream).seqs(topicGPS, 1, 2, 3, 5).seqs(topicLog, 4),
			check: func(t *testing.T, r *Report) {
				if r.Total.Found != 5 || r.Expected != 5 || r.Total.Checked != 5 {
					t.Errorf("totals %+v", r.Total)
				}
			},
		},
		{
			name: "loss",
			recs: new(stream).seqs(topicGPS, 1, 3, 5),
			want: map[string]int64{vLoss: 2},
			check: func(t *testing.T, r *Report) {
				first := r.Violations[0].First
				if len(first) != 2 || first[0].Topic != topicGPS || first[0].Seq != 2 || first[1].Topic != topicLog || first[1].Seq != 4 {
					t.Errorf("losses %+v", first)
				}
			},
		},
		{
			name:  "loss of a range is one entry",
			acked: `{"device":"D1","topic":"message-gps","seq":[[1,10]]}`,
			recs:  new(stream).seqs(topicGPS, 1, 2, 3, 7),
			want:  map[string]int64{vLoss: 6},
			check: func(t *testing.T, r *Report) {
				first := r.Violations[0].First
				if len(first) != 2 || first[0].Seq != 4 || first[0].SeqTo != 6 || first[1].Seq != 8 || first[1].SeqTo != 10 {
					t.Errorf("losses %+v", first)
				}
			},
		},
		{
			name: "reordering",
			recs: new(stream).seqs(topicGPS, 1, 3, 2, 5).seqs(topicLog, 4),
			want: map[string]int64{vReorder: 1},
			check: func(t *testing.T, r *Report) {
				v := r.Violations[0].First[0]
				if v.Seq != 2 || v.Offset != 2 || v.Partition != testPart || v.Detail != "after seq 3" {
					t.Errorf("reorder %+v", v)
				}
			},
		},
		{
			name: "duplicate of a re-sent seq is allowed, also after later seqs",
			recs: new(stream).seqs(topicGPS, 1, 2, 3, 3, 5, 3).seqs(topicLog, 4),
			check: func(t *testing.T, r *Report) {
				if r.Total.DupAllowed != 2 {
					t.Errorf("dup_allowed = %d, want 2", r.Total.DupAllowed)
				}
			},
		},
		{
			name: "duplicate of a seq sent once is not",
			recs: new(stream).seqs(topicGPS, 1, 2, 2, 3, 5).seqs(topicLog, 4),
			want: map[string]int64{vDuplicate: 1},
		},
		{
			name: "re-send after a lost ack: 1 2 3 then 2 3 again (only 3 re-sent) flags 2",
			recs: new(stream).seqs(topicGPS, 1, 2, 3, 2, 3, 5).seqs(topicLog, 4),
			want: map[string]int64{vDuplicate: 1},
		},
		{
			name: "wrong key",
			recs: new(stream).seqs(topicGPS, 1, 2).
				add(topicGPS, testPart, "SIM-1", `{"device_no":"D1","seq":3}`).seqs(topicGPS, 5).seqs(topicLog, 4),
			want: map[string]int64{vWrongKey: 1},
		},
		{
			name: "wrong partition",
			recs: new(stream).seqs(topicGPS, 1, 2, 3).
				add(topicGPS, 0, testDev, `{"device_no":"D1","seq":5}`).seqs(topicLog, 4),
			want: map[string]int64{vWrongPartition: 1},
			check: func(t *testing.T, r *Report) {
				if v := r.Violations[0].First[0]; v.Partition != 0 || v.Detail != "want partition 2 of 6" {
					t.Errorf("violation %+v", v)
				}
			},
		},
		{
			name:      "wrong partition not checked without --partitions-check",
			noPartChk: true,
			recs: new(stream).seqs(topicGPS, 1, 2, 3).
				add(topicGPS, 0, testDev, `{"device_no":"D1","seq":5}`).seqs(topicLog, 4),
		},
		{
			name: "order is per partition",
			// 5 in partition 0 before 3 in partition 2 is no reordering
			// (the partition itself is, when checked).
			noPartChk: true,
			recs: new(stream).seqs(topicGPS, 1, 2).add(topicGPS, 0, testDev, `{"device_no":"D1","seq":5}`).
				seqs(topicGPS, 3).seqs(topicLog, 4),
		},
		{
			name: "misrouted",
			recs: new(stream).seqs(topicGPS, 1, 2, 3, 5).seqs(topicLog, 4, 2),
			want: map[string]int64{vMisrouted: 1},
			check: func(t *testing.T, r *Report) {
				if v := r.Violations[0].First[0]; v.Topic != topicLog || v.Seq != 2 || v.Detail != "sent as gps (message-gps)" {
					t.Errorf("violation %+v", v)
				}
			},
		},
		{
			name: "extras are allowed and counted",
			recs: new(stream).seqs(topicGPS, 1, 2, 3, 5, 6, 7).seqs(topicLog, 4).
				add(topicGPS, expectedPartition("D9", 6), "D9", `{"device_no":"D9","seq":1}`),
			check: func(t *testing.T, r *Report) {
				if r.Total.UnackedExtras != 1 || r.Total.UnknownExtras != 2 {
					t.Errorf("unacked extras %d (want 1: seq 6), unknown %d (want 2: seq 7, D9)", r.Total.UnackedExtras, r.Total.UnknownExtras)
				}
			},
		},
		{
			name: "an unknown seq still counts for ordering",
			recs: new(stream).seqs(topicGPS, 1, 2, 7, 3, 5).seqs(topicLog, 4),
			want: map[string]int64{vReorder: 2},
		},
		{
			name: "other runs, unreadable values and seq-less records are ignored",
			recs: new(stream).
				add(topicGPS, testPart, testDev, `{"device_no":"D1","seq":2,"run":"old"}`).
				add(topicGPS, testPart, testDev, `not json`).
				add(topicGPS, testPart, testDev, `{"seq":1}`).
				add(topicGPS, testPart, testDev, `{"device_no":"D1"}`).
				seqs(topicGPS, 1, 2, 3, 5).seqs(topicLog, 4),
			check: func(t *testing.T, r *Report) {
				if r.Total.OtherRun != 1 || r.Total.Unparseable != 2 || r.Total.NoSeq != 1 {
					t.Errorf("totals %+v", r.Total)
				}
			},
		},
		{
			name: "CSA records: seq from ts",
			acked: `{"fleetsim":"acked/v1","run":"r1","qos":1,"csa_base_ms":1763780000000}
{"device":"D1","source":"csa","type":"gps","topic":"message-gps","seq":[[1,2]]}`,
			recs: new(stream).
				add(topicGPS, testPart, testDev, `{"type":"gps","device_no":"D1","ts":1763780001000,"source":"csa"}`).
				add(topicGPS, testPart, testDev, `{"type":"gps","device_no":"D1","ts":1763780002000,"source":"csa"}`),
		},
		{
			name:  "seq as a string or float is read",
			acked: `{"device":"D1","topic":"message-gps","seq":[[1,2]]}`,
			recs: new(stream).
				add(topicGPS, testPart, testDev, `{"device_no":"D1","seq":"1"}`).
				add(topicGPS, testPart, testDev, `{"device_no":"D1","seq":2.0}`),
		},
		{
			name:  "topics not read are reported, not lost",
			acked: `{"device":"D1","topic":"message-tpms","seq":[[1,2]]}`,
			recs:  new(stream),
			check: func(t *testing.T, r *Report) {
				if len(r.Skipped) != 1 || r.Skipped[0] != "message-tpms" || r.Expected != 0 {
					t.Errorf("skipped %v expected %d", r.Skipped, r.Expected)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acked := tt.acked
			if acked == "" {
				acked = ackedD1
			}
			f, err := readAcked(strings.NewReader(acked))
			if err != nil {
				t.Fatal(err)
			}
			parts := map[string]int32{topicGPS: 6, topicLog: 6}
			if tt.noPartChk {
				parts = nil
			}
			c := newChecker(f, []string{topicGPS, topicLog}, parts, 20)
			for _, r := range tt.recs.recs {
				c.observe(r)
			}
			rep := c.report()
			got := map[string]int64{}
			for _, g := range rep.Violations {
				got[g.Kind] = g.Count
			}
			if fmt.Sprint(got) != fmt.Sprint(orEmpty(tt.want)) {
				t.Errorf("violations %v, want %v", got, orEmpty(tt.want))
			}
			if rep.OK != (len(tt.want) == 0) {
				t.Errorf("OK = %v", rep.OK)
			}
			if tt.check != nil {
				tt.check(t, rep)
			}
			var buf bytes.Buffer
			rep.writeText(&buf, "acked.jsonl")
			if t.Failed() {
				t.Log(buf.String())
			}
		})
	}
}

func orEmpty(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

func TestCheckerRemainingAndListCap(t *testing.T) {
	f, err := readAcked(strings.NewReader(`{"device":"D1","topic":"message-gps","seq":[[1,30]]}`))
	if err != nil {
		t.Fatal(err)
	}
	c := newChecker(f, []string{topicGPS}, nil, 20)
	if c.remaining != 30 {
		t.Fatalf("remaining %d, want 30", c.remaining)
	}
	s := new(stream)
	for q := int64(1); q <= 30; q++ {
		s.seqs(topicGPS, q, q)
	}
	for _, r := range s.recs {
		c.observe(r)
	}
	if c.remaining != 0 {
		t.Fatalf("remaining %d after every seq, want 0", c.remaining)
	}
	rep := c.report()
	if len(rep.Violations) != 1 || rep.Violations[0].Count != 30 || len(rep.Violations[0].First) != 20 {
		t.Fatalf("violations %+v, want 30 duplicates with 20 listed", rep.Violations)
	}
	var buf bytes.Buffer
	rep.writeText(&buf, "a.jsonl")
	for _, want := range []string{"duplicate: 30 records (first 20 listed)", "D1 message-gps partition 2 offset 1 seq 1: never re-sent", "FAILED: 30 violations"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestSeqSet(t *testing.T) {
	var s seqSet
	for _, q := range []int64{1, 64, 65, 1 << 40, -3, 100000} {
		if s.has(q) {
			t.Errorf("has(%d) before add", q)
		}
		s.add(q)
		if !s.has(q) {
			t.Errorf("!has(%d) after add", q)
		}
	}
	if len(s.bits) > 2000 {
		t.Errorf("bitset grew to %d words for a far-away seq", len(s.bits))
	}
	if s.has(2) || s.has(1<<40+1) {
		t.Error("has a seq never added")
	}
}
