package telematics

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/legacy"
	"github.com/fleetgate/fleetgate/router"
)

func TestRequestsReachIngester(t *testing.T) {
	tests := []struct {
		name, path, contentType, body string
		decode                        func([]byte) ([]legacy.Message, error)
		source, device                string
	}{
		{"STS log", "/log", "application/json", sample(t, "sts-log.json"), legacy.DecodeSTSLog, "sts", "STS-00000123"},
		{"STS boot", "/boot", "application/json; charset=utf-8", sample(t, "sts-boot.json"), legacy.DecodeSTSBoot, "sts", "STS-00000123"},
		{"CSA log", "/log", "application/x-www-form-urlencoded", sample(t, "csa-log.form"), legacy.DecodeCSALog, "csa", "CSA0000042"},
		{"CSA boot", "/boot", "Application/X-WWW-Form-Urlencoded; charset=UTF-8", sample(t, "csa-boot.form"), legacy.DecodeCSABoot, "csa", "CSA0000042"},
	}
	r := newRig(t, func(c *Config) { c.Topic = "legacy/report" })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(r.ing.stored())
			start := time.Now()
			resp := r.post(t, tt.path, tt.contentType, tt.body)
			end := time.Now()

			want, err := tt.decode([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != http.StatusOK || resp.body != fmt.Sprintf("{\"accepted\":%d}\n", len(want)) {
				t.Fatalf("got %d %q, want 200 accepted %d", resp.status, resp.body, len(want))
			}
			if ct := resp.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			calls := r.ing.stored()[before:]
			if len(calls) != 1 || len(calls[0]) != len(want) {
				t.Fatalf("ingested %d calls, want 1 of %d messages", len(calls), len(want))
			}
			received := calls[0][0].Received
			for i, m := range calls[0] {
				if m.Source != tt.source || m.Topic != "legacy/report" || m.ClientID != tt.device || m.Principal != "" {
					t.Errorf("message %d: %+v", i, m)
				}
				if !bytes.Equal(m.Payload, want[i].Payload) {
					t.Errorf("message %d payload %s, want %s", i, m.Payload, want[i].Payload)
				}
				if !m.Received.Equal(received) || m.Received.Before(start) || m.Received.After(end) {
					t.Errorf("message %d Received %v not the request's time in [%v, %v]", i, m.Received, start, end)
				}
			}
		})
	}
}

func TestEmptyRecordsAcceptedWithoutIngest(t *testing.T) {
	r := newRig(t, nil)
	resp := r.post(t, "/log", "application/json", `{"device_no":"D","sent_at":1,"records":[]}`)
	if resp.status != http.StatusOK || resp.body != "{\"accepted\":0}\n" {
		t.Fatalf("got %d %q", resp.status, resp.body)
	}
	if n := len(r.ing.stored()); n != 0 {
		t.Fatalf("%d Ingest calls", n)
	}
}

func TestErrorStatuses(t *testing.T) {
	const sts, csa = "application/json", "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		header      map[string]string
		status      int
		field       string // for 400
	}{
		{name: "malformed JSON", path: "/log", contentType: sts, body: `{"device_no":`, status: 400},
		{name: "JSON array", path: "/boot", contentType: sts, body: `[]`, status: 400},
		{name: "missing device_no", path: "/log", contentType: sts, body: `{"sent_at":1,"records":[]}`, status: 400, field: "device_no"},
		{name: "latitude out of range", path: "/log", contentType: sts, body: `{"device_no":"D","sent_at":1,"records":[{"kind":"gps","lat":91,"lng":0}]}`, status: 400, field: "records[0].lat"},
		{name: "boot body on log", path: "/log", contentType: sts, body: sample(t, "sts-boot.json"), status: 400, field: "reason"},
		{name: "CSA bad dt", path: "/log", contentType: csa, body: "tid=C&dt=20261322115306&fuel=1", status: 400, field: "dt"},
		{name: "CSA missing tid", path: "/boot", contentType: csa, body: "dt=20261122115306&rsn=1&fw=f", status: 400, field: "tid"},
		{name: "CSA neither gps nor log", path: "/log", contentType: csa, body: "tid=C&dt=20261122115306", status: 400, field: "lat/lon"},
		{name: "JSON sent as form", path: "/log", contentType: csa, body: sample(t, "sts-boot.json"), status: 400},
		{name: "form sent as JSON", path: "/log", contentType: sts, body: sample(t, "csa-log.form"), status: 400},
		{name: "empty body", path: "/log", contentType: sts, body: "", status: 400},
		{name: "unknown path", path: "/report", contentType: sts, body: "{}", status: 404},
		{name: "root", path: "/", contentType: sts, body: "{}", status: 404},
		{name: "trailing slash", path: "/log/", contentType: sts, body: "{}", status: 404},
		{name: "GET", method: http.MethodGet, path: "/log", status: 405},
		{name: "PUT", method: http.MethodPut, path: "/boot", contentType: sts, body: "{}", status: 405},
		{name: "text/plain", path: "/log", contentType: "text/plain", body: "x", status: 415},
		{name: "no Content-Type", path: "/log", body: "x", status: 415},
		{name: "broken Content-Type", path: "/log", contentType: "application/", body: "x", status: 415},
		{name: "gzip", path: "/log", contentType: sts, body: "x", header: map[string]string{"Content-Encoding": "gzip"}, status: 415},
		{name: "too large by length", path: "/log", contentType: sts, body: strings.Repeat(" ", 257), status: 413},
	}
	r := newRig(t, func(c *Config) { c.MaxBodyBytes = 256 })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			resp := r.do(t, method, tt.path, tt.contentType, tt.body, tt.header)
			assertRefused(t, resp, tt.status)
			if tt.status == http.StatusMethodNotAllowed && resp.header.Get("Allow") != "POST" {
				t.Errorf("Allow %q", resp.header.Get("Allow"))
			}
			if tt.field != "" {
				var b errorBody
				_ = json.Unmarshal([]byte(resp.body), &b)
				if b.Field != tt.field || !strings.HasPrefix(b.Error, tt.field+": ") {
					t.Errorf("body %s, want field %s", resp.body, tt.field)
				}
			}
		})
	}
	if n := len(r.ing.stored()); n != 0 {
		t.Fatalf("%d Ingest calls for refused requests", n)
	}
}

// assertRefused checks an error answer: status, JSON body with "error" and
// no "accepted".
func assertRefused(t *testing.T, resp response, status int) {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status %d (%s), want %d", resp.status, resp.body, status)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var b map[string]any
	if err := json.Unmarshal([]byte(resp.body), &b); err != nil {
		t.Fatalf("body %q: %v", resp.body, err)
	}
	if msg, _ := b["error"].(string); msg == "" {
		t.Errorf("body %s has no error", resp.body)
	}
	if _, ok := b["accepted"]; ok {
		t.Errorf("body %s reports accepted", resp.body)
	}
}

// TestTooLargeChunked sends a body without Content-Length, so only
// MaxBytesReader can stop it.
func TestTooLargeChunked(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxBodyBytes = 64 })
	body := `{"device_no":"D","sent_at":1,"records":[` + strings.Repeat(`{"kind":"adas"},`, 20) + `{"kind":"adas"}]}`
	req, err := http.NewRequest(http.MethodPost, r.base+"/log", io.MultiReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if req.ContentLength != 0 {
		t.Fatalf("ContentLength %d: want a chunked request", req.ContentLength)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assertRefused(t, response{status: resp.StatusCode, header: resp.Header, body: string(b)}, http.StatusRequestEntityTooLarge)
	if n := len(r.ing.stored()); n != 0 {
		t.Fatalf("%d Ingest calls", n)
	}
	// A body of exactly the limit is fine.
	exact := `{"device_no":"D","sent_at":1,"records":[]}`
	exact += strings.Repeat(" ", 64-len(exact))
	if resp := r.post(t, "/log", "application/json", exact); resp.status != http.StatusOK {
		t.Fatalf("body of max_body_bytes: %d %s", resp.status, resp.body)
	}
}

func TestAuthentication(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# fleet tokens\nsts-fleet s3cret-sts-token\n\ncsa-fleet   s3cret-csa-token  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config) { c.Auth.TokensFile = tokens })
	body := sample(t, "csa-boot.form")
	const form = "application/x-www-form-urlencoded"

	for _, tt := range []struct{ name, auth string }{
		{"no header", ""},
		{"wrong token", "Bearer wrong"},
		{"token prefix", "Bearer s3cret-csa"},
		{"empty token", "Bearer "},
		{"basic scheme", "Basic czNjcmV0LWNzYS10b2tlbg=="},
		{"token without scheme", "s3cret-csa-token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h map[string]string
			if tt.auth != "" {
				h = map[string]string{"Authorization": tt.auth}
			}
			resp := r.do(t, http.MethodPost, "/boot", form, body, h)
			assertRefused(t, resp, http.StatusUnauthorized)
			if !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", resp.header.Get("WWW-Authenticate"))
			}
		})
	}
	if n := len(r.ing.stored()); n != 0 {
		t.Fatalf("%d Ingest calls without authentication", n)
	}
	for _, auth := range []string{"Bearer s3cret-csa-token", "bearer s3cret-csa-token"} {
		resp := r.do(t, http.MethodPost, "/boot", form, body, map[string]string{"Authorization": auth})
		if resp.status != http.StatusOK {
			t.Fatalf("%q: %d %s", auth, resp.status, resp.body)
		}
	}
	for _, call := range r.ing.stored() {
		if call[0].Principal != "csa-fleet" {
			t.Errorf("Principal %q, want csa-fleet", call[0].Principal)
		}
	}
}

func TestIngestFailures(t *testing.T) {
	body := sample(t, "sts-log.json")
	tests := []struct {
		name   string
		fn     func(ctx context.Context, msgs []router.Message) error
		status int
	}{
		{"unavailable", func(context.Context, []router.Message) error { return unavailableError{} }, 503},
		{"wrapped unavailable", func(context.Context, []router.Message) error {
			return fmt.Errorf("produce: %w", unavailableError{})
		}, 503},
		{"request timeout", func(ctx context.Context, _ []router.Message) error {
			<-ctx.Done()
			return ctx.Err()
		}, 503},
		{"permanent failure", func(context.Context, []router.Message) error { return errors.New("disk on fire") }, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, func(c *Config) { c.RequestTimeout = 200 * time.Millisecond })
			r.ing.fn = tt.fn
			resp := r.post(t, "/log", "application/json", body)
			assertRefused(t, resp, tt.status)
			if tt.status == 503 && resp.header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if strings.Contains(resp.body, "disk on fire") {
				t.Errorf("500 body leaks the cause: %s", resp.body)
			}
			if n := len(r.ing.stored()); n != 0 {
				t.Fatalf("%d messages stored", n)
			}
		})
	}
}

func TestRefusalsAreLoggedWithoutPayload(t *testing.T) {
	r := newRig(t, nil)
	r.ing.fn = func(context.Context, []router.Message) error { return unavailableError{} }
	r.post(t, "/log", "application/json", `{"device_no":"D","sent_at":1,"records":[{"kind":"gps","lat":95.123456,"lng":0}]}`)
	r.post(t, "/log", "application/x-www-form-urlencoded", "tid=SECRETDEV&dt=20261122115306&fuel=42")

	entries := r.logs.FilterMessage("request refused").All()
	if len(entries) != 2 {
		t.Fatalf("%d log lines, want 2", len(entries))
	}
	first, second := entries[0].ContextMap(), entries[1].ContextMap()
	if first["status"] != int64(400) || first["path"] != "/log" || first["error"] != "records[0].lat: out of range [-90, 90]" {
		t.Errorf("400 line: %v", first)
	}
	if second["status"] != int64(503) || second["device"] != "SECRETDEV" || second["path"] != "/log" {
		t.Errorf("503 line: %v", second)
	}
	for _, e := range r.logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, "95.123456") || strings.Contains(line, "fuel") {
			t.Errorf("log line carries payload: %s", line)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	r := newRig(t, nil)
	var reused []bool
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest(http.MethodPost, r.base+"/boot", strings.NewReader(sample(t, "sts-boot.json")))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
		}))
		resp, err := r.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("request %d: %d, close %v", i, resp.StatusCode, resp.Close)
		}
	}
	if fmt.Sprint(reused) != "[false true true]" {
		t.Fatalf("connection reused: %v", reused)
	}
}

// TestSlowLoris trickles request headers one byte at a time: the server must
// hang up once the header timeout (min(ReadTimeout, 10s)) passes.
func TestSlowLoris(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.ReadTimeout = 400 * time.Millisecond
		c.RequestTimeout = 100 * time.Millisecond
		c.WriteTimeout = time.Second
	})
	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{RootCAs: r.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		header := "POST /log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: " + strings.Repeat("a", 1000)
		for i := 0; i < len(header); i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{header[i]}); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn) // until the server closes
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	// net/http answers before any handler runs (a plain-text 400 in Go 1.26) or just closes.
	if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 4") {
		t.Fatalf("got %q, want nothing or a 4xx", got)
	}
	if elapsed < 300*time.Millisecond || elapsed > 2*time.Second {
		t.Fatalf("connection closed after %v, want about 400ms", elapsed)
	}
}

// TestSlowBody sends complete headers and then trickles the body: the read
// timeout ends the request with 408 and nothing is ingested.
func TestSlowBody(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.ReadTimeout = 400 * time.Millisecond
		c.RequestTimeout = 100 * time.Millisecond
		c.WriteTimeout = time.Second
	})
	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{RootCAs: r.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, err = io.WriteString(conn, "POST /boot HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 408") {
		t.Fatalf("got %q (%v), want 408", buf[:n], err)
	}
	if elapsed < 300*time.Millisecond || elapsed > 2*time.Second {
		t.Fatalf("answered after %v, want about 400ms", elapsed)
	}
	if len(r.ing.stored()) != 0 {
		t.Fatal("a half-received body was ingested")
	}
}

// TestDeviceOrder holds one request of device A inside Ingest and checks that
// A's next request waits for it, in arrival order, while device B goes
// through.
func TestDeviceOrder(t *testing.T) {
	r := newRig(t, nil)
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	entered := make(chan string, 10)
	r.ing.fn = func(ctx context.Context, msgs []router.Message) error {
		id := msgs[0].ClientID + "/" + string(jsonField(msgs[0].Payload, "seq"))
		mu.Lock()
		order = append(order, id)
		mu.Unlock()
		entered <- id
		if id == "A/1" {
			<-release
		}
		return nil
	}
	body := func(device string, seq int) string {
		return fmt.Sprintf(`{"device_no":%q,"sent_at":1,"seq":%d,"records":[{"kind":"adas"}]}`, device, seq)
	}
	results := make(chan string, 10)
	send := func(device string, seq int) {
		resp, err := r.send(http.MethodPost, "/log", "application/json", body(device, seq), nil)
		res := fmt.Sprintf("%s/%d:%d", device, seq, resp.status)
		if err != nil {
			res += " " + err.Error()
		}
		results <- res
	}
	go send("A", 1)
	if got := <-entered; got != "A/1" {
		t.Fatalf("first in Ingest: %s", got)
	}
	go send("A", 2)
	waitFor(t, "A/2 to queue", func() bool { return r.srv.order.waiting("A") == 1 })
	go send("A", 3)
	waitFor(t, "A/3 to queue", func() bool { return r.srv.order.waiting("A") == 2 })
	go send("B", 1)
	if got := <-entered; got != "B/1" {
		t.Fatalf("B waited for A: %s entered", got)
	}
	if got := <-results; got != "B/1:200" {
		t.Fatalf("first answer %s, want B/1:200", got)
	}
	close(release)
	for i := 0; i < 3; i++ {
		if got := <-results; !strings.HasSuffix(got, ":200") {
			t.Fatalf("answer %s", got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(order) != "[A/1 B/1 A/2 A/3]" {
		t.Fatalf("Ingest order %v", order)
	}
	if n := r.srv.order.held(); n != 0 {
		t.Fatalf("%d devices still locked", n)
	}
}

// jsonField returns the raw value of a top-level member of a JSON object.
func jsonField(payload []byte, name string) json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(payload, &m)
	return m[name]
}

func TestShutdownWaitsForRequests(t *testing.T) {
	r := newRig(t, nil)
	inIngest := make(chan struct{})
	release := make(chan struct{})
	r.ing.fn = func(context.Context, []router.Message) error {
		close(inIngest)
		<-release
		return nil
	}
	result := make(chan int, 1)
	body := sample(t, "sts-boot.json")
	go func() {
		resp, _ := r.send(http.MethodPost, "/boot", "application/json", body, nil)
		result <- resp.status
	}()
	<-inIngest
	done := make(chan error, 1)
	go func() { done <- r.srv.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a request was in Ingest", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if status := <-result; status != http.StatusOK {
		t.Fatalf("in-flight request got %d", status)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := r.srv.Start(); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
}

func TestShutdownDeadlineCancelsIngest(t *testing.T) {
	r := newRig(t, nil)
	inIngest := make(chan struct{})
	r.ing.fn = func(ctx context.Context, _ []router.Message) error {
		close(inIngest)
		<-ctx.Done()
		return ctx.Err()
	}
	result := make(chan error, 1)
	body := sample(t, "sts-boot.json")
	go func() {
		resp, err := r.send(http.MethodPost, "/boot", "application/json", body, nil)
		switch {
		case err != nil:
		case resp.status == http.StatusOK:
			err = errors.New("accepted during a forced shutdown")
		default:
			err = fmt.Errorf("status %d", resp.status)
		}
		result <- err
	}()
	<-inIngest
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	if err := <-result; err == nil || strings.Contains(err.Error(), "accepted") {
		t.Fatalf("request: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	r := newRig(t, nil)
	if err := r.srv.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	cfg := DefaultConfig()
	cfg.Listen = r.srv.Addr().String() // taken
	s, err := New(cfg, &fakeIngester{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != nil {
		t.Fatal("Addr before Start is not nil")
	}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "telematics.listen") {
		t.Fatalf("Start on a taken address: %v", err)
	}
	if _, err := New(DefaultConfig(), nil, nil); err == nil {
		t.Fatal("New with a nil Ingester succeeded")
	}
}
