package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"default", DefaultConfig(), ""},
		{"disabled", Config{}, ""},
		{"no port", Config{Listen: "localhost"}, "admin.listen"},
		{"pprof without listener", Config{PProf: true}, "admin.pprof"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func start(t *testing.T, cfg Config, ready ReadyFunc) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetgate_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(7)
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, reg, ready, zap.NewNop())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return s, reg
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	var down atomic.Bool
	s, _ := start(t, Config{}, func() error {
		if down.Load() {
			return errors.New("kafka unreachable")
		}
		return nil
	})
	base := "http://" + s.Addr()
	cases := []struct {
		name, path string
		down       bool
		status     int
		body       string
	}{
		{"healthz", "/healthz", false, 200, "ok"},
		{"healthz while not ready", "/healthz", true, 200, "ok"},
		{"readyz", "/readyz", false, 200, "ready"},
		{"readyz says why not", "/readyz", true, 503, "not ready: kafka unreachable"},
		{"metrics", "/metrics", false, 200, "fleetgate_test_total 7"},
		{"pprof off by default", "/debug/pprof/", false, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			down.Store(tc.down)
			status, body := get(t, base+tc.path)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("GET %s: %d %q; want %d containing %q", tc.path, status, body, tc.status, tc.body)
			}
		})
	}
}

func TestPProfSwitch(t *testing.T) {
	s, _ := start(t, Config{PProf: true}, func() error { return nil })
	status, body := get(t, "http://"+s.Addr()+"/debug/pprof/")
	if status != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("GET /debug/pprof/: %d %.80q", status, body)
	}
}
