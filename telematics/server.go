package telematics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
)

// Ingester takes the messages of one request and returns when all are stored
// (nil) or not (error). It must keep the order of msgs for each ClientID and
// return ctx's error when ctx is done first. An error that implements
// interface{ Unavailable() bool } with Unavailable() true (Kafka unreachable,
// memory bound reached), context.DeadlineExceeded or context.Canceled makes
// the request a 503 with Retry-After; any other error a 500. Ingest is called
// concurrently for different devices, never for the same device.
type Ingester interface {
	Ingest(ctx context.Context, msgs []router.Message) error
}

// Server is the legacy HTTPS telematics endpoint. Create it with New, then
// Start it once and Shutdown it once; its methods are safe for concurrent
// use.
type Server struct {
	cfg        Config
	ing        Ingester
	log        *zap.Logger
	obs        Observer
	tlsConfig  *tls.Config
	certSHA256 func() string // the current certificate's fingerprint
	selfSigned bool
	tokens     *tokenSet // nil: no authentication
	limit      Limiter   // nil: request bodies are not counted
	order      deviceOrder
	http       *http.Server

	// ingestCtx is the parent of every Ingest call. It is not the request's
	// context, so a terminal that hangs up does not cut its own request's
	// messages in the middle; Shutdown cancels it when it runs out of time.
	ingestCtx    context.Context
	cancelIngest context.CancelFunc

	mu        sync.Mutex
	state     serverState
	ln        net.Listener
	serveDone chan struct{}
	draining  bool           // no more handlers may start
	handlers  sync.WaitGroup // handlers in progress
}

type serverState int

const (
	stateNew serverState = iota
	stateRunning
	stateStopped
)

// New checks cfg, reads the tokens file and the certificate (or generates a
// self-signed one) and returns a server that is not listening yet. ing
// receives the messages of every accepted request; log may be nil.
func New(cfg Config, ing Ingester, log *zap.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ing == nil {
		return nil, errors.New("telematics: nil Ingester")
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("telematics")
	s := &Server{cfg: cfg, ing: ing, log: log, obs: nopObserver{}}
	for _, o := range opts {
		o(s)
	}

	if cfg.Auth.TokensFile != "" {
		tokens, err := loadTokens(cfg.Auth.TokensFile)
		if err != nil {
			return nil, err
		}
		s.tokens = tokens
		if names := tokens.unboundNames(); len(names) > 0 {
			log.Warn("telematics.auth.tokens_file: tokens without a device list may send data for any device; list the devices each may speak for (or \"*\" to mean any)",
				zap.Strings("tokens", names))
		}
	}
	// HTTP/1.1 only: terminals speak it, and the per-connection timeouts
	// below mean what they say (HTTP/2 multiplexes requests on one).
	var err error
	if s.tlsConfig, s.certSHA256, s.selfSigned, err = serverTLS(cfg, log); err != nil {
		return nil, err
	}

	errorLog, err := zap.NewStdLogAt(log, zap.DebugLevel) // TLS handshake noise from scanners
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: cfg.readHeaderTimeout(),
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
		// A non-nil empty map turns HTTP/2 off (see NextProtos).
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	s.ingestCtx, s.cancelIngest = context.WithCancel(context.Background())
	return s, nil
}

// maxHeaderBytes bounds request headers; a terminal sends a few hundred
// bytes. Larger headers get 431.
const maxHeaderBytes = 16 << 10

// Start binds the listener and serves in the background; it returns once the
// address is bound (so Listen "127.0.0.1:0" works, see Addr) or with the
// error that prevented it. It may be called once.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateRunning:
		return errors.New("telematics: already started")
	case stateStopped:
		return errors.New("telematics: shut down")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("telematics.listen %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.state = stateRunning
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		if err := s.http.Serve(tls.NewListener(ln, s.tlsConfig)); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serving stopped", zap.Error(err))
		}
	}()
	s.log.Info("listening",
		zap.Stringer("addr", ln.Addr()),
		zap.String("cert_sha256", s.certSHA256()),
		zap.Bool("self_signed", s.selfSigned),
		zap.Bool("auth", s.tokens != nil),
		zap.String("topic", s.cfg.Topic))
	return nil
}

// Addr returns the bound address, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// CertFingerprint returns the SHA-256 fingerprint of the server certificate
// (the generated one, or the leaf of telematics.tls.cert_file) as
// colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256`
// prints it. Clients of a self-signed server can pin it.
func (s *Server) CertFingerprint() string { return s.certSHA256() }

// Shutdown stops accepting connections, closes idle keep-alive connections
// and waits for requests in progress to get their response (stored: 200, or
// not). If ctx ends first, it cancels the Ingest calls still running (their
// requests are not acknowledged), closes every connection, waits for the
// handlers to return and returns ctx's error. Later calls, and a call before
// Start, return nil at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateRunning {
		s.state = stateStopped
		s.mu.Unlock()
		s.cancelIngest()
		return nil
	}
	s.state = stateStopped
	s.mu.Unlock()

	err := s.http.Shutdown(ctx)
	if err != nil {
		s.cancelIngest()
		_ = s.http.Close() // its error is the listener's, already closed by Shutdown
	}
	<-s.serveDone
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.handlers.Wait()
	s.cancelIngest()
	s.log.Info("stopped")
	return err
}

// enter registers a starting handler, unless the server is draining.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.handlers.Add(1)
	return true
}
