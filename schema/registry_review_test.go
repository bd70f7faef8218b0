package schema_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/schema"
)

// TestRegistryBadAnswers: a registry that hangs or answers what the
// Confluent API never does fails the load with an error naming the key and
// the request; nothing is left to fail per record (a JSON schema without
// an id would only fail format: confluent on the message path).
func TestRegistryBadAnswers(t *testing.T) {
	subjects := func(version string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/subjects" {
				_, _ = w.Write([]byte(`["message-log-value"]`))
				return
			}
			_, _ = w.Write([]byte(version))
		}
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"hangs", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, "/subjects: Get "},
		{"html", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>proxy</html>")) },
			"/subjects: the answer is not what the Confluent API returns"},
		{"empty version", subjects(`{}`), `/subjects/message-log-value/versions/latest: the answer is not what the Confluent API returns: no id`},
		{"json without id", subjects(`{"schemaType":"JSON","version":1,"schema":"{}"}`), `/subjects/message-log-value/versions/latest: the answer is not what the Confluent API returns: no id`},
		{"id beyond 32 bits", subjects(`{"schemaType":"JSON","id":4294967297,"version":1,"schema":"{}"}`), `the answer is not what the Confluent API returns: id 4294967297 is out of range`},
		{"json without schema", subjects(`{"schemaType":"JSON","id":3,"version":1}`), `/subjects/message-log-value/versions/latest: the answer is not what the Confluent API returns: no schema`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			start := time.Now()
			_, err := schema.Load(t.Context(), schema.Config{Registry: schema.RegistryConfig{URL: srv.URL, Timeout: 300 * time.Millisecond}}, nil)
			if err == nil || !strings.HasPrefix(err.Error(), "schemas.registry: GET "+srv.URL) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want it to contain %q", err, tc.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Load took %v with a 300ms timeout", d)
			}
		})
	}
}
