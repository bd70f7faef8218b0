package telematics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/tlsconf"
)

// fakeIngester records what it is given. fn, when set, runs first and its
// error is returned; the call is recorded only when it returns nil.
type fakeIngester struct {
	fn func(ctx context.Context, msgs []router.Message) error

	mu    sync.Mutex
	calls [][]router.Message
}

func (f *fakeIngester) Ingest(ctx context.Context, msgs []router.Message) error {
	if f.fn != nil {
		if err := f.fn(ctx, msgs); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, msgs)
	return nil
}

func (f *fakeIngester) stored() [][]router.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]router.Message(nil), f.calls...)
}

// unavailableError is how a storage layer says "not now".
type unavailableError struct{}

func (unavailableError) Error() string     { return "kafka unreachable" }
func (unavailableError) Unavailable() bool { return true }

// rig is a real server on 127.0.0.1:0 and a client that trusts its
// certificate.
type rig struct {
	srv    *Server
	ing    *fakeIngester
	logs   *observer.ObservedLogs
	client *http.Client
	base   string // https://127.0.0.1:port
	pool   *x509.CertPool
}

func newRig(t *testing.T, configure func(*Config), opts ...Option) *rig {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	if configure != nil {
		configure(&cfg)
	}
	core, logs := observer.New(zap.DebugLevel)
	r := &rig{ing: &fakeIngester{}, logs: logs}
	srv, err := New(cfg, r.ing, zap.New(core), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	r.srv = srv
	r.base = "https://" + srv.Addr().String()
	r.pool = x509.NewCertPool()
	r.pool.AddCert(pinnedCert(t, srv))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.pool}}
	t.Cleanup(tr.CloseIdleConnections)
	r.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return r
}

// pinnedCert fetches the server's certificate, accepting it only if its
// fingerprint is the one the server reports: the way an operator trusts a
// self-signed gateway.
func pinnedCert(t *testing.T, srv *Server) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{
		InsecureSkipVerify: true, // verified by the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := tlsconf.Fingerprint(cs.PeerCertificates[0].Raw); got != srv.CertFingerprint() {
				return errors.New("fingerprint " + got + " is not the pinned " + srv.CertFingerprint())
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// response is what a test looks at in an answer.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends body to path with the content type (none when "") and headers.
func (r *rig) do(t *testing.T, method, path, contentType, body string, header map[string]string) response {
	t.Helper()
	resp, err := r.send(method, path, contentType, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// send is do for goroutines other than the test's: it returns the error.
func (r *rig) send(method, path, contentType, body string, header map[string]string) (response, error) {
	req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

func (r *rig) post(t *testing.T, path, contentType, body string) response {
	t.Helper()
	return r.do(t, http.MethodPost, path, contentType, body, nil)
}

// sample reads a request body of shared/samples/legacy, copied to the
// legacy package's testdata.
func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../legacy/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
