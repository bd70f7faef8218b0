// Package admin is the gateway's operations HTTP listener: Prometheus
// metrics, liveness and readiness for load balancers and orchestrators, and
// optionally Go's profiler. It binds admin.listen (default 127.0.0.1:8080).
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Config is the admin: section of the configuration.
type Config struct {
	// Listen is the admin HTTP listener, host:port. Default
	// "127.0.0.1:8080"; empty disables it. It has no authentication: keep
	// it on a private interface.
	Listen string `mapstructure:"listen"`
	// PProf serves Go's profiler under /debug/pprof/ (admin.pprof).
	// Default false.
	PProf bool `mapstructure:"pprof"`
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config { return Config{Listen: "127.0.0.1:8080"} }

// Validate checks the configuration; its errors name the key at fault.
func (c Config) Validate() error {
	if c.Listen == "" {
		if c.PProf {
			return errors.New("admin.pprof needs admin.listen")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("admin.listen: %q is not [host]:port: %v", c.Listen, err)
	}
	return nil
}

// ReadyFunc says whether the gateway should get traffic: nil, or why not.
// It is called for every /readyz request and must answer at once (cached
// checks only).
type ReadyFunc func() error

// Server is the admin HTTP server. Start it once and Shutdown it once; its
// methods are safe for concurrent use.
type Server struct {
	cfg  Config
	log  *zap.Logger
	http *http.Server

	mu   sync.Mutex
	ln   net.Listener
	done chan struct{}
}

// New returns a server over gatherer (the metrics) and ready. log may not be
// nil.
func New(cfg Config, gatherer prometheus.Gatherer, ready ReadyFunc, log *zap.Logger) *Server {
	mux := http.NewServeMux()
	errLog, _ := zap.NewStdLogAt(log, zap.WarnLevel) // only fails for an invalid level
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog: errLog,
		// A collector error still serves the other series: one bad gauge
		// must not blind the dashboards.
		ErrorHandling: promhttp.ContinueOnError,
		// Bounds the scrape work if a scraper misbehaves.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			text(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		text(w, http.StatusOK, "ready")
	})
	if cfg.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &Server{
		cfg: cfg,
		log: log,
		http: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			// A CPU profile or trace runs for ?seconds= (30 by default).
			WriteTimeout: 2 * time.Minute,
			IdleTimeout:  2 * time.Minute,
			ErrorLog:     errLog,
		},
	}
}

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(strings.TrimSpace(body) + "\n"))
}

// Start binds admin.listen and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen %s: %w", s.cfg.Listen, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.done = make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", zap.Error(err))
		}
	}()
	s.log.Info("admin listening", zap.Stringer("addr", ln.Addr()), zap.Bool("pprof", s.cfg.PProf))
	return nil
}

// Addr returns the bound address, or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the listener and waits for requests in progress until ctx
// ends, then closes what is left. Safe to call more than once and before
// Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	if done != nil {
		<-done
	}
	return err
}
