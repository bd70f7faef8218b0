package telematics

import (
	"net/http"
	"testing"
)

// TestMessagesCarryTheSourceIP: every message of a request carries the
// terminal's IP address (no port), which rules read with sourceip().
func TestMessagesCarryTheSourceIP(t *testing.T) {
	r := newRig(t, nil)
	resp := r.post(t, "/log", "application/json", sample(t, "sts-log.json"))
	if resp.status != http.StatusOK {
		t.Fatalf("status %d %s", resp.status, resp.body)
	}
	calls := r.ing.stored()
	if len(calls) != 1 || len(calls[0]) == 0 {
		t.Fatalf("ingested %v", calls)
	}
	for i, m := range calls[0] {
		if m.SourceIP != "127.0.0.1" {
			t.Errorf("message %d SourceIP %q, want 127.0.0.1", i, m.SourceIP)
		}
	}
}
