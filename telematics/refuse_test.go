package telematics

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestEarlyRefusalAnswersAtOnce: a request refused on its headers (no
// token, wrong path or method) is answered at once and its connection
// closed, even when the client holds back the body it announced. net/http
// would first read up to 256 KiB of the unread body, so the client waited
// for telematics.read_timeout.
func TestEarlyRefusalAnswersAtOnce(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Auth.TokensFile = writeTokens(t, "fleet tok-1\n")
		c.ReadTimeout = 10 * time.Second
		c.WriteTimeout = 45 * time.Second
	})
	for _, tc := range []struct {
		name, request string
		status        int
	}{
		{"no token", "POST /log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", http.StatusUnauthorized},
		{"bad path", "POST /nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-1\r\nContent-Length: 1000\r\n\r\n", http.StatusNotFound},
		{"bad method", "PUT /log HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-1\r\nContent-Length: 1000\r\n\r\n", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", r.srv.Addr().String(), &tls.Config{RootCAs: r.pool, ServerName: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			began := time.Now()
			fmt.Fprint(conn, tc.request) // and no body
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer within 5s while the body is held back: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || time.Since(began) > 2*time.Second {
				t.Fatalf("got %d after %s, want %d at once", resp.StatusCode, time.Since(began), tc.status)
			}
			if !resp.Close {
				t.Fatalf("no Connection: close on an early refusal: %v", resp.Header)
			}
			closing := time.Now()
			if _, err := br.ReadByte(); err == nil || time.Since(closing) > 2*time.Second {
				t.Fatalf("the connection stays open after an early refusal (%v after %s)", err, time.Since(closing))
			}
		})
	}
}
