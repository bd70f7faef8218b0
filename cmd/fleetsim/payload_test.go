package main

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		types   []string
		wantErr string
	}{
		{in: "log=1,gps=4,kinematic=2,adas=1,boot=0", types: []string{"log", "gps", "kinematic", "adas"}},
		{in: " gps = 3 , tpms=1,", types: []string{"gps", "tpms"}},
		{in: "gps", wantErr: "want type=weight"},
		{in: "gps=1,gps=2", wantErr: "given twice"},
		{in: "gps=-1", wantErr: "weight"},
		{in: "GPS=1", wantErr: "type must be"},
		{in: "gps=0,log=0", wantErr: "no type has a positive weight"},
		{in: "", wantErr: "no type has a positive weight"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := parseMix(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(m.types, ",") != strings.Join(tt.types, ",") {
				t.Fatalf("types = %v, want %v", m.types, tt.types)
			}
		})
	}
}

func TestMixPickFollowsWeights(t *testing.T) {
	m, err := parseMix("log=1,gps=4,kinematic=2,adas=1,boot=0")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, len(m.types))
	const n = 80000
	for range n {
		counts[m.pick(r)]++
	}
	for i, want := range []float64{1.0 / 8, 4.0 / 8, 2.0 / 8, 1.0 / 8} {
		if got := float64(counts[i]) / n; got < want*0.95 || got > want*1.05 {
			t.Errorf("%s drawn %.3f of the time, want %.3f", m.types[i], got, want)
		}
	}
}

func TestAppendReport(t *testing.T) {
	v := newVehicle(rand.New(rand.NewPCG(3, 4)))
	for i, typ := range []string{typeLog, typeGPS, typeKinematic, typeADAS, typeBoot, "tpms"} {
		for _, size := range []int{0, 150, 300, 1000} {
			h := reportHeader{typ: typ, device: "SIM-000042", ts: 1763780000000, seq: 7, run: "abcd1234"}
			// The same random draws with and without padding.
			r := func() *rand.Rand { return rand.New(rand.NewPCG(5, uint64(i))) }
			b := appendReport(nil, h, v, r(), size)
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s size %d: invalid JSON %s: %v", typ, size, b, err)
			}
			if got["type"] != typ || got["device_no"] != "SIM-000042" || got["seq"] != 7.0 ||
				got["ts"] != 1763780000000.0 || got["run"] != "abcd1234" {
				t.Errorf("%s: header fields wrong: %s", typ, b)
			}
			natural := len(appendReport(nil, h, v, r(), 0))
			switch {
			case size <= natural && typ != typeKinematic && len(b) != natural:
				t.Errorf("%s size %d: %d bytes, want the natural %d", typ, size, len(b), natural)
			case size > natural && typ != typeKinematic && len(b) != size:
				t.Errorf("%s size %d: %d bytes, want exactly %d", typ, size, len(b), size)
			case size > natural && typ == typeKinematic && (len(b) > size || len(b) < size-10):
				t.Errorf("%s size %d: %d bytes, want %d-10..%d", typ, size, len(b), size, size)
			}
			if typ == typeKinematic {
				samples, _ := got["samples"].([]any)
				if len(samples) < 2 {
					t.Errorf("kinematic size %d: %d samples, want at least 2", size, len(samples))
				}
				if size == 1000 && len(samples) < 20 {
					t.Errorf("kinematic size 1000: %d samples, want the size filled with samples", len(samples))
				}
			}
		}
	}
}

// TestGenerateSeqPerDevice checks that a connection carrying several devices
// numbers each device's messages 1, 2, 3... and serves them round robin.
func TestGenerateSeqPerDevice(t *testing.T) {
	cfg := testRunConfig(t, "--devices", "6", "--connections", "2", "--size", "300")
	l := newMQTTLoad(cfg, nil)
	c := l.conns[1]
	if len(c.devices) != 3 || c.devices[0].id != "SIM-000002" || c.devices[1].id != "SIM-000004" {
		t.Fatalf("connection 1 devices = %v", c.devices)
	}
	last := map[string]int64{}
	for range 30 {
		m := c.generate()
		var rep struct {
			DeviceNo string `json:"device_no"`
			Seq      int64  `json:"seq"`
			Type     string `json:"type"`
		}
		if err := json.Unmarshal(m.payload, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Seq != last[rep.DeviceNo]+1 || rep.Seq != m.seq || rep.DeviceNo != m.dev.id {
			t.Fatalf("%s seq %d after %d", rep.DeviceNo, rep.Seq, last[rep.DeviceNo])
		}
		if rep.Type != cfg.mix.types[m.typ] {
			t.Fatalf("type %q, message says %q", rep.Type, cfg.mix.types[m.typ])
		}
		last[rep.DeviceNo] = rep.Seq
	}
	for _, d := range c.devices {
		if last[d.id] != 10 {
			t.Errorf("%s got %d messages of 30, want 10", d.id, last[d.id])
		}
	}
}

func testRunConfig(t *testing.T, args ...string) *runConfig {
	t.Helper()
	cfg, err := parseRunFlags(append([]string{"--seed", "1", "--run-id", "testrun"}, args...), testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestParseRunFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: nil},
		{args: []string{"--devices", "10", "--connections", "20"}, wantErr: "--connections"},
		{args: []string{"--inflight", "0"}, wantErr: "--inflight"},
		{args: []string{"--qos", "3"}, wantErr: "--qos"},
		{args: []string{"--mqtt", "", "--sts-devices", "0"}, wantErr: "nothing to simulate"},
		{args: []string{"--csa-devices", "1", "--mix", "kinematic=1"}, wantErr: "--csa-devices needs gps or log"},
		{args: []string{"--topic", "a/+"}, wantErr: "--topic"},
		{args: []string{"extra"}, wantErr: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cfg, err := parseRunFlags(tt.args, testWriter{t})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.duration.Seconds() != 30 || cfg.connections != cfg.devices {
					t.Errorf("defaults: duration %v, connections %d", cfg.duration, cfg.connections)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	cfg, err := parseRunFlags([]string{"--messages", "5"}, testWriter{t})
	if err != nil || cfg.duration != 0 {
		t.Errorf("--messages alone: duration %v, err %v; want no duration limit", cfg.duration, err)
	}
}
