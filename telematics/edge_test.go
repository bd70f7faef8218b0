package telematics

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/limits"
)

// countingObserver counts refusals by reason.
type countingObserver struct {
	nopObserver
	mu      sync.Mutex
	refused map[string]int
}

func (o *countingObserver) Refused(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refused == nil {
		o.refused = map[string]int{}
	}
	o.refused[reason]++
}

func (o *countingObserver) count(reason string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refused[reason]
}

func stsLog(device string) string {
	return `{"device_no":"` + device + `","sent_at":1763780000123,"records":[{"kind":"adas","event":"FCW"},{"kind":"adas","event":"LDW"}]}`
}

func TestTokensBoundToDevices(t *testing.T) {
	tokens := writeTokens(t, "sts1 tok-sts1 STS-1\nfleet tok-fleet STS-12*,CSA0000042\nold tok-old\n")
	obs := &countingObserver{}
	r := newRig(t, func(c *Config) { c.Auth.TokensFile = tokens }, WithObserver(obs))
	if w := r.logs.FilterMessageSnippet("may send data for any device").All(); len(w) != 1 || fmt.Sprint(w[0].ContextMap()["tokens"]) != "[old]" {
		t.Fatalf("start-up warnings about unbound tokens: %+v", w)
	}
	const form = "application/x-www-form-urlencoded"
	csa := func(tid string) string { return "tid=" + tid + "&dt=20261122115306&rsn=2&fw=csa-1.0.9" }
	for _, tt := range []struct {
		name, token, contentType, path, body string
		status                               int
		field                                string
	}{
		{"own device", "tok-sts1", mediaSTS, "/log", stsLog("STS-1"), http.StatusOK, ""},
		{"other device", "tok-sts1", mediaSTS, "/log", stsLog("STS-2"), http.StatusForbidden, "device_no"},
		{"exact is not a prefix", "tok-sts1", mediaSTS, "/log", stsLog("STS-10"), http.StatusForbidden, "device_no"},
		{"prefix", "tok-fleet", mediaSTS, "/log", stsLog("STS-12345"), http.StatusOK, ""},
		{"outside the prefix", "tok-fleet", mediaSTS, "/log", stsLog("STS-13"), http.StatusForbidden, "device_no"},
		{"csa listed", "tok-fleet", form, "/boot", csa("CSA0000042"), http.StatusOK, ""},
		{"csa not listed", "tok-fleet", form, "/boot", csa("CSA0000043"), http.StatusForbidden, "tid"},
		{"unbound token", "tok-old", mediaSTS, "/log", stsLog("STS-99"), http.StatusOK, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(r.ing.stored())
			resp := r.do(t, http.MethodPost, tt.path, tt.contentType, tt.body, map[string]string{"Authorization": "Bearer " + tt.token})
			if resp.status != tt.status {
				t.Fatalf("status %d %s, want %d", resp.status, resp.body, tt.status)
			}
			stored := len(r.ing.stored()) - before
			if tt.status != http.StatusOK {
				assertRefused(t, resp, tt.status)
				var b errorBody
				if err := json.Unmarshal([]byte(resp.body), &b); err != nil || b.Field != tt.field || strings.Contains(resp.body, "STS-") || strings.Contains(resp.body, "CSA0") {
					t.Fatalf("body %s: want field %s and no device id echoed", resp.body, tt.field)
				}
				if stored != 0 {
					t.Fatalf("%d Ingest calls for a refused request", stored)
				}
				return
			}
			if stored != 1 {
				t.Fatalf("%d Ingest calls", stored)
			}
		})
	}
	if n := obs.count(reasonDeviceNotAllowed); n != 4 {
		t.Fatalf("%d refusals counted as %s, want 4", n, reasonDeviceNotAllowed)
	}
	logged := r.logs.FilterMessage("request refused").FilterField(zap.String("principal", "sts1")).All()
	if len(logged) != 2 || logged[0].ContextMap()["remote"] == "" || logged[0].ContextMap()["device"] != "STS-2" {
		t.Fatalf("refusal log lines: %+v", logged)
	}
}

// A request refused before its body is read is answered at once and its
// connection closed, although the body never comes: net/http would
// otherwise wait for (up to 256 KiB of) it until read_timeout.
func TestRefusalBeforeTheBodyIsAnsweredAtOnce(t *testing.T) {
	tokens := writeTokens(t, "sts1 tok-sts1 STS-1\n")
	obs := &countingObserver{}
	r := newRig(t, func(c *Config) {
		c.Auth.TokensFile = tokens
		c.ReadTimeout = 20 * time.Second
		c.RequestTimeout = 20 * time.Second
		c.WriteTimeout = 45 * time.Second
	}, WithObserver(obs))
	for _, tt := range []struct {
		name, request string
		status        int
	}{
		{"no token", "POST /log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", 401},
		{"wrong token", "POST /log HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", 401},
		{"wrong path", "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", 404},
		{"wrong type", "POST /log HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-sts1\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n", 415},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{RootCAs: r.pool, ServerName: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := io.WriteString(conn, tt.request); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			answered := time.Since(start)
			if resp.StatusCode != tt.status || !resp.Close || !strings.Contains(string(b), `"error"`) {
				t.Fatalf("got %d close=%v %s; want %d with Connection: close", resp.StatusCode, resp.Close, b, tt.status)
			}
			if _, err := br.ReadByte(); err == nil {
				t.Fatal("the connection carried more after the refusal")
			}
			closed := time.Since(start)
			if answered > 2*time.Second || closed > 3*time.Second {
				t.Fatalf("answered after %v, closed after %v; want both at once (read_timeout is 20s)", answered, closed)
			}
		})
	}
	if n := obs.count(reasonUnauthenticated); n != 2 {
		t.Fatalf("%d refusals counted as %s, want 2", n, reasonUnauthenticated)
	}
}

// recordingLimiter is a limits.Budget that remembers the largest room held.
type recordingLimiter struct {
	*limits.Budget
	mu  sync.Mutex
	max int64
}

func (l *recordingLimiter) TryAcquire(msgs int, n int64) bool {
	ok := l.Budget.TryAcquire(msgs, n)
	_, held := l.InUse()
	l.mu.Lock()
	l.max = max(l.max, held)
	l.mu.Unlock()
	return ok
}

func (l *recordingLimiter) bytesInUse() int64 {
	_, n := l.InUse()
	return n
}

func TestBodiesCountUnderLimitsBeforeTheyAreRead(t *testing.T) {
	lim := &recordingLimiter{Budget: limits.New(limits.Config{MaxInflightMessages: 100, MaxInflightBytes: 1024})}
	obs := &countingObserver{}
	r := newRig(t, func(c *Config) { c.MaxBodyBytes = 1024 }, WithLimiter(lim), WithObserver(obs))

	// Declared length: the room is taken before a byte of the body is read.
	conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{RootCAs: r.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := stsLog("STS-1")
	if _, err := io.WriteString(conn, "POST /log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "room for the unread body", func() bool { return lim.bytesInUse() == int64(len(body)) })

	// Meanwhile a body that does not fit beside it is refused unread: 503
	// with Retry-After, connection closed.
	big := stsLog("STS-2") + strings.Repeat(" ", 1000-len(stsLog("STS-2")))
	resp := r.post(t, "/log", mediaSTS, big)
	assertRefused(t, resp, http.StatusServiceUnavailable)
	if resp.header.Get("Retry-After") == "" || obs.count(reasonInflightLimit) != 1 {
		t.Fatalf("Retry-After %q, counted %d", resp.header.Get("Retry-After"), obs.count(reasonInflightLimit))
	}
	// So is a chunked one, once what it sent outgrows the room.
	req, _ := http.NewRequest(http.MethodPost, r.base+"/log", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", mediaSTS)
	cresp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cresp.Body.Close()
	if cresp.StatusCode != http.StatusServiceUnavailable || obs.count(reasonInflightLimit) != 2 {
		t.Fatalf("chunked: %d, counted %d", cresp.StatusCode, obs.count(reasonInflightLimit))
	}

	// The first body arrives: stored, and its room given back.
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	first, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || first.StatusCode != http.StatusOK {
		t.Fatalf("first request: %v %v", first, err)
	}
	waitFor(t, "the room given back", func() bool { return lim.bytesInUse() == 0 })

	// Alone, the large bodies fit, declared or chunked; the chunked one
	// took room as it was read.
	if resp := r.post(t, "/log", mediaSTS, big); resp.status != http.StatusOK {
		t.Fatalf("large body alone: %d %s", resp.status, resp.body)
	}
	req, _ = http.NewRequest(http.MethodPost, r.base+"/log", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", mediaSTS)
	if cresp, err = r.client.Do(req); err != nil || cresp.StatusCode != http.StatusOK {
		t.Fatalf("chunked alone: %v %v", cresp, err)
	}
	cresp.Body.Close()
	waitFor(t, "the room given back", func() bool { return lim.bytesInUse() == 0 })
	if lim.max < int64(len(big)) {
		t.Fatalf("at most %d bytes held, want the body's %d", lim.max, len(big))
	}
	if n := len(r.ing.stored()); n != 3 {
		t.Fatalf("%d Ingest calls, want 3", n)
	}
}
