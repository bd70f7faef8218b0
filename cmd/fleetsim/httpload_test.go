package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		h    string
		want time.Duration
	}{
		{"", time.Second},
		{"0", 0},
		{"3", 3 * time.Second},
		{"3600", time.Minute},
		{"soon", time.Second},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tt.h, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestSTSRequest(t *testing.T) {
	cfg := testRunConfig(t, "--sts-devices", "1", "--mix", "log=1,gps=4,kinematic=2,adas=1,boot=1")
	l := newHTTPLoad(cfg, nil, time.Now())
	d := l.devices[0]
	sawBoot, sawMulti := false, false
	for seq := int64(1); seq <= 200; seq++ {
		d.seq = seq
		req := stsRequest(cfg.mix, "r1", d, 1763780000123)
		var body struct {
			DeviceNo string `json:"device_no"`
			Seq      int64  `json:"seq"`
			Records  []struct {
				Kind string `json:"kind"`
				Run  string `json:"run"`
				TS   int64  `json:"ts"`
			} `json:"records"`
		}
		if err := json.Unmarshal(req.body, &body); err != nil {
			t.Fatalf("invalid JSON %s: %v", req.body, err)
		}
		if body.DeviceNo != "STS-00000001" || body.Seq != seq {
			t.Fatalf("body %s", req.body)
		}
		if req.path == "/boot" {
			sawBoot = true
			if len(req.types) != 1 || cfg.mix.types[req.types[0]] != typeBoot || body.Records != nil {
				t.Fatalf("boot request %s types %v", req.body, req.types)
			}
			continue
		}
		if len(body.Records) != len(req.types) || len(req.types) == 0 {
			t.Fatalf("%d records, types %v", len(body.Records), req.types)
		}
		sawMulti = sawMulti || len(req.types) > 1
		kinds := map[string]bool{}
		for i, r := range body.Records {
			if kinds[r.Kind] {
				t.Fatalf("two %s records in one request: %s", r.Kind, req.body)
			}
			kinds[r.Kind] = true
			if r.Kind != stsKind(cfg.mix.types[req.types[i]]) || r.Kind == "boot" || r.Run != "r1" || r.TS == 0 {
				t.Fatalf("record %d %+v for type %s", i, r, cfg.mix.types[req.types[i]])
			}
		}
	}
	if !sawBoot || !sawMulti {
		t.Errorf("200 requests: boot %v, several records %v; want both", sawBoot, sawMulti)
	}
}

// TestCSARequest checks that verify reads a CSA request's seq back from the
// ts the gateway makes of dt.
func TestCSARequest(t *testing.T) {
	cfg := testRunConfig(t, "--csa-devices", "1")
	started := time.Date(2026, 11, 22, 2, 53, 5, 700e6, time.UTC)
	l := newHTTPLoad(cfg, nil, started)
	if l.csaBaseMS != 1795315985000 {
		t.Fatalf("csa base %d", l.csaBaseMS)
	}
	d := l.devices[0]
	d.seq = 1
	req := csaRequest(cfg.mix, d, l.csaBaseMS)
	form, err := url.ParseQuery(string(req.body))
	if err != nil {
		t.Fatal(err)
	}
	// 2026-11-22T02:53:06Z is 11:53:06 in Seoul (shared/samples/legacy/README.md).
	if req.path != "/log" || form.Get("tid") != "CSA0000001" || form.Get("dt") != "20261122115306" {
		t.Fatalf("request %s %s", req.path, req.body)
	}
	for _, k := range []string{"lat", "lon", "spd", "dir", "sat", "ign", "bat", "odo", "fuel", "lock"} {
		if form.Get(k) == "" {
			t.Errorf("no %s in %s", k, req.body)
		}
	}
	if len(req.types) != 2 {
		t.Errorf("types %v, want gps and log", req.types)
	}
	local, _ := time.ParseInLocation("20060102150405", form.Get("dt"), kst)
	c := &checker{hdr: ackedHeader{CSABaseMS: l.csaBaseMS}}
	ts, _ := json.Marshal(local.UnixMilli())
	if seq, ok := c.seqOf(&reportValue{TS: ts, Source: "csa"}); !ok || seq != 1 {
		t.Errorf("seq read back %d %v, want 1", seq, ok)
	}
}

// TestHTTPLoad runs STS and CSA terminals against a TLS server that answers
// 503 to the first attempt of every third request.
func TestHTTPLoad(t *testing.T) {
	var mu sync.Mutex
	attempts := map[string]int{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		attempts[string(body)]++
		n, total := attempts[string(body)], len(attempts)
		mu.Unlock()
		if r.Method != http.MethodPost || (r.URL.Path != "/log" && r.URL.Path != "/boot") {
			http.Error(w, "bad path", http.StatusNotFound)
			return
		}
		if n == 1 && total%3 == 0 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"accepted":1}`)
	}))
	defer srv.Close()

	ackedPath := filepath.Join(t.TempDir(), "acked.jsonl")
	cfg := testRunConfig(t, "--mqtt", "", "--https", strings.TrimPrefix(srv.URL, "https://"),
		"--sts-devices", "3", "--csa-devices", "2", "--messages", "12", "--progress", "0",
		"--mix", "log=1,gps=4,kinematic=2,adas=1,boot=1", "--acked", ackedPath)
	sum, err := simulate(context.Background(), context.Background(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	h := sum.HTTPS
	if h.Acked != 60 || h.Unacked != 0 || h.Resent == 0 || h.Failed != h.Resent || h.Sent != 60+h.Resent {
		t.Fatalf("summary %+v", h)
	}
	if sum.Records < 60 || sum.Records != h.Records {
		t.Errorf("records %d", sum.Records)
	}

	f, err := os.Open(ackedPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	acked, err := readAcked(f)
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[string]*spans{}
	var resent int64
	for _, l := range acked.Lines {
		if len(l.Unacked) > 0 {
			t.Errorf("unacked in %+v", l)
		}
		s := seqs[l.Device]
		if s == nil {
			s = new(spans)
			seqs[l.Device] = s
		}
		*s = append(*s, l.Seq...)
		resent += l.Resent.count()
		if (l.Source == "csa") != strings.HasPrefix(l.Device, "CSA") {
			t.Errorf("source %s for %s", l.Source, l.Device)
		}
	}
	if len(seqs) != 5 || resent == 0 {
		t.Fatalf("devices %d, resent seqs %d", len(seqs), resent)
	}
	for dev, s := range seqs {
		s.normalize()
		if len(*s) != 1 || (*s)[0] != (span{1, 12}) {
			t.Errorf("%s acked %v over its types, want [1,12]", dev, *s)
		}
	}
	if acked.Header.CSABaseMS == 0 || acked.Header.CSABaseMS%1000 != 0 {
		t.Errorf("csa base %d", acked.Header.CSABaseMS)
	}
}

// TestHTTPLoadPermanentFailure: a 400 is not retried and its seqs are unacked.
func TestHTTPLoadPermanentFailure(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"device_no: missing"}`, http.StatusBadRequest)
	}))
	defer srv.Close()
	cfg := testRunConfig(t, "--mqtt", "", "--https", strings.TrimPrefix(srv.URL, "https://"),
		"--sts-devices", "1", "--messages", "3", "--progress", "0")
	sum, err := simulate(context.Background(), context.Background(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	h := sum.HTTPS
	if h.Sent != 3 || h.Acked != 0 || h.Failed != 3 || h.Unacked != 3 || h.Resent != 0 {
		t.Fatalf("summary %+v", h)
	}
	if len(h.Errors) != 1 {
		t.Errorf("errors %v, want the 400 noted", h.Errors)
	}
}
